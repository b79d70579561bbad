package upstream

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"serialbox/serializer"
)

// HTTP header names of the http target.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderSignature      = "X-Serialbox-Signature" // "sha256=" + hex HMAC-SHA256 of the body
	HeaderTimestamp      = "X-Serialbox-Timestamp" // Unix seconds when the request was made
)

// Limits on what is read from an upstream.
const (
	maxResponseBody = 4 << 20  // a results answer for 1,000 devices is about 100 KiB
	maxErrorBody    = 64 << 10 // enough for any error message worth showing
	maxMessageLen   = 300      // runes of an upstream message kept per device
	maxRetryAfter   = 24 * time.Hour
)

// PushBody is the JSON body the http target posts.
type PushBody struct {
	Batch   int64        `json:"batch"`
	Product string       `json:"product"`
	Devices []PushDevice `json:"devices"`
}

// PushDevice is one device in a PushBody.
type PushDevice struct {
	ID         string          `json:"id"` // the UCI, canonical form
	Product    string          `json:"product"`
	Batch      int64           `json:"batch"`
	Station    string          `json:"station"`
	Identity   string          `json:"identity"`        // "" when the jig sent none
	Attributes json.RawMessage `json:"attributes"`      // the jig's device object; null when none
	Created    string          `json:"created"`         // RFC 3339, UTC
	Token      string          `json:"token,omitempty"` // provisioning token, for products with a secret
}

// httpTarget posts chunks as JSON and reads per-device results.
type httpTarget struct {
	cfg     TargetConfig
	client  *http.Client
	safeURL string
	now     func() time.Time
}

func newHTTPTarget(cfg TargetConfig) (*httpTarget, error) {
	client, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	return &httpTarget{cfg: cfg, client: client, safeURL: cfg.RedactedURL(), now: time.Now}, nil
}

