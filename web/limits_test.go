package web_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/web"
)

// raw sends one request in-process from a LAN address and returns the recorder.
func (f *fixture) raw(tb testing.TB, req *http.Request) *httptest.ResponseRecorder {
	tb.Helper()
	req.RemoteAddr = "192.168.1.20:50000"
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec
}

// unsized hides a body's length, as a chunked upload does.
func unsized(r io.Reader) io.Reader { return io.MultiReader(r) }

// Every body is bounded before anything parses it, and multipart bodies are refused
// unread: a form or JSON call over 64 KiB is 413, an upload is 415; on the login page
// as a plain message, on the API as {"error","code"}.
func TestBodiesAreBoundedBeforeParsing(t *testing.T) {
	f := newFixture(t, web.Options{})
	bigForm := "name=tester&password=tester-password&pad=" + strings.Repeat("x", 70<<10)
	multipart := "--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\ntester\r\n" +
		"--b\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\ntester-password\r\n--b--\r\n"
	for _, tc := range []struct {
		name, target, contentType string
		body                      io.Reader
		status                    int
		code                      string // "" for a page
		text                      string
	}{
		{"login form with a length over the limit", "/login", "application/x-www-form-urlencoded", strings.NewReader(bigForm), 413, "", "64 KiB"},
		{"login form without a length, over the limit", "/login", "application/x-www-form-urlencoded", unsized(strings.NewReader(bigForm)), 413, "", "64 KiB"},
		{"login as multipart", "/login", "multipart/form-data; boundary=b", unsized(strings.NewReader(multipart)), 415, "", "multipart/form-data bodies are not accepted"},
		{"login as multipart, upper case", "/login", "Multipart/Form-Data; boundary=b", unsized(strings.NewReader(multipart)), 415, "", "not accepted"},
		{"API call as multipart", "/api/v1/batches", "multipart/form-data; boundary=b", unsized(strings.NewReader(multipart)), 415, serializer.EUNSUPPORTED, "not accepted"},
		{"API call without a length, over the limit", "/api/v1/batches", "application/json", unsized(strings.NewReader(`{"station":"` + strings.Repeat("x", 70<<10) + `"}`)), 413, serializer.ETOOLARGE, "64 KiB"},
		{"jig as multipart", "/ioto/serialize", "multipart/form-data; boundary=b", unsized(strings.NewReader(multipart)), 415, serializer.EUNSUPPORTED, "not accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", tc.target, tc.body)
			if _, hidden := tc.body.(*strings.Reader); !hidden {
				req.ContentLength = -1
			}
			req.Header.Set("Content-Type", tc.contentType)
			req.Header.Set("Authorization", "Bearer "+f.key)
			rec := f.raw(t, req)
			body := rec.Body.String()
			if rec.Code != tc.status || !strings.Contains(body, tc.text) {
				t.Fatalf("answer %d %s; want %d saying %q", rec.Code, body, tc.status, tc.text)
			}
			if tc.code != "" && !strings.Contains(body, `"code":"`+tc.code+`"`) {
				t.Fatalf("answer %s; want code %q", body, tc.code)
			}
			if tc.code == "" && strings.HasPrefix(body, "{") {
				t.Fatalf("the login page answered JSON: %s", body)
			}
			if strings.Contains(rec.Header().Get("Set-Cookie"), "serialbox_session=") {
				t.Fatalf("a refused login started a session: %v", rec.Header())
			}
		})
	}
	if bs, _ := f.svc.Batches(context.Background(), serializer.BatchFilter{}); len(bs) != 0 {
		t.Fatalf("a refused call opened a batch: %+v", bs)
	}

	// A logged-in operator's form over the limit changes nothing.
	v := f.visitor(t)
	v.login("tester", "tester-password")
	wantPage(t, v.post("/batches", url.Values{"station": {"demo"}, "reason": {strings.Repeat("x", 70<<10)}}), 413, "64 KiB")
	if bs, _ := f.svc.Batches(context.Background(), serializer.BatchFilter{}); len(bs) != 0 {
		t.Fatalf("a form over the limit opened a batch: %+v", bs)
	}
	// Forms and calls of ordinary size still work.
	if p := v.post("/batches", url.Values{"station": {"demo"}}); p.status != http.StatusSeeOther {
		t.Fatalf("open a batch: %d %s", p.status, p.body)
	}
}

