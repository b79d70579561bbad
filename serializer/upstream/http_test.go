package upstream_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/serializer/upstream"
)

// request is what a fake upstream saw.
type request struct {
	header http.Header
	body   []byte
}

// recorder is a fake upstream: it keeps every request and answers with respond.
type recorder struct {
	mu       sync.Mutex
	requests []request
	respond  func(w http.ResponseWriter, r *http.Request, body []byte)
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.requests = append(rec.requests, request{r.Header.Clone(), body})
	rec.mu.Unlock()
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if rec.respond != nil {
		rec.respond(w, r, body)
		return
	}
	answerAll(w, body, "ok")
}

func (rec *recorder) Requests() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.requests)
}

// answerAll answers a push with the same status for every device.
func answerAll(w http.ResponseWriter, body []byte, status string) {
	var pb upstream.PushBody
	if err := json.Unmarshal(body, &pb); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var res struct {
		Results []map[string]string `json:"results"`
	}
	for _, d := range pb.Devices {
		res.Results = append(res.Results, map[string]string{"id": d.ID, "status": status})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}

func newHTTPTarget(t *testing.T, cfg upstream.TargetConfig) upstream.Target {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "cloud"
	}
	cfg.Kind = upstream.KindHTTP
	target, err := upstream.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return target
}

