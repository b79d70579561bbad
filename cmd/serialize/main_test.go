package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestSerializeWritesExactlyTheUCI(t *testing.T) {
	var gotPath, gotQuery, gotBody string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotPath, gotQuery, gotBody = r.URL.Path, r.URL.RawQuery, string(b)
		w.Write([]byte(`{"id":"04HMASW9NF6YY093","batch":1}`))
	}))
	defer ts.Close()
	var stdout, stderr bytes.Buffer
	e := env(map[string]string{"SERIALBOX_URL": ts.URL + "?station=line1&token=t", "SERIALBOX_HWID": "UNIT-7"})
	code := run(context.Background(), []string{"PROD1"}, e, &stdout, &stderr)
	// No newline: the agent stores the output untrimmed.
	if code != 0 || stdout.String() != "04HMASW9NF6YY093" || stderr.Len() != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	if gotPath != "/ioto/serialize" || gotQuery != "station=line1&token=t" || gotBody != `{"hwid":"UNIT-7","product":"PROD1"}` {
		t.Fatalf("request: %s ? %s body %s", gotPath, gotQuery, gotBody)
	}
	// The flag wins over the environment.
	stdout.Reset()
	if code := run(context.Background(), []string{"--hwid", "FROM-FLAG", "PROD1"}, e, &stdout, &stderr); code != 0 || gotBody != `{"hwid":"FROM-FLAG","product":"PROD1"}` {
		t.Fatalf("exit %d, body %s", code, gotBody)
	}
}

func TestSerializeRetriesTransientFailures(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.WriteHeader(503)
			w.Write([]byte(`{"error":"the disk is full","code":"unavailable"}`))
		case 2:
			// Drop the connection without an answer.
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		default:
			w.Write([]byte(`{"id":"04HMASW9NF6YY093"}`))
		}
	}))
	defer ts.Close()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--hwid", "U1", "P"}, env(map[string]string{"SERIALBOX_URL": ts.URL}), &stdout, &stderr)
	// The failed attempts leave nothing on stderr: it would become part of the id.
	if code != 0 || stdout.String() != "04HMASW9NF6YY093" || stderr.Len() != 0 || calls.Load() != 3 {
		t.Fatalf("exit %d after %d calls, stdout %q, stderr %q", code, calls.Load(), stdout.String(), stderr.String())
	}
}

func TestSerializeFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
		calls  int32 // requests made: refusals are not retried
	}{
		{"refused", 422, `{"error":"unknown product \"X\"","code":"unknown_product"}`, `unknown product "X" (unknown_product, HTTP 422)`, 1},
		{"identity required", 422, `{"error":"station \"s\" requires a device identity","code":"identity_required"}`, "identity_required", 1},
		{"empty id", 200, `{"id":""}`, "without an id", 1},
		{"not a UCI", 200, `{"id":"CVAN1VBT9TRYJV5F\n"}`, "not a claim ID", 1},
		{"not JSON", 200, `hello`, "not JSON", 1},
		{"appliance keeps failing", 502, `bad gateway`, "HTTP 502: bad gateway (gave up after", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer ts.Close()
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"--timeout", "1500ms", "X"}, env(map[string]string{"SERIALBOX_URL": ts.URL}), &stdout, &stderr)
			if code != 1 || stdout.Len() != 0 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %q", code, stdout.String(), stderr.String(), tc.want)
			}
			if tc.calls > 0 && calls.Load() != tc.calls {
				t.Fatalf("%d requests; want %d", calls.Load(), tc.calls)
			}
			if tc.calls == 0 && calls.Load() < 2 {
				t.Fatalf("a transient failure was asked %d times; want retries", calls.Load())
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), nil, env(nil), &stdout, &stderr); code != 2 || stdout.Len() != 0 {
		t.Fatalf("no product: exit %d, stdout %q", code, stdout.String())
	}
	if code := run(context.Background(), []string{"X"}, env(map[string]string{"SERIALBOX_URL": "ftp://x"}), &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "not an http(s) URL") {
		t.Fatalf("bad URL: exit %d, %q", code, stderr.String())
	}
}

func TestSerializeGivesUpOnADeadAppliance(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close() // nothing listens there now
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run(context.Background(), []string{"--timeout", "1s", "--hwid", "U", "P"}, env(map[string]string{"SERIALBOX_URL": url}), &stdout, &stderr)
	if code != 1 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "gave up after") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Fatalf("--timeout 1s took %s", elapsed)
	}
}
