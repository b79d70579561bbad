package web

import (
	"net/netip"
	"testing"
	"time"

	"serialbox/serializer"
)

func TestScanToUCI(t *testing.T) {
	const want = "04HMASW9NF6YY093"
	for _, tc := range []struct {
		in   string
		ok   bool
		desc string
	}{
		{want, true, "bare"},
		{"04hm-asw9-nf6y-y093", true, "grouped, lower case"},
		{" 04HM ASW9 NF6Y YO93 ", true, "spaces, O for 0"},
		{"O4HM-ASW9-NF6Y-Y093", true, "O for 0 at the start"},
		{"https://manager.example.com/claim?id=" + want + "&product=P1", true, "claim URL"},
		{"https://manager.example.com/claim?product=P1&id=04hm-asw9-nf6y-y093", true, "claim URL, id last and grouped"},
		{"claim?id=" + want, true, "relative claim URL"},
		{"https://manager.example.com/claim?product=P1", false, "claim URL without id"},
		{"", false, "empty"},
		{"   ", false, "blank"},
		{"04HMASW9NF6YY09", false, "one symbol short"},
		{"04HMASW9NF6YY093X", false, "wrong check symbol"},
		{"hello world", false, "garbage"},
		{"04HM!SW9NF6YY093", false, "punctuation"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			u, err := scanToUCI(tc.in)
			if tc.ok && (err != nil || u.String() != want) {
				t.Fatalf("scanToUCI(%q) = %v, %v; want %s", tc.in, u, err, want)
			}
			if !tc.ok && serializer.ErrorCode(err) != serializer.EINVALID {
				t.Fatalf("scanToUCI(%q) = %v, %v; want an invalid error", tc.in, u, err)
			}
		})
	}
}

func TestParsePlanned(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"", 0, true}, {" 500 ", 500, true}, {"0", 0, true}, {"-1", 0, false}, {"12x", 0, false},
		{"1e3", 0, false}, {"100000001", 0, false}, {"100000000", 100000000, true},
	} {
		got, err := parsePlanned(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parsePlanned(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "/",
		"/batches/3":           "/batches/3",
		"/lookup?q=04HM":       "/lookup?q=04HM",
		"//evil.example.com/x": "/",
		"/\\evil.example.com":  "/",
		"https://evil.example": "/",
		"batches":              "/",
		"javascript:alert(1)":  "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoginLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	l := newLoginLimiter(3, time.Minute)
	l.now = func() time.Time { return now }
	a, b := netip.MustParseAddr("192.168.1.5"), netip.MustParseAddr("192.168.1.6")
	for i := range 3 {
		if !l.allow(a) {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	if l.allow(a) {
		t.Fatal("fourth attempt within the window allowed")
	}
	if !l.allow(b) {
		t.Fatal("another address is limited too")
	}
	now = now.Add(61 * time.Second)
	if !l.allow(a) {
		t.Fatal("still refused after the window")
	}
}

func TestPrinterWords(t *testing.T) {
	want := map[string]words{
		serializer.PrinterReady: {"Ready", "ok"}, serializer.PrinterPaperOut: {"Paper out", "fault"},
		serializer.PrinterHeadOpen: {"Head open", "fault"}, serializer.PrinterPaused: {"Paused", "warn"},
		serializer.PrinterRibbonOut: {"Ribbon out", "fault"}, serializer.PrinterBufferFull: {"Busy", "warn"},
		serializer.PrinterOffline: {"Offline", "fault"}, serializer.PrinterFaulted: {"Fault", "fault"},
		serializer.PrinterUnknown: {"No status", "idle"}, "": {"No status", "idle"},
	}
	for _, state := range serializer.PrinterStates {
		if _, ok := want[state]; !ok {
			t.Errorf("printer state %q has no words in this test", state)
		}
	}
	for state, want := range want {
		if got := printerWords(state); got != want {
			t.Errorf("printerWords(%q) = %v, want %v", state, got, want)
		}
	}
}

func TestTemplatesParse(t *testing.T) {
	u, err := newUI()
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{"line", "login", "batches", "batch", "lookup", "verify", "error"} {
		if u.pages[page] == nil {
			t.Errorf("no page %q", page)
		}
	}
	for _, f := range []string{"app.css", "app.js"} {
		if p := u.paths[f]; p == "" || p == "/static/"+f {
			t.Errorf("static %s is served as %q; want a content-hashed name", f, p)
		}
	}
}
