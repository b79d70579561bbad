package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/web"
)

// typo writes a claim ID the way a person might type it: lower case, in groups,
// with O for 0 and l for 1.
func typo(id string) string {
	g := serializer.MustParse(id).Grouped()
	return strings.NewReplacer("0", "O", "1", "l").Replace(strings.ToLower(strings.ReplaceAll(g, "-", " ")))
}

func TestLineViewIsOpenAndShowsTrouble(t *testing.T) {
	printers := fakePrinters{
		"line1": {Transport: "tcp", State: "paper_out", Message: "Paper out: load labels"},
		"line2": {Transport: "tcp", State: "ready", Message: "Ready"},
	}
	f := newFixture(t, web.Options{Printers: printers},
		serializer.Station{ID: "line1", Name: "Line 1", ProductID: productID, AutoBatch: true},
		serializer.Station{ID: "line2", ProductID: productID})
	f.srv = web.New(f.svc, web.Options{Printers: printers, Queue: f.db, Line: f.db, Accounts: f.accounts})
	id := f.do(t, "POST", "/ioto/serialize?station=line1", `{}`).str("id")
	jobs, _ := f.db.PrintJobs(context.Background(), serializer.MustParse(id))
	f.db.UpdateJob(context.Background(), jobs[0].ID, serializer.JobUncertain, "connection dropped after 120 of 300 bytes")

	v := f.visitor(t)
	p := v.get("/")
	wantPage(t, p, 200, "Line 1", "Paper out", "Paper out: load labels", "Printer: Ready", serializer.MustParse(id).Grouped(),
		"Labels that need a decision", "Log in to decide", "No open batch", "Open a batch", `class="alert fault"`)
	if strings.Contains(p.body, `action="/jobs/`) {
		t.Fatal("resolve buttons shown to a visitor who is not logged in")
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"} {
		if got := p.header.Get(h); got != want {
			t.Fatalf("%s = %q", h, got)
		}
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP = %q", csp)
	}
	if strings.Contains(p.body, "<script>") || strings.Contains(p.body, "style=") || strings.Contains(p.body, "onclick") {
		t.Fatal("inline script or style on the page")
	}

	// Logged in, the operator decides: It printed.
	v.login("tester", "tester-password")
	p = v.get("/")
	wantPage(t, p, 200, `action="/jobs/`, "Resend", "It printed")
	r := v.post(fmt.Sprintf("/jobs/%d/resolve", jobs[0].ID), url.Values{"action": {"printed"}, "next": {"/"}})
	wantPage(t, v.follow(r), 200, "recorded as printed")
	if d, _ := f.db.Device(context.Background(), serializer.MustParse(id)); d.State != serializer.DeviceLabeled {
		t.Fatalf("device after It printed = %s", d.State)
	}
	audit, _ := f.db.Audit(context.Background(), fmt.Sprintf("job:%d", jobs[0].ID), 0)
	if len(audit) != 1 || audit[0].Actor != "tester" || audit[0].Reason == "" {
		t.Fatalf("audit = %+v", audit)
	}
	// Deciding the same job twice: a plain message, nothing changes.
	r = v.post(fmt.Sprintf("/jobs/%d/resolve", jobs[0].ID), url.Values{"action": {"resend"}})
	wantPage(t, r, 409, "only failed or uncertain jobs")
}

func TestStaticFilesAreHashedAndCached(t *testing.T) {
	f := newFixture(t, web.Options{})
	v := f.visitor(t)
	p := v.get("/")
	paths := regexp.MustCompile(`(?:href|src)="(/static/[^"]+)"`).FindAllStringSubmatch(p.body, -1)
	if len(paths) != 2 {
		t.Fatalf("static links = %v", paths)
	}
	for _, m := range paths {
		s := v.get(m[1])
		if s.status != 200 || !strings.Contains(s.header.Get("Cache-Control"), "immutable") || s.body == "" {
			t.Fatalf("%s: %d %v", m[1], s.status, s.header)
		}
	}
	if s := v.get("/static/app.css"); s.status != 404 {
		t.Fatalf("unhashed name served: %d", s.status)
	}
	wantPage(t, v.get("/no/such/page"), 404, "Not Found")
}