// Passwords, CSRF tokens and API keys are taken from the body or headers only: the
// same values in the URL's query are refused. The jig endpoints keep ?token=.
func TestCredentialsAreNotTakenFromTheURL(t *testing.T) {
	f := newFixture(t, web.Options{},
		serializer.Station{ID: "demo", ProductID: productID, AutoBatch: true},
		serializer.Station{ID: "locked", ProductID: productID, AutoBatch: true, Token: "t0ken"})
	v := f.visitor(t)

	// Log in with the password in the address: refused, no session.
	for _, target := range []string{"/login?name=tester&password=tester-password", "/login?password=tester-password"} {
		p := v.post(target, url.Values{"name": {"tester"}, "next": {"/"}})
		wantPage(t, p, 400, "never from the URL")
		if strings.Contains(p.header.Get("Set-Cookie"), "serialbox_session=") {
			t.Fatalf("%s logged in", target)
		}
	}
	// Name and password in the address, nothing in the body: refused as well.
	req, _ := http.NewRequest("POST", v.base+"/login?name=tester&password=tester-password", nil)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p := v.send(req); p.status == http.StatusSeeOther {
		t.Fatalf("logged in from the query: %d %s", p.status, p.body)
	}

	// A form whose CSRF token rides in the address is refused and changes nothing.
	v.login("tester", "tester-password")
	p := v.post("/batches?csrf="+url.QueryEscape(v.csrf), url.Values{"station": {"demo"}, "csrf": {""}})
	if p.status != 400 && p.status != 403 {
		t.Fatalf("CSRF token from the query: %d %s", p.status, p.body)
	}
	// A session's JSON call with the token in the address instead of X-CSRF-Token.
	req, _ = http.NewRequest("POST", v.base+"/api/v1/batches?csrf="+url.QueryEscape(v.csrf), strings.NewReader(`{"station":"demo"}`))
	req.Header.Set("Content-Type", "application/json")
	if p := v.send(req); p.status != 400 && p.status != 403 {
		t.Fatalf("JSON call with the CSRF token in the query: %d %s", p.status, p.body)
	}
	if bs, _ := f.svc.Batches(context.Background(), serializer.BatchFilter{}); len(bs) != 0 {
		t.Fatalf("a request with credentials in the URL opened a batch: %+v", bs)
	}

	// API keys go in Authorization only.
	for _, target := range []string{"/api/v1/batches?api_key=" + f.key, "/api/v1/batches?access_token=" + f.key, "/api/v1/batches?token=" + f.key} {
		expectError(t, f.do(t, "POST", target, `{"station":"demo"}`), 400, serializer.EINVALID)
	}
	if a := f.op(t, "POST", "/api/v1/batches", `{"station":"demo"}`); a.status != 201 {
		t.Fatalf("API key in the header: %d %s", a.status, a.raw)
	}

	// The jig's station token keeps working in the URL (the Ioto agent can only be given one).
	for _, target := range []string{"/ioto/serialize?station=locked&token=t0ken", "/api/v1/serialize?station=locked&token=t0ken"} {
		if a := f.do(t, "POST", target, `{}`); a.status != 200 || a.str("id") == "" {
			t.Fatalf("%s: %d %s", target, a.status, a.raw)
		}
	}
}

