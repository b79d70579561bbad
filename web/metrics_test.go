package web_test

import (
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"

	"serialbox/web"
)

// metric returns the value of one sample line of /metrics, or -1 when it is missing.
func metric(t *testing.T, f *fixture, sample string) float64 {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.RemoteAddr = "10.0.0.9:1234"
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` ([0-9.e+-]+)$`)
	m := re.FindStringSubmatch(rec.Body.String())
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Metrics appear and move when devices are issued, requests are refused and the
// printer's state changes.
func TestMetricsMove(t *testing.T) {
	printers := fakePrinters{"demo": {Transport: "tcp", State: "ready", Printed: 7}}
	f := newFixture(t, web.Options{Printers: printers})
	f.srv = web.New(f.svc, web.Options{Printers: printers, Queue: f.db, Stats: f.db, DB: f.db, Accounts: f.accounts})

	issued := `serialbox_ucis_issued_total{product="01H4R15D3478JD26YDYK408XE6",station="demo"}`
	if v := metric(t, f, issued); v != -1 {
		t.Fatalf("issued before any device = %v", v)
	}
	for range 3 {
		f.do(t, "POST", "/ioto/serialize", `{}`)
	}
	f.do(t, "POST", "/ioto/serialize", `{"hwid":"H"}`)
	f.do(t, "POST", "/ioto/serialize", `{"hwid":"H"}`) // a repeat is not a new UCI
	if v := metric(t, f, issued); v != 4 {
		t.Fatalf("issued = %v, want 4", v)
	}
	f.do(t, "POST", "/ioto/serialize", `{"product":"NOPE"}`)
	if v := metric(t, f, `serialbox_errors_total{code="unknown_product"}`); v != 1 {
		t.Fatalf("unknown_product errors = %v, want 1", v)
	}
	if v := metric(t, f, `serialbox_serialize_duration_seconds_count{endpoint="ioto"}`); v != 6 {
		t.Fatalf("serialize latency count = %v, want 6", v)
	}
	if v := metric(t, f, `serialbox_label_jobs{state="queued",station="demo"}`); v != 4 {
		t.Fatalf("queued label jobs = %v, want 4", v)
	}
	if metric(t, f, `serialbox_printer_state{state="ready",station="demo"}`) != 1 || metric(t, f, `serialbox_printer_state{state="paper_out",station="demo"}`) != 0 {
		t.Fatal("printer state gauges wrong while ready")
	}
	printers["demo"] = web.PrinterView{Transport: "tcp", State: "paper_out", Printed: 9}
	if metric(t, f, `serialbox_printer_state{state="paper_out",station="demo"}`) != 1 || metric(t, f, `serialbox_labels_printed_total{station="demo"}`) != 9 {
		t.Fatal("printer state gauges did not follow the printer")
	}
	if v := metric(t, f, `serialbox_database_bytes`); v <= 0 {
		t.Fatalf("database bytes = %v", v)
	}
	if a := f.do(t, "GET", "/readyz", ""); a.status != 200 || a.str("status") != "ready" {
		t.Fatalf("readyz = %d %s", a.status, a.raw)
	}
	f.db.Close()
	expectError(t, f.do(t, "GET", "/readyz", ""), 503, "unavailable")
}
