package upstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"serialbox/serializer/upstream"
)

// fakeBuilder is the Ioto Builder's device registration as far as serialbox uses it.
type fakeBuilder struct {
	token string

	mu         sync.Mutex
	requests   int
	bodies     []map[string]any
	headers    []http.Header
	registered map[string]int
	fail       func(n int, body map[string]any) (status int, header, msg string) // 0 = answer normally
}

func newFakeBuilder() *fakeBuilder {
	return &fakeBuilder{token: "product-token", registered: map[string]int{}}
}

func (b *fakeBuilder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests++
	b.headers = append(b.headers, r.Header.Clone())
	if r.Method != http.MethodPost || r.URL.Path != "/api/device/register" {
		http.Error(w, `{"error":"Unknown route"}`, http.StatusNotFound)
		return
	}
	if r.Header.Get("Authorization") != "bearer "+b.token {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"Invalid token"}`))
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, `{"error":"Bad JSON"}`, http.StatusBadRequest)
		return
	}
	b.bodies = append(b.bodies, body)
	if b.fail != nil {
		if status, retry, msg := b.fail(b.requests, body); status != 0 {
			if retry != "" {
				w.Header().Set("Retry-After", retry)
			}
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]string{"error": msg})
			return
		}
	}
	id, _ := body["id"].(string)
	if id == "" || body["product"] == nil {
		http.Error(w, `{"error":"Missing id or product"}`, http.StatusBadRequest)
		return
	}
	if b.registered[id] > 0 {
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"Device already registered"}`))
		return
	}
	b.registered[id]++
	json.NewEncoder(w).Encode(map[string]any{"id": id, "product": body["product"]})
}

func newIotoTarget(t *testing.T, url string, cfg upstream.TargetConfig) upstream.Target {
	t.Helper()
	cfg.Name, cfg.Kind, cfg.URL, cfg.AllowHTTP = "ioto", upstream.KindIoto, url, true
	if cfg.Token == "" {
		cfg.Token = "product-token"
	}
	target, err := upstream.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return target
}

func TestIotoRegistration(t *testing.T) {
	b := newFakeBuilder()
	srv := httptest.NewServer(b)
	defer srv.Close()
	target := newIotoTarget(t, srv.URL+"/api/", upstream.TargetConfig{Test: true, Account: "ACC1", Cloud: "CLOUD1"})
	c := testChunk(t, "k", 3)
	c.Devices[0].Attributes = []byte(`{"product":"TESTPRODUCT01","name":"SerialEval","hwid":"A1","id":"stale"}`)
	c.Devices[1].Attributes = nil
	c.Devices[2].Attributes = []byte(`["not","an","object"]`)
	c.Devices[2].CreatedAt = time.Date(2025, 3, 1, 9, 0, 0, 123456789, time.FixedZone("CET", 3600))

	res, err := target.Push(context.Background(), c)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	for i, r := range res {
		if r.UCI != c.Devices[i].UCI || r.Status != upstream.StatusOK {
			t.Errorf("result %d = %+v", i, r)
		}
	}
	if b.requests != 3 {
		t.Fatalf("%d requests, want 3", b.requests)
	}
	for i, h := range b.headers {
		if h.Get("Authorization") != "bearer product-token" || h.Get("Content-Type") != "application/json" {
			t.Errorf("request %d headers: Authorization %q, Content-Type %q", i, h.Get("Authorization"), h.Get("Content-Type"))
		}
	}
	want := []map[string]any{
		{"id": c.Devices[0].UCI.String(), "product": testProduct.ID, "created": "2025-03-01T08:30:15.000Z",
			"test": true, "account": "ACC1", "cloud": "CLOUD1", "name": "SerialEval", "hwid": "A1"},
		{"id": c.Devices[1].UCI.String(), "product": testProduct.ID, "created": "2025-03-01T08:30:16.000Z",
			"test": true, "account": "ACC1", "cloud": "CLOUD1"},
		{"id": c.Devices[2].UCI.String(), "product": testProduct.ID, "created": "2025-03-01T08:00:00.123Z",
			"test": true, "account": "ACC1", "cloud": "CLOUD1"},
	}
	for i := range want {
		if got, w := mustJSON(b.bodies[i]), mustJSON(want[i]); got != w {
			t.Errorf("body %d =\n%s\nwant\n%s", i, got, w)
		}
	}
}