// Monitoring may ask with HEAD; a method a path does not take is 405 method_not_allowed.
func TestHeadAndMethodNotAllowed(t *testing.T) {
	f := newFixture(t, web.Options{})
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		rec := f.raw(t, httptest.NewRequest("HEAD", path, nil))
		if rec.Code != 200 || rec.Body.Len() != 0 {
			t.Errorf("HEAD %s = %d with %d body bytes; want 200 and no body", path, rec.Code, rec.Body.Len())
		}
	}
	for _, tc := range []struct{ method, path string }{{"DELETE", "/healthz"}, {"PUT", "/api/v1/batches"}, {"GET", "/ioto/serialize"}} {
		a := f.do(t, tc.method, tc.path, "")
		expectError(t, a, 405, serializer.EMETHOD)
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A client that hangs up before its answer is no fault: it is counted as canceled,
// not internal, and not logged as an error.
func TestClientHangUpIsNotAnError(t *testing.T) {
	var logs syncBuffer
	f := newFixture(t, web.Options{})
	f.srv = web.New(f.svc, web.Options{DB: f.db, Queue: f.db, Line: f.db, Accounts: f.accounts,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	token, _, err := f.accounts.StartSession(context.Background(), mustOperator(t, f, "tester"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, target := range []string{"/", "/batches", "/api/v1/batches", "/api/v1/stations"} {
		req := httptest.NewRequestWithContext(ctx, "GET", target, nil)
		req.AddCookie(&http.Cookie{Name: "serialbox_session", Value: token})
		f.raw(t, req)
	}
	if got := metric(t, f, `serialbox_errors_total{code="internal"}`); got > 0 {
		t.Errorf("hang-ups counted as internal errors: %v\n%s", got, logs.String())
	}
	if got := metric(t, f, `serialbox_errors_total{code="canceled"}`); got < 1 {
		t.Errorf("hang-ups not counted as canceled: %v", got)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("hang-ups logged as errors:\n%s", logs.String())
	}
}

func mustOperator(t *testing.T, f *fixture, name string) serializer.Operator {
	t.Helper()
	o, err := f.accounts.Login(context.Background(), name, name+"-password", "test")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// countingLine counts how often the line view's data is read.
type countingLine struct {
	web.LineData
	reads atomic.Int64
}

func (c *countingLine) RecentDevices(ctx context.Context, stationID string, limit int) ([]serializer.Device, error) {
	c.reads.Add(1)
	return c.LineData.RecentDevices(ctx, stationID, limit)
}

// openStream starts a live stream and waits for its first snapshot.
func openStream(t *testing.T, ctx context.Context, base string) (*http.Response, *bufio.Scanner) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("events: %d %s", resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			return resp, sc
		}
	}
	t.Fatalf("stream ended before its first snapshot: %v", sc.Err())
	return nil, nil
}

// Live streams share one read of the line per tick, however many are open.
func TestEventStreamsShareOneSnapshot(t *testing.T) {
	f := newFixture(t, web.Options{})
	line := &countingLine{LineData: f.db}
	f.srv = web.New(f.svc, web.Options{Queue: f.db, Line: line, Accounts: f.accounts})
	ts := httptest.NewServer(f.srv)
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const streams = 8
	var bodies []io.Closer
	for range streams {
		resp, _ := openStream(t, ctx, ts.URL)
		bodies = append(bodies, resp.Body)
	}
	start, before := time.Now(), line.reads.Load()
	time.Sleep(3 * time.Second)
	reads, ticks := line.reads.Load()-before, int64(time.Since(start)/time.Second)+1
	for _, b := range bodies {
		b.Close()
	}
	// One station: one read per tick for all eight streams, not one (or two) each.
	if reads > ticks+1 {
		t.Fatalf("%d streams read the line %d times in %d ticks; want one read per tick", streams, reads, ticks)
	}
	if reads < 1 {
		t.Fatal("the line was not read while streams were open")
	}
}

// Live streams are capped: one more than MaxEventStreams is answered 503 with a clear
// message, and a place is free again once a stream ends.
func TestEventStreamsAreCapped(t *testing.T) {
	f := newFixture(t, web.Options{})
	f.srv = web.New(f.svc, web.Options{Queue: f.db, Line: f.db, Accounts: f.accounts, MaxEventStreams: 2})
	ts := httptest.NewServer(f.srv)
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first, _ := openStream(t, ctx, ts.URL)
	second, _ := openStream(t, ctx, ts.URL)
	defer second.Body.Close()

	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == 200 {
		resp.Body.Close()
		t.Fatal("a third stream was served with MaxEventStreams 2")
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), `"code":"unavailable"`) || !strings.Contains(string(body), "2 live line views are open") {
		t.Fatalf("third stream: %d %s", resp.StatusCode, body)
	}
	first.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(ts.URL + "/events")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no place freed after a stream ended: %d", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