// newHTTPClient returns a client with the target's timeout and TLS settings. It does
// not follow redirects: a POST must not turn into a GET somewhere else.
func newHTTPClient(cfg TargetConfig) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, invalid("ca_file", "%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, invalid("ca_file", "no PEM certificate in %s", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, invalid("cert_file", "loading the client certificate: %v", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		base = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	tr := base.Clone()
	tr.TLSClientConfig = tc
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{
		Transport:     tr,
		Timeout:       time.Duration(cfg.Timeout),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

func (t *httpTarget) Name() string   { return t.cfg.Name }
func (t *httpTarget) ChunkSize() int { return t.cfg.ChunkSize }

// Push posts the chunk and maps the answer to one result per device.
func (t *httpTarget) Push(ctx context.Context, c Chunk) ([]Result, error) {
	if len(c.Devices) == 0 {
		return nil, nil
	}
	body, err := json.Marshal(pushBody(c))
	if err != nil {
		return nil, fmt.Errorf("encoding the chunk: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("push to %s: %w", t.safeURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "serialbox")
	req.Header.Set(HeaderIdempotencyKey, c.Key)
	switch {
	case t.cfg.Token != "":
		req.Header.Set("Authorization", "Bearer "+t.cfg.Token)
	case t.cfg.Username != "":
		req.SetBasicAuth(t.cfg.Username, t.cfg.Password)
	}
	if t.cfg.HMACSecret != "" {
		req.Header.Set(HeaderSignature, Sign(t.cfg.HMACSecret, body))
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(t.now().Unix(), 10))
	}

	resp, err := t.client.Do(req)
	if err != nil {
		return nil, retryable(0, "push to %s: %w", t.safeURL, transportError(ctx, err))
	}
	defer resp.Body.Close()
	code := resp.StatusCode
	if code == http.StatusOK || code == http.StatusCreated {
		data, err := readLimited(resp.Body, maxResponseBody)
		if err != nil {
			return nil, retryable(0, "push to %s: reading the answer: %v", t.safeURL, err)
		}
		wr, err := ParseResults(data)
		if err != nil {
			return nil, retryable(0, "push to %s: HTTP %d with an answer that is not the results JSON expected: %v", t.safeURL, code, err)
		}
		return matchResults(c, wr), nil
	}
	data, _ := readLimited(resp.Body, maxErrorBody)
	msg := serverMessage(resp.Header, data)
	what := statusText(code)
	switch {
	case temporaryStatus(code) || code/100 == 2:
		return nil, retryable(retryAfter(resp.Header, t.now()), "push to %s: %s: %s", t.safeURL, what, msg)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return everyDevice(c, StatusError, fmt.Sprintf(
			"upstream refused the credentials (%s): check the target's token, username/password or hmac_secret; upstream says: %s", what, msg)), nil
	case code/100 == 3:
		return everyDevice(c, StatusError, fmt.Sprintf(
			"upstream answered with a redirect (%s) to %s: set the target's url to the new address", what, redactLocation(resp.Header.Get("Location")))), nil
	default:
		return everyDevice(c, StatusError, fmt.Sprintf("upstream refused the chunk (%s): %s", what, msg)), nil
	}
}

// pushBody turns a chunk into the wire format.
func pushBody(c Chunk) PushBody {
	b := PushBody{Batch: c.Batch.ID, Product: c.Product.ID, Devices: make([]PushDevice, len(c.Devices))}
	if b.Product == "" {
		b.Product = c.Batch.ProductID
	}
	for i, d := range c.Devices {
		if b.Batch == 0 {
			b.Batch = d.BatchID
		}
		product := d.ProductID
		if product == "" {
			product = b.Product
		}
		b.Devices[i] = PushDevice{
			ID:         d.UCI.String(),
			Product:    product,
			Batch:      d.BatchID,
			Station:    d.StationID,
			Identity:   d.Identity,
			Attributes: attributesJSON(d.Attributes),
			Created:    formatTime(d.CreatedAt),
		}
		if len(c.Product.ProvisioningSecret) > 0 {
			b.Devices[i].Token = serializer.ProvisioningToken(c.Product.ProvisioningSecret, b.Devices[i].ID)
		}
	}
	return b
}

// Sign returns the X-Serialbox-Signature value of body: "sha256=" followed by the hex
// HMAC-SHA256 of the exact body bytes with secret as the key.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether sig is body's signature with secret, in constant time.
func VerifySignature(secret string, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(strings.TrimSpace(sig)))
}

// WireResult is one per-device verdict as an upstream writes it.
type WireResult struct {
	ID      string          `json:"id"`
	Status  string          `json:"status"`
	Message json.RawMessage `json:"message,omitempty"`
}

// ParseResults reads an upstream's answer: {"results": [...]} or a bare array of
// {"id", "status", "message"}.
func ParseResults(data []byte) ([]WireResult, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, errors.New("empty answer")
	}
	var res []WireResult
	if data[0] == '[' {
		if err := json.Unmarshal(data, &res); err != nil {
			return nil, err
		}
		return res, nil
	}
	var obj struct {
		Results *[]WireResult `json:"results"`
	}
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, err
	}
	if obj.Results == nil {
		return nil, errors.New(`no "results" in the answer`)
	}
	return *obj.Results, nil
}

// matchResults gives every device of c its verdict from wr, in the chunk's order. A
// device the upstream did not answer for is an error; answers about other ids are
// ignored, and of two answers about one device the first counts.
func matchResults(c Chunk, wr []WireResult) []Result {
	by := make(map[serializer.UCI]Result, len(wr))
	for _, w := range wr {
		u, err := serializer.Parse(w.ID)
		if err != nil {
			continue
		}
		if _, dup := by[u]; dup {
			continue
		}
		status, msg := normalizeStatus(w.Status, rawMessage(w.Message))
		by[u] = Result{UCI: u, Status: status, Message: msg}
	}
	res := make([]Result, len(c.Devices))
	for i, d := range c.Devices {
		r, ok := by[d.UCI]
		if !ok {
			r = Result{UCI: d.UCI, Status: StatusError, Message: "no result from upstream"}
		}
		res[i] = r
	}
	return res
}