func TestHTTPPushBodyAndResults(t *testing.T) {
	rec := &recorder{}
	rec.respond = func(w http.ResponseWriter, r *http.Request, body []byte) {
		var pb upstream.PushBody
		json.Unmarshal(body, &pb)
		ids := make([]string, len(pb.Devices))
		for i, d := range pb.Devices {
			ids[i] = d.ID
		}
		w.WriteHeader(http.StatusCreated)
		// Grouped lower-case ids are read as UCIs too; ids[3] gets no answer.
		io.WriteString(w, `{"results":[
			{"id":"`+ids[0]+`","status":"ok"},
			{"id":"`+strings.ToLower(serializer.MustParse(ids[1]).Grouped())+`","status":"exists","message":"seen 2025-02-01"},
			{"id":"`+ids[2]+`","status":"error","message":"identity\nhwid:7-00002 belongs to another device"},
			{"id":"not-a-uci","status":"ok"},
			{"id":"58KPP23VZ4Y298SM","status":"ok"}]}`)
	}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	target := newHTTPTarget(t, upstream.TargetConfig{URL: srv.URL + "/v1/devices", AllowHTTP: true, Token: "s3cret"})
	c := testChunk(t, "chunk-0001", 4)
	c.Devices[1].Attributes = nil
	c.Devices[1].Identity = ""

	res, err := target.Push(context.Background(), c)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	want := []upstream.Result{
		{UCI: c.Devices[0].UCI, Status: "ok"},
		{UCI: c.Devices[1].UCI, Status: "exists", Message: "seen 2025-02-01"},
		{UCI: c.Devices[2].UCI, Status: "error", Message: "identity hwid:7-00002 belongs to another device"},
		{UCI: c.Devices[3].UCI, Status: "error", Message: "no result from upstream"},
	}
	if !slices.Equal(res, want) {
		t.Errorf("results =\n%+v\nwant\n%+v", res, want)
	}

	reqs := rec.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	h := reqs[0].header
	for k, v := range map[string]string{
		"Content-Type":    "application/json",
		"Idempotency-Key": "chunk-0001",
		"Authorization":   "Bearer s3cret",
	} {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(reqs[0].body, &body); err != nil {
		t.Fatal(err)
	}
	if body["batch"] != float64(7) || body["product"] != testProduct.ID {
		t.Errorf("batch, product = %v, %v", body["batch"], body["product"])
	}
	devs := body["devices"].([]any)
	d0 := devs[0].(map[string]any)
	wantD0 := map[string]any{
		"id":         c.Devices[0].UCI.String(),
		"product":    testProduct.ID,
		"batch":      float64(7),
		"station":    "line1",
		"identity":   "hwid:7-00000",
		"attributes": map[string]any{"product": testProduct.ID, "hwid": "7-00000"},
		"created":    "2025-03-01T08:30:15Z",
	}
	if b1, b2 := mustJSON(d0), mustJSON(wantD0); b1 != b2 {
		t.Errorf("device 0 =\n%s\nwant\n%s", b1, b2)
	}
	d1 := devs[1].(map[string]any)
	if d1["attributes"] != nil || d1["identity"] != "" {
		t.Errorf("device without attributes and identity = %v", d1)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestHTTPAuth(t *testing.T) {
	const secret = "hmac-key-0123"
	tests := []struct {
		name  string
		cfg   upstream.TargetConfig
		check func(t *testing.T, r request)
	}{
		{"bearer", upstream.TargetConfig{Token: "tok"}, func(t *testing.T, r request) {
			if got := r.header.Get("Authorization"); got != "Bearer tok" {
				t.Errorf("Authorization = %q", got)
			}
		}},
		{"basic", upstream.TargetConfig{Username: "factory", Password: "p:ss"}, func(t *testing.T, r request) {
			want := "Basic " + base64.StdEncoding.EncodeToString([]byte("factory:p:ss"))
			if got := r.header.Get("Authorization"); got != want {
				t.Errorf("Authorization = %q, want %q", got, want)
			}
		}},
		{"hmac with bearer", upstream.TargetConfig{Token: "tok", HMACSecret: secret}, func(t *testing.T, r request) {
			m := hmac.New(sha256.New, []byte(secret))
			m.Write(r.body)
			want := "sha256=" + hex.EncodeToString(m.Sum(nil))
			if got := r.header.Get("X-Serialbox-Signature"); got != want {
				t.Errorf("signature = %q, want %q", got, want)
			}
			if !upstream.VerifySignature(secret, r.body, r.header.Get("X-Serialbox-Signature")) {
				t.Error("VerifySignature refuses the signature")
			}
			if upstream.VerifySignature("other", r.body, r.header.Get("X-Serialbox-Signature")) {
				t.Error("VerifySignature accepts another key")
			}
			ts, err := strconv.ParseInt(r.header.Get("X-Serialbox-Timestamp"), 10, 64)
			if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
				t.Errorf("timestamp = %q", r.header.Get("X-Serialbox-Timestamp"))
			}
			if r.header.Get("Authorization") != "Bearer tok" {
				t.Errorf("Authorization = %q", r.header.Get("Authorization"))
			}
		}},
		{"none", upstream.TargetConfig{}, func(t *testing.T, r request) {
			for _, h := range []string{"Authorization", "X-Serialbox-Signature", "X-Serialbox-Timestamp"} {
				if r.header.Get(h) != "" {
					t.Errorf("%s sent without being configured", h)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			cfg := tt.cfg
			cfg.URL, cfg.AllowHTTP = srv.URL, true
			res, err := newHTTPTarget(t, cfg).Push(context.Background(), testChunk(t, "k1", 3))
			if err != nil || len(res) != 3 {
				t.Fatalf("Push = %v, %v", res, err)
			}
			tt.check(t, rec.Requests()[0])
		})
	}
}

func TestHTTPStatuses(t *testing.T) {
	soon := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		retry      bool          // a retryable error, not results
		retryAfter time.Duration // at least this much asked for (dates are rounded)
		msg        string        // substring of every device's message when not retry
	}{
		{"500", 500, nil, "database down", true, 0, ""},
		{"503 Retry-After seconds", 503, map[string]string{"Retry-After": "7"}, "", true, 7 * time.Second, ""},
		{"429 Retry-After date", 429, map[string]string{"Retry-After": soon}, `{"error":"slow down"}`, true, 80 * time.Second, ""},
		{"408", 408, nil, "", true, 0, ""},
		{"409 key in use", 409, nil, `{"error":"a request with this key is in progress"}`, true, 0, ""},
		{"502 html", 502, map[string]string{"Content-Type": "text/html"}, "<html>bad gateway</html>", true, 0, ""},
		{"202 without results", 202, nil, "", true, 0, ""},
		{"200 not JSON", 200, nil, "OK", true, 0, ""},
		{"200 other JSON", 200, nil, `{"accepted":true}`, true, 0, ""},
		{"400", 400, map[string]string{"Content-Type": "application/json"}, `{"error":"unknown product"}`, false, 0, "upstream refused the chunk (HTTP 400 Bad Request): unknown product"},
		{"400 nested", 422, nil, `{"error":{"code":"x","message":"batch is closed"}}`, false, 0, "HTTP 422 Unprocessable Entity): batch is closed"},
		{"401", 401, nil, `{"message":"token expired"}`, false, 0, "check the target's token, username/password or hmac_secret; upstream says: token expired"},
		{"403", 403, nil, "", false, 0, "HTTP 403 Forbidden): check the target's token"},
		{"404", 404, nil, "no such route", false, 0, "HTTP 404 Not Found): no such route"},
		{"301", 301, map[string]string{"Location": "https://new.example.com/v2/devices?token=x"}, "", false, 0,
			"redirect (HTTP 301 Moved Permanently) to https://new.example.com/v2/devices?…: set the target's url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c := testChunk(t, "k", 3)
			res, err := newHTTPTarget(t, upstream.TargetConfig{URL: srv.URL, AllowHTTP: true}).Push(context.Background(), c)
			if tt.retry {
				var re *upstream.RetryError
				if !errors.As(err, &re) {
					t.Fatalf("Push = %v, %v; want a *RetryError", res, err)
				}
				if ra := upstream.RetryAfter(err); ra < tt.retryAfter || (tt.retryAfter == 0 && ra != 0) || ra > tt.retryAfter+15*time.Second {
					t.Errorf("RetryAfter = %v, want %v", ra, tt.retryAfter)
				}
				return
			}
			if err != nil {
				t.Fatalf("Push error %v, want a refusal of every device", err)
			}
			if len(res) != 3 {
				t.Fatalf("%d results, want 3", len(res))
			}
			for i, r := range res {
				if r.UCI != c.Devices[i].UCI || r.Status != upstream.StatusError || !strings.Contains(r.Message, tt.msg) {
					t.Errorf("result %d = %+v, want error containing %q", i, r, tt.msg)
				}
			}
		})
	}
}

func TestHTTPBareArrayAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var pb upstream.PushBody
		json.NewDecoder(r.Body).Decode(&pb)
		var out []map[string]string
		for _, d := range pb.Devices {
			out = append(out, map[string]string{"id": d.ID, "status": "SUCCESS"})
		}
		json.NewEncoder(w).Encode(out)
	}))
	defer srv.Close()
	res, err := newHTTPTarget(t, upstream.TargetConfig{URL: srv.URL, AllowHTTP: true}).Push(context.Background(), testChunk(t, "k", 2))
	if err != nil || len(res) != 2 || res[0].Status != "ok" || res[1].Status != "ok" {
		t.Fatalf("Push = %+v, %v", res, err)
	}
}