func TestBatchPages(t *testing.T) {
	f := newFixture(t, web.Options{}, serializer.Station{ID: "line1", ProductID: productID}, serializer.Station{ID: "line2"})
	v := f.visitor(t)
	if p := v.get("/batches"); p.status != http.StatusSeeOther || p.location != "/login?next=%2Fbatches" {
		t.Fatalf("batches without login: %d %q", p.status, p.location)
	}
	v.login("tester", "tester-password")
	wantPage(t, v.get("/batches"), 200, "Open a batch", "No batch yet")

	for _, tc := range []struct {
		name    string
		form    url.Values
		status  int
		message string
	}{
		{"planned not a number", url.Values{"station": {"line1"}, "planned": {"12x"}}, 400, "type a whole number"},
		{"negative", url.Values{"station": {"line1"}, "planned": {"-5"}}, 400, "type a whole number"},
		{"no product", url.Values{"station": {"line2"}, "planned": {"77"}}, 400, "product is required"},
		{"unknown station", url.Values{"station": {"line9"}, "planned": {"77"}}, 422, "unknown station"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := v.post("/batches", tc.form)
			// The message in plain words, and what was typed is still there.
			wantPage(t, p, tc.status, tc.message, `value="`+tc.form.Get("planned")+`"`)
			if bs, _ := f.svc.Batches(context.Background(), serializer.BatchFilter{}); len(bs) != 0 {
				t.Fatalf("a refused form opened %d batches", len(bs))
			}
		})
	}
	p := v.post("/batches", url.Values{"station": {"line1"}, "planned": {"500"}})
	if p.status != http.StatusSeeOther || p.location != "/batches/1" {
		t.Fatalf("open = %d %s", p.status, p.body)
	}
	wantPage(t, v.follow(p), 200, "Batch 1 is open at station line1", "Batch 1", "500", "Close batch",
		`/api/v1/batches/1/manifest?format=csv`, `/api/v1/batches/1/manifest?format=jsonl`, "Print batch label", "Verify labels")
	// A double submit: the second is refused in plain words.
	wantPage(t, v.post("/batches", url.Values{"station": {"line1"}}), 409, "already runs batch 1")

	for range 3 {
		f.do(t, "POST", "/ioto/serialize?station=line1", `{}`)
	}
	wantPage(t, v.follow(v.post("/batches/1/label", nil)), 200, "batch label is queued")
	wantPage(t, v.get("/batches"), 200, `href="/batches/1"`, "open")
	wantPage(t, v.follow(v.post("/batches/1/close", url.Values{"reason": {"shift end"}})), 200, "Batch 1 is closed: 3 issued")
	wantPage(t, v.post("/batches/1/close", url.Values{"reason": {"again"}}), 409, "already closed")
	wantPage(t, v.get("/batches/99"), 404, "no batch 99")
	wantPage(t, v.get("/batches/x"), 400, "not a positive number")
	audit, _ := f.db.Audit(context.Background(), "batch:1", 0)
	if audit[0].Action != "batch.close" || audit[0].Actor != "tester" || audit[0].Reason != "shift end" {
		t.Fatalf("audit = %+v", audit[0])
	}
	// Sync again without targets: a plain message.
	wantPage(t, v.post("/batches/1/sync", nil), 400, "no upstream target is configured")
}

func TestFormsRefuseMissingCSRF(t *testing.T) {
	f := newFixture(t, web.Options{})
	id := f.do(t, "POST", "/ioto/serialize", `{}`).str("id")
	v := f.visitor(t)
	v.login("tester", "tester-password")
	for _, target := range []string{"/batches", "/batches/1/close", "/batches/1/label", "/devices/" + id + "/reprint", "/devices/" + id + "/void", "/verify", "/jobs/1/resolve", "/logout"} {
		for _, token := range []string{"", "forged"} {
			p := v.post(target, url.Values{"csrf": {token}, "reason": {"x"}, "station": {"demo"}, "batch": {"1"}, "scan": {id}})
			wantPage(t, p, 403, "security token")
		}
	}
	if jobs, _ := f.db.PrintJobs(context.Background(), serializer.MustParse(id)); len(jobs) != 1 {
		t.Fatalf("a refused form queued labels: %d jobs", len(jobs))
	}
	if d, _ := f.db.Device(context.Background(), serializer.MustParse(id)); d.State != serializer.DeviceIssued {
		t.Fatalf("a refused form changed the device: %s", d.State)
	}
}

