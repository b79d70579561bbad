package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSerializePrintsTheID(t *testing.T) {
	var gotPath, gotQuery, gotBody string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotPath, gotQuery, gotBody = r.URL.Path, r.URL.RawQuery, string(b)
		w.Write([]byte(`{"id":"04HMASW9NF6YY093","batch":1}`))
	}))
	defer ts.Close()
	var stdout, stderr bytes.Buffer
	env := map[string]string{"SERIALBOX_URL": ts.URL + "?station=line1&token=t"}
	code := run(context.Background(), []string{"PROD1"}, func(k string) string { return env[k] }, &stdout, &stderr)
	if code != 0 || stdout.String() != "04HMASW9NF6YY093\n" || stderr.Len() != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	if gotPath != "/ioto/serialize" || gotQuery != "station=line1&token=t" || gotBody != `{"product":"PROD1"}` {
		t.Fatalf("request: %s ? %s body %s", gotPath, gotQuery, gotBody)
	}
}

func TestSerializeFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"refused", 422, `{"error":"unknown product \"X\"","code":"unknown_product"}`, `unknown product "X" (unknown_product, HTTP 422)`},
		{"empty id", 200, `{"id":""}`, "without an id"},
		{"not JSON", 200, `hello`, "not JSON"},
		{"plain error", 502, `bad gateway`, "HTTP 502: bad gateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer ts.Close()
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"X"}, func(string) string { return ts.URL }, &stdout, &stderr)
			if code == 0 || stdout.Len() != 0 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %q", code, stdout.String(), stderr.String(), tc.want)
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), nil, func(string) string { return "" }, &stdout, &stderr); code != 2 {
		t.Fatalf("no product: exit %d", code)
	}
	if code := run(context.Background(), []string{"X"}, func(string) string { return "ftp://x" }, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "not an http(s) URL") {
		t.Fatalf("bad URL: exit %d, %q", code, stderr.String())
	}
}