// normalizeStatus maps an upstream's status word to ours; words other than the usual
// ones count as an error, so nothing unknown is taken for success.
func normalizeStatus(status, msg string) (string, string) {
	switch strings.ToLower(strings.TrimSpace(status)) {
	case "ok", "success", "created", "registered":
		return StatusOK, msg
	case "exists", "exist", "already_exists", "duplicate":
		return StatusExists, msg
	case "error", "failed", "failure", "rejected":
		if msg == "" {
			msg = "refused by upstream (no reason given)"
		}
		return StatusError, msg
	}
	return StatusError, clean(fmt.Sprintf("upstream status %q: %s", status, msg))
}

func rawMessage(m json.RawMessage) string {
	if len(m) == 0 || string(m) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(m, &s) == nil {
		return clean(s)
	}
	var b bytes.Buffer
	if json.Compact(&b, m) == nil {
		return clean(b.String())
	}
	return ""
}

// temporaryStatus reports whether an HTTP status may change by retrying the same
// request: 408, 409 (a request with the same idempotency key is still being
// processed), 425, 429 and 5xx.
func temporaryStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return code >= 500
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("HTTP %d %s", code, t)
	}
	return fmt.Sprintf("HTTP %d", code)
}

// retryAfter reads Retry-After as seconds or an HTTP date; 0 when absent or past.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		d = time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// serverMessage extracts a readable reason from an error answer: the "message" or
// "error" of a JSON body, or the text of a short plain body, else the status text.
func serverMessage(h http.Header, data []byte) string {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return "no reason given"
	}
	if data[0] == '{' {
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) == nil {
			for _, k := range []string{"message", "error", "detail", "reason", "title"} {
				v, ok := obj[k]
				if !ok {
					continue
				}
				var nested struct {
					Message string `json:"message"`
				}
				if json.Unmarshal(v, &nested) == nil && clean(nested.Message) != "" {
					return clean(nested.Message)
				}
				if s := rawMessage(v); s != "" {
					return s
				}
			}
		}
	}
	ct := strings.ToLower(h.Get("Content-Type"))
	if strings.Contains(ct, "html") || data[0] == '<' {
		return "no reason given (the answer is an HTML page)"
	}
	if msg := clean(string(data)); msg != "" {
		return msg
	}
	return "no reason given"
}

// clean makes an upstream's text safe to store and show: valid UTF-8, no control
// characters, at most maxMessageLen runes.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if utf8.RuneCountInString(s) > maxMessageLen {
		s = strings.TrimRight(string([]rune(s)[:maxMessageLen]), " ") + "…"
	}
	return s
}

// readLimited reads all of r, or fails when r holds more than limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return data, err
	}
	if int64(len(data)) > limit {
		return data[:limit], fmt.Errorf("answer larger than %d bytes", limit)
	}
	return data, nil
}

// transportError strips the request URL from a client error (its query may hold a
// secret) and says plainly when the push ran out of time.
func transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("no answer within the timeout: %w", ue.Err)
		}
		return ue.Err
	}
	return err
}

func redactLocation(loc string) string {
	if loc == "" {
		return "(no Location)"
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "(an invalid Location)"
	}
	return redactURL(u)
}

// attributesJSON returns the jig's device object as compact JSON for embedding, null
// when there is none, and a JSON string when the stored bytes are not valid JSON.
func attributesJSON(raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	if json.Valid(raw) {
		return raw
	}
	s, _ := json.Marshal(strings.ToValidUTF8(string(raw), "\uFFFD"))
	return s
}

// formatTime writes t in RFC 3339 in UTC with as many fractional digits as needed;
// the zero time is "".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