func TestHTTPAnswerTooLarge(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"results":[`)
		w.Write([]byte(strings.Repeat(" ", 5<<20)))
		io.WriteString(w, `]}`)
	}))
	defer srv.Close()
	_, err := newHTTPTarget(t, upstream.TargetConfig{URL: srv.URL, AllowHTTP: true}).Push(context.Background(), testChunk(t, "k", 1))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Push = %v, want a retryable error about the size", err)
	}
}

func TestHTTPErrorsHideSecrets(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens any more
	target := newHTTPTarget(t, upstream.TargetConfig{URL: addr + "/v1?token=TOPSECRET", AllowHTTP: true, Token: "TOPSECRET"})
	_, err := target.Push(context.Background(), testChunk(t, "k", 1))
	if err == nil || upstream.RetryAfter(err) != 0 {
		t.Fatalf("Push = %v, want a retryable error", err)
	}
	if !errors.As(err, new(*upstream.RetryError)) {
		t.Errorf("error %v is not a *RetryError", err)
	}
	if strings.Contains(err.Error(), "TOPSECRET") {
		t.Errorf("error shows the secret: %v", err)
	}
}

func TestHTTPPushTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := newHTTPTarget(t, upstream.TargetConfig{URL: srv.URL, AllowHTTP: true}).Push(ctx, testChunk(t, "k", 1))
	if !errors.As(err, new(*upstream.RetryError)) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Push = %v, want a retryable deadline error", err)
	}
}

// TestHTTPKeyStableAcrossRetries runs the syncer against an upstream that fails every
// chunk twice: each chunk's three requests carry the same key and the same body.
func TestHTTPKeyStableAcrossRetries(t *testing.T) {
	tries := map[string]int{}
	bodies := map[string][]string{}
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		tries[key]++
		n := tries[key]
		bodies[key] = append(bodies[key], string(body))
		mu.Unlock()
		if n <= 2 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		answerAll(w, body, "ok")
	}))
	defer srv.Close()
	target := newHTTPTarget(t, upstream.TargetConfig{URL: srv.URL, AllowHTTP: true, ChunkSize: 10, HMACSecret: "k"})
	out := newMemOutbox()
	devs := makeDevices(t, 3, 7, 25)
	out.Queue("cloud", testBatch(7), testProduct, devs)
	s := upstream.NewSyncer(out, []upstream.Target{target}, upstream.WithBackoff(fastBackoff))
	s.Start()
	waitFor(t, 10*time.Second, "settle", func() bool { return out.Settled("cloud") == 25 })
	s.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(tries) != 3 {
		t.Errorf("%d keys for 25 devices in chunks of 10, want 3", len(tries))
	}
	for key, bs := range bodies {
		if key == "" || len(bs) != 3 || bs[1] != bs[0] || bs[2] != bs[0] {
			t.Errorf("key %q: %d requests, identical bodies: %v", key, len(bs), len(bs) == 3 && bs[1] == bs[0] && bs[2] == bs[0])
		}
	}
}

func TestHTTPSCustomCA(t *testing.T) {
	srv := httptest.NewUnstartedServer(&recorder{})
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected
	srv.StartTLS()
	defer srv.Close()
	caFile := writePEM(t, "ca.pem", "CERTIFICATE", srv.Certificate().Raw)

	// Without the CA the server is not trusted.
	_, err := newHTTPTarget(t, upstream.TargetConfig{URL: srv.URL}).Push(context.Background(), testChunk(t, "k", 1))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Push without ca_file = %v, want a certificate error", err)
	}
	res, err := newHTTPTarget(t, upstream.TargetConfig{URL: srv.URL, CAFile: caFile}).Push(context.Background(), testChunk(t, "k", 2))
	if err != nil || len(res) != 2 || !res[0].OK() {
		t.Fatalf("Push with ca_file = %+v, %v", res, err)
	}

	if _, err := upstream.New(upstream.TargetConfig{Name: "x", Kind: "http", URL: srv.URL, CAFile: filepath.Join(t.TempDir(), "none.pem")}); err == nil || !strings.Contains(err.Error(), "upstream.ca_file:") {
		t.Errorf("New with a missing ca_file = %v", err)
	}
	notPEM := filepath.Join(t.TempDir(), "junk.pem")
	os.WriteFile(notPEM, []byte("junk"), 0o600)
	if _, err := upstream.New(upstream.TargetConfig{Name: "x", Kind: "http", URL: srv.URL, CAFile: notPEM}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("New with a ca_file without certificates = %v", err)
	}
}

func TestHTTPSClientCertificate(t *testing.T) {
	caKey, caCert := newCA(t)
	clientCertFile, clientKeyFile := newClientCert(t, caKey, caCert)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)

	srv := httptest.NewUnstartedServer(&recorder{})
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	caFile := writePEM(t, "server-ca.pem", "CERTIFICATE", srv.Certificate().Raw)

	_, err := newHTTPTarget(t, upstream.TargetConfig{URL: srv.URL, CAFile: caFile}).Push(context.Background(), testChunk(t, "k", 1))
	if err == nil {
		t.Fatal("Push without a client certificate succeeded")
	}
	res, err := newHTTPTarget(t, upstream.TargetConfig{URL: srv.URL, CAFile: caFile, CertFile: clientCertFile, KeyFile: clientKeyFile}).
		Push(context.Background(), testChunk(t, "k", 1))
	if err != nil || len(res) != 1 || !res[0].OK() {
		t.Fatalf("Push with a client certificate = %+v, %v", res, err)
	}
}

func TestHTTPPlainRefused(t *testing.T) {
	_, err := upstream.New(upstream.TargetConfig{Name: "lan", Kind: "http", URL: "http://10.0.0.5/devices"})
	if err == nil || !strings.Contains(err.Error(), "upstream.url: plain http") {
		t.Fatalf("New(http://) = %v, want it refused", err)
	}
	if _, err := upstream.New(upstream.TargetConfig{Name: "lan", Kind: "http", URL: "http://10.0.0.5/devices", AllowHTTP: true}); err != nil {
		t.Fatalf("New(http://, allow_http) = %v", err)
	}
}

func writePEM(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newCA(t *testing.T) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "factory test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func newClientCert(t *testing.T, caKey *ecdsa.PrivateKey, ca *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "serialbox line 1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, "client.pem", "CERTIFICATE", der), writePEM(t, "client-key.pem", "EC PRIVATE KEY", keyDER)
}