func TestIotoPlainBody(t *testing.T) {
	d := makeDevices(t, 1, 7, 1)[0]
	d.Attributes = []byte(`{"hwid":"A1"}`)
	body, err := upstream.IotoDevice(d, testProduct, upstream.TargetConfig{})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"created":"2025-03-01T08:30:15.000Z","hwid":"A1","id":"` + d.UCI.String() + `","product":"` + testProduct.ID + `"}`
	if string(body) != want {
		t.Errorf("body = %s\nwant %s", body, want)
	}
}

func TestIotoExists(t *testing.T) {
	b := newFakeBuilder()
	srv := httptest.NewServer(b)
	defer srv.Close()
	target := newIotoTarget(t, srv.URL+"/api", upstream.TargetConfig{})
	c := testChunk(t, "k", 2)
	if _, err := target.Push(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	res, err := target.Push(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Status != upstream.StatusExists || !r.OK() {
			t.Errorf("second registration of device %d = %+v, want exists", i, r)
		}
	}

	conflict := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict)
	}))
	defer conflict.Close()
	res, err = newIotoTarget(t, conflict.URL, upstream.TargetConfig{}).Push(context.Background(), c)
	if err != nil || res[0].Status != upstream.StatusExists {
		t.Errorf("409 = %+v, %v, want exists", res, err)
	}
}

func TestIotoOutageIsRetriedAndExistsOnRetry(t *testing.T) {
	b := newFakeBuilder()
	b.fail = func(n int, _ map[string]any) (int, string, string) {
		if n == 3 {
			return http.StatusServiceUnavailable, "5", "Maintenance"
		}
		return 0, "", ""
	}
	srv := httptest.NewServer(b)
	defer srv.Close()
	target := newIotoTarget(t, srv.URL+"/api", upstream.TargetConfig{})
	c := testChunk(t, "k", 4)

	_, err := target.Push(context.Background(), c)
	if !errors.As(err, new(*upstream.RetryError)) || upstream.RetryAfter(err) != 5*time.Second {
		t.Fatalf("Push during an outage = %v, want a retryable error asking for 5s", err)
	}
	res, err := target.Push(context.Background(), c)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	want := []string{"exists", "exists", "ok", "ok"}
	for i, r := range res {
		if r.Status != want[i] {
			t.Errorf("retry result %d = %+v, want %s", i, r, want[i])
		}
	}
	for _, d := range c.Devices {
		if n := b.registered[d.UCI.String()]; n != 1 {
			t.Errorf("%s registered %d times", d.UCI, n)
		}
	}
}

func TestIotoRefusals(t *testing.T) {
	t.Run("bad token", func(t *testing.T) {
		b := newFakeBuilder()
		srv := httptest.NewServer(b)
		defer srv.Close()
		res, err := newIotoTarget(t, srv.URL+"/api", upstream.TargetConfig{Token: "wrong"}).Push(context.Background(), testChunk(t, "k", 3))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Status != upstream.StatusError || !strings.Contains(r.Message, "check the target's token; Builder says: Invalid token") {
				t.Errorf("result %d = %+v", i, r)
			}
		}
		if b.requests != 1 {
			t.Errorf("%d requests with a refused token, want 1", b.requests)
		}
	})
	t.Run("wrong url", func(t *testing.T) {
		b := newFakeBuilder()
		srv := httptest.NewServer(b)
		defer srv.Close()
		res, err := newIotoTarget(t, srv.URL+"/v9", upstream.TargetConfig{}).Push(context.Background(), testChunk(t, "k", 2))
		if err != nil || !strings.Contains(res[1].Message, "check the target's url") || b.requests != 1 {
			t.Errorf("Push = %+v, %v after %d requests", res, err, b.requests)
		}
	})
	t.Run("one device refused", func(t *testing.T) {
		b := newFakeBuilder()
		b.fail = func(n int, _ map[string]any) (int, string, string) {
			if n == 2 {
				return http.StatusBadRequest, "", "Invalid device attributes"
			}
			return 0, "", ""
		}
		srv := httptest.NewServer(b)
		defer srv.Close()
		res, err := newIotoTarget(t, srv.URL+"/api", upstream.TargetConfig{}).Push(context.Background(), testChunk(t, "k", 3))
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Status != "ok" || res[2].Status != "ok" || res[1].Status != "error" ||
			res[1].Message != "the Ioto Builder refused the device (HTTP 400 Bad Request): Invalid device attributes" {
			t.Errorf("results = %+v", res)
		}
	})
}
