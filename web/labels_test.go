package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"serialbox/serializer"
	"serialbox/web"
)

// fakePrinters is a web.Printers with fixed answers.
type fakePrinters map[string]web.PrinterView

var _ web.Printers = fakePrinters(nil)

func (f fakePrinters) Printer(id string) (web.PrinterView, bool) { p, ok := f[id]; return p, ok }

func TestReprintAndVoid(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, web.Options{})
	id := f.do(t, "POST", "/ioto/serialize", `{"hwid":"H1"}`).str("id")
	uci := serializer.MustParse(id)

	expectError(t, f.op(t, "POST", "/api/v1/devices/"+id+"/reprint", `{}`), 400, serializer.EINVALID)
	expectError(t, f.op(t, "POST", "/api/v1/devices/"+id+"/reprint", `{"reason":"   "}`), 400, serializer.EINVALID)
	expectError(t, f.op(t, "POST", "/api/v1/devices/"+id+"/reprint", `{"reason":"x","station":"nope"}`), 422, serializer.EUNKNOWNSTATION)
	expectError(t, f.op(t, "POST", "/api/v1/devices/ZZZZZZZZZZZZZZZZ/reprint", `{"reason":"smudged"}`), 404, serializer.ENOTFOUND)
	r := f.op(t, "POST", "/api/v1/devices/"+strings.ToLower(id)+"/reprint", `{"reason":"label smudged"}`)
	if r.status != 201 || r.body["reprint"] != true || r.str("reason") != "label smudged" || r.str("state") != "queued" {
		t.Fatalf("reprint = %d %s", r.status, r.raw)
	}
	jobs, _ := f.db.PrintJobs(ctx, uci)
	if len(jobs) != 2 || jobs[0].Reprint || !jobs[1].Reprint {
		t.Fatalf("jobs after reprint = %+v", jobs)
	}

	expectError(t, f.op(t, "POST", "/api/v1/devices/"+id+"/void", `{}`), 400, serializer.EINVALID)
	v := f.op(t, "POST", "/api/v1/devices/"+id+"/void", `{"reason":"unit scrapped"}`)
	if v.status != 200 || v.str("state") != "voided" {
		t.Fatalf("void = %d %s", v.status, v.raw)
	}
	expectError(t, f.op(t, "POST", "/api/v1/devices/"+id+"/void", `{"reason":"again"}`), 409, serializer.ECONFLICT)
	expectError(t, f.op(t, "POST", "/api/v1/devices/"+id+"/reprint", `{"reason":"x"}`), 409, serializer.ECONFLICT)
	// The voided UCI is never handed out again, not even to the same identity.
	expectError(t, f.do(t, "POST", "/ioto/serialize", `{"hwid":"H1"}`), 409, serializer.EVOIDED)

	jobs, _ = f.db.PrintJobs(ctx, uci)
	for _, j := range jobs {
		if j.State != serializer.JobCancelled {
			t.Fatalf("unprinted label of a voided device is %s", j.State)
		}
	}
	d, _ := f.db.Device(ctx, uci)
	b, _ := f.db.Batch(ctx, d.BatchID)
	if b.Counts.Voided != 1 || b.Counts.Issued != 1 {
		t.Fatalf("batch counts = %+v", b.Counts)
	}
	audit := f.do(t, "GET", "/api/v1/audit?subject=device:"+id, "")
	entries, _ := audit.body["audit"].([]any)
	if audit.status != 200 || len(entries) != 2 || !strings.Contains(audit.raw, "device.void") || !strings.Contains(audit.raw, "label.reprint") || !strings.Contains(audit.raw, "unit scrapped") {
		t.Fatalf("audit = %d %s", audit.status, audit.raw)
	}
}