func TestLookupReprintVoidPages(t *testing.T) {
	f := newFixture(t, web.Options{})
	opPw, _ := addOperator(t, f, "olga", serializer.RoleOperator)
	id := f.do(t, "POST", "/ioto/serialize", `{"hwid":"HW-7"}`).str("id")
	grouped := serializer.MustParse(id).Grouped()

	v := f.visitor(t)
	v.login("olga", opPw)
	wantPage(t, v.get("/lookup"), 200, "Scan a label or type a claim ID", "autofocus")
	for _, q := range []string{typo(id), "https://manager.example.com/claim?id=" + id + "&product=" + productID, id} {
		wantPage(t, v.get("/lookup?q="+url.QueryEscape(q)), 200, grouped, "label waiting", "Demo Widget", "hwid:HW-7", "Label jobs", "Audit trail", "Reprint",
			"Voiding a claim ID needs a supervisor")
	}
	for _, tc := range []struct {
		q       string
		status  int
		message string
	}{
		{"hello, world", 400, "is not a claim ID character"},
		{"04HMASW9NF6YY09", 400, "too short"},
		{"ZZZZ-ZZZZ-ZZZZ-ZZZZ", 404, "no device has claim ID"},
		{"https://manager.example.com/claim?product=x", 400, "without a claim ID"},
	} {
		p := v.get("/lookup?q=" + url.QueryEscape(tc.q))
		wantPage(t, p, tc.status, tc.message, `value="`+strings.ReplaceAll(tc.q, "&", "&amp;")+`"`)
	}

	// Reprint needs a reason; what was typed stays.
	p := v.post("/devices/"+id+"/reprint", url.Values{"reason": {"   "}})
	wantPage(t, p, 400, "a reason is required", grouped)
	p = v.post("/devices/"+id+"/reprint", url.Values{"reason": {"label smudged"}})
	if p.status != http.StatusSeeOther || p.location != "/lookup?q="+id {
		t.Fatalf("reprint = %d %s", p.status, p.body)
	}
	wantPage(t, v.follow(p), 200, "Reprint of "+grouped+" queued", "reprint", "label smudged", "label.reprint", "olga")

	// Operators cannot void, not even by sending the form.
	wantPage(t, v.post("/devices/"+id+"/void", url.Values{"reason": {"scrap"}}), 403, "only a supervisor")
	if d, _ := f.db.Device(context.Background(), serializer.MustParse(id)); d.State == serializer.DeviceVoided {
		t.Fatal("an operator voided a UCI")
	}
	sup := f.visitor(t)
	sup.login("tester", "tester-password")
	wantPage(t, sup.get("/lookup?q="+id), 200, "Void this claim ID")
	wantPage(t, sup.post("/devices/"+id+"/void", url.Values{"reason": {""}}), 400, "a reason is required")
	long := strings.Repeat("scrapped ", 60)
	wantPage(t, sup.post("/devices/"+id+"/void", url.Values{"reason": {long}}), 400, "at most 500", `value="`+long+`"`)
	wantPage(t, sup.follow(sup.post("/devices/"+id+"/void", url.Values{"reason": {"unit scrapped"}})), 200, "is voided", "VOIDED", "device.void", "unit scrapped")
	wantPage(t, sup.post("/devices/"+id+"/reprint", url.Values{"reason": {"again"}}), 409, "voided")
}

func TestVerifyPage(t *testing.T) {
	f := newFixture(t, web.Options{}, serializer.Station{ID: "line1", ProductID: productID}, serializer.Station{ID: "line2", ProductID: productID})
	f.op(t, "POST", "/api/v1/batches", `{"station":"line1"}`)
	f.op(t, "POST", "/api/v1/batches", `{"station":"line2"}`)
	mine := f.do(t, "POST", "/ioto/serialize?station=line1", `{}`).str("id")
	other := f.do(t, "POST", "/ioto/serialize?station=line2", `{}`).str("id")
	scrapped := f.do(t, "POST", "/ioto/serialize?station=line1", `{}`).str("id")
	f.op(t, "POST", "/api/v1/devices/"+scrapped+"/void", `{"reason":"scrap"}`)

	v := f.visitor(t)
	v.login("tester", "tester-password")
	wantPage(t, v.get("/verify"), 200, "Choose the batch", `href="/verify?batch=1"`, `href="/verify?batch=2"`)
	wantPage(t, v.get("/verify?batch=1"), 200, "Verify labels · batch 1", `name="scan"`, "autofocus")
	for _, tc := range []struct {
		scan   string
		status int
		texts  []string
	}{
		{"https://manager.example.com/claim?id=" + mine, 200, []string{"result-ok", "OK", "now verified", "1 of 2 verified"}},
		{typo(mine), 409, []string{"result-bad", "SCANNED TWICE"}},
		{other, 409, []string{"result-bad", "OTHER BATCH", "belongs to batch 2"}},
		{scrapped, 409, []string{"result-bad", "VOIDED"}},
		{"ZZZZZZZZZZZZZZZZ", 404, []string{"result-bad", "UNKNOWN CLAIM ID"}},
		{"%%garbage%%", 400, []string{"result-bad", "NOT A CLAIM ID", "Scanned: %%garbage%%"}},
	} {
		p := v.post("/verify", url.Values{"batch": {"1"}, "scan": {tc.scan}})
		wantPage(t, p, tc.status, tc.texts...)
	}
	wantPage(t, v.post("/verify", url.Values{"scan": {mine}}), 400, "Pick a batch first")
	b, _ := f.svc.Batch(context.Background(), 1)
	if b.Counts.Verified != 1 {
		t.Fatalf("verified = %d", b.Counts.Verified)
	}
}

// The live stream sends a snapshot at once and another when the line changes.
func TestEventsStreamTheLine(t *testing.T) {
	f := newFixture(t, web.Options{})
	f.srv = web.New(f.svc, web.Options{Queue: f.db, Line: f.db, Accounts: f.accounts})
	v := f.visitor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, v.base+"/events", nil)
	resp, err := v.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %v", resp.StatusCode, resp.Header)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	next := func() map[string]string {
		t.Helper()
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var frags map[string]string
				if err := json.Unmarshal([]byte(data), &frags); err != nil {
					t.Fatal(err)
				}
				return frags
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return nil
	}
	first := next()
	if !strings.Contains(first["line"], "No open batch") {
		t.Fatalf("first snapshot = %v", first)
	}
	id := f.do(t, "POST", "/ioto/serialize", `{}`).str("id")
	second := next()
	if !strings.Contains(second["line"], serializer.MustParse(id).Grouped()) {
		t.Fatalf("second snapshot lacks the new device: %v", second["line"])
	}
}
