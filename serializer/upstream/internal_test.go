package upstream

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"serialbox/serializer"
)

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"120", 2 * time.Minute},
		{" 7 ", 7 * time.Second},
		{"999999999999", maxRetryAfter},
		{"Sat, 01 Mar 2025 08:01:30 GMT", 90 * time.Second},
		{"Sat, 01 Mar 2025 07:00:00 GMT", 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		h.Set("Retry-After", tt.v)
		if got := retryAfter(h, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"  two\n\tlines \r\n", "two lines"},
		{"bell\x07\x00", "bell"},
		{"bad \xff utf8", "bad ? utf8"},
		{strings.Repeat("x", 400), strings.Repeat("x", maxMessageLen) + "…"},
	}
	for _, tt := range tests {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFileKey(t *testing.T) {
	for key, want := range map[string]string{
		"01JB5K3M8Q":            "01JB5K3M8Q",
		"cloud-0001_a":          "cloud-0001_a",
		"../x":                  "",
		"":                      "",
		"a b":                   "",
		strings.Repeat("a", 65): "",
	} {
		got := fileKey(key)
		if want != "" && got != want {
			t.Errorf("fileKey(%q) = %q, want %q", key, got, want)
		}
		if want == "" && (len(got) != 32 || strings.ContainsAny(got, "./ ")) {
			t.Errorf("fileKey(%q) = %q, want a hash", key, got)
		}
	}
}

func TestDefaultBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 10: 512 * time.Second, 11: BackoffMax, 1000: BackoffMax} {
		for range 20 {
			if got := DefaultBackoff(n); got < want/2 || got > want {
				t.Fatalf("DefaultBackoff(%d) = %v, want between %v and %v", n, got, want/2, want)
			}
		}
	}
}

// FuzzParseResults feeds arbitrary answers to the result parser: it must never panic,
// and every device of the chunk gets exactly one valid result.
func FuzzParseResults(f *testing.F) {
	f.Add([]byte(`{"results":[{"id":"58KPP23VZ4Y298SM","status":"ok"}]}`))
	f.Add([]byte(`[{"id":"58kp-p23v-z4y2-98sm","status":"exists","message":{"a":1}}]`))
	f.Add([]byte(`{"results":null}`))
	f.Add([]byte(`[{"id":1,"status":true}]`))
	f.Add([]byte("\xff"))
	u := serializer.MustParse("58KPP23VZ4Y298SM")
	c := Chunk{Devices: []serializer.Device{{UCI: u}, {UCI: serializer.MustParse("04HMASW9NF6YY093")}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		wr, err := ParseResults(data)
		if err != nil {
			return
		}
		res := matchResults(c, wr)
		if len(res) != len(c.Devices) {
			t.Fatalf("%d results for %d devices", len(res), len(c.Devices))
		}
		for i, r := range res {
			if r.UCI != c.Devices[i].UCI {
				t.Fatalf("result %d is for %s", i, r.UCI)
			}
			switch r.Status {
			case StatusOK, StatusExists:
			case StatusError:
				if r.Message == "" {
					t.Fatalf("error without a message")
				}
			default:
				t.Fatalf("status %q", r.Status)
			}
			if !utf8.ValidString(r.Message) || utf8.RuneCountInString(r.Message) > maxMessageLen+60 {
				t.Fatalf("message %q", r.Message)
			}
		}
	})
}

// FuzzServerMessage checks that any error body becomes a short, printable message.
func FuzzServerMessage(f *testing.F) {
	f.Add([]byte(`{"error":"Invalid token"}`), "application/json")
	f.Add([]byte(`{"error":{"message":"nested"}}`), "")
	f.Add([]byte("<html><body>502</body></html>"), "text/html")
	f.Add([]byte("plain\x00text\n"), "text/plain")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		h := http.Header{}
		h.Set("Content-Type", ct)
		msg := serverMessage(h, body)
		if msg == "" || !utf8.ValidString(msg) || strings.ContainsAny(msg, "\n\r\x00") || utf8.RuneCountInString(msg) > maxMessageLen+1 {
			t.Fatalf("serverMessage = %q", msg)
		}
	})
}

// FuzzExpandEnv checks that expansion never panics and leaves no ${ of a known name.
func FuzzExpandEnv(f *testing.F) {
	f.Add("${A}-${B}")
	f.Add("$${A}")
	f.Add("${")
	f.Add("${}")
	f.Fuzz(func(t *testing.T, s string) {
		out, err := expandEnv(s, func(k string) string {
			if k == "A" {
				return "${B}"
			}
			return "v"
		})
		if err == nil && !strings.Contains(s, "${") && out != s {
			t.Fatalf("expandEnv(%q) = %q changed a value without ${", s, out)
		}
	})
}