func TestResolveUncertainJob(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, web.Options{})
	id := f.do(t, "POST", "/ioto/serialize", `{}`).str("id")
	uci := serializer.MustParse(id)
	jobs, _ := f.db.PrintJobs(ctx, uci)
	job := jobs[0].ID
	target := fmt.Sprintf("/api/v1/jobs/%d/resolve", job)

	expectError(t, f.op(t, "POST", target, `{"action":"resend","reason":"x"}`), 409, serializer.ECONFLICT) // still queued
	if err := f.db.UpdateJob(ctx, job, serializer.JobUncertain, "connection dropped after 120 of 300 bytes"); err != nil {
		t.Fatal(err)
	}
	expectError(t, f.op(t, "POST", target, `{"action":"resend"}`), 400, serializer.EINVALID)
	expectError(t, f.op(t, "POST", target, `{"action":"explode","reason":"x"}`), 400, serializer.EINVALID)
	expectError(t, f.op(t, "POST", "/api/v1/jobs/999/resolve", `{"action":"resend","reason":"x"}`), 404, serializer.ENOTFOUND)
	r := f.op(t, "POST", target, `{"action":"resend","reason":"nothing came out"}`)
	if r.status != 200 || r.str("state") != "queued" {
		t.Fatalf("resend = %d %s", r.status, r.raw)
	}
	if err := f.db.UpdateJob(ctx, job, serializer.JobUncertain, "dropped"); err != nil {
		t.Fatal(err)
	}
	r = f.op(t, "POST", target, `{"action":"printed","reason":"label is on the unit"}`)
	if r.status != 200 || r.str("state") != "printed" {
		t.Fatalf("confirm = %d %s", r.status, r.raw)
	}
	if d, _ := f.db.Device(ctx, uci); d.State != serializer.DeviceLabeled {
		t.Fatalf("device after confirmed print = %s", d.State)
	}
}

func TestBatchLabelAndStationView(t *testing.T) {
	printers := fakePrinters{"demo": {Transport: "tcp", State: "paper_out", Message: "Paper out: load labels"}}
	f := newFixture(t, web.Options{Printers: printers})
	f2 := web.New(f.svc, web.Options{Printers: printers, Queue: f.db, Accounts: f.accounts})
	f.srv = f2
	f.do(t, "POST", "/ioto/serialize", `{}`)
	f.do(t, "POST", "/ioto/serialize", `{}`)

	l := f.op(t, "POST", "/api/v1/batches/1/label", `{}`)
	if l.status != 201 || l.str("kind") != "batch" || l.str("station") != "demo" {
		t.Fatalf("batch label = %d %s", l.status, l.raw)
	}
	expectError(t, f.op(t, "POST", "/api/v1/batches/99/label", `{}`), 404, serializer.ENOTFOUND)
	expectError(t, f.op(t, "POST", "/api/v1/batches/1/label", `{"station":"nope"}`), 422, serializer.EUNKNOWNSTATION)

	st := f.do(t, "GET", "/api/v1/stations", "")
	list, _ := st.body["stations"].([]any)
	if st.status != 200 || len(list) != 1 {
		t.Fatalf("stations = %d %s", st.status, st.raw)
	}
	view := list[0].(map[string]any)
	printer, _ := view["printer"].(map[string]any)
	queue, _ := view["queue"].(map[string]any)
	if printer["state"] != "paper_out" || printer["message"] != "Paper out: load labels" || queue["queued"] != 3.0 {
		t.Fatalf("station view = %s", st.raw)
	}
	jobs := f.do(t, "GET", "/api/v1/stations/demo/jobs", "")
	if got, _ := jobs.body["jobs"].([]any); jobs.status != 200 || len(got) != 3 {
		t.Fatalf("station jobs = %d %s", jobs.status, jobs.raw)
	}
	expectError(t, f.do(t, "GET", "/api/v1/stations/nope/jobs", ""), 422, serializer.EUNKNOWNSTATION)
}

// A wrong station token is refused and audited, once a minute per station and address.
func TestRefusedTokenIsAudited(t *testing.T) {
	f := newFixture(t, web.Options{}, serializer.Station{ID: "locked", ProductID: productID, AutoBatch: true, Token: "t0ken"})
	for range 3 {
		expectError(t, f.do(t, "POST", "/ioto/serialize?station=locked&token=guess", `{}`), 401, serializer.EUNAUTHORIZED)
	}
	expectError(t, f.do(t, "POST", "/ioto/serialize?station=locked", `{}`, "RemoteAddr", "10.9.9.9:1"), 401, serializer.EUNAUTHORIZED)
	if a := f.do(t, "POST", "/ioto/serialize?station=locked&token=t0ken", `{}`); a.status != 200 {
		t.Fatalf("right token: %d %s", a.status, a.raw)
	}
	entries, err := f.db.Audit(context.Background(), "station:locked", 0)
	if err != nil || len(entries) != 2 {
		t.Fatalf("audit = %+v, %v; want one entry per source address", entries, err)
	}
	actors := entries[0].Actor + " " + entries[1].Actor
	if entries[0].Action != "jig.token.refused" || !strings.Contains(actors, "jig@10.9.9.9") || !strings.Contains(actors, "jig@192.168.1.20") {
		t.Fatalf("audit entries = %+v", entries)
	}
	if strings.Contains(entries[0].Detail+entries[1].Detail, "t0ken") || strings.Contains(entries[0].Detail+entries[1].Detail, "guess") {
		t.Fatal("the audit trail holds a token")
	}
}
