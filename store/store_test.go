package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"serialbox/serializer"
	"serialbox/store"
)

const productID = "01H4R15D3478JD26YDYK408XE6"

// MustOpenDB opens a database in a fresh temporary folder and closes it after the test.
func MustOpenDB(tb testing.TB) *store.DB {
	tb.Helper()
	return mustOpenAt(tb, filepath.Join(tb.TempDir(), "serialbox.db"))
}

func mustOpenAt(tb testing.TB, path string) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// newService returns a Service over db with one product and the given stations.
func newService(tb testing.TB, db *store.DB, stations ...serializer.Station) *serializer.Service {
	tb.Helper()
	svc := serializer.NewService(db, nil)
	err := svc.SetCatalog(context.Background(), serializer.Catalog{
		Products: []serializer.Product{{ID: productID, Name: "Demo Widget", Model: "Demo-01"}, {ID: "OTHER", Name: "Other"}},
		Stations: stations,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return svc
}

var autoStation = serializer.Station{ID: "demo", ProductID: productID, AutoBatch: true}

func TestIssueWritesDeviceAndOneLabelJob(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := newService(t, db, autoStation)
	attrs := json.RawMessage(`{"product":"01H4R15D3478JD26YDYK408XE6","name":"SerialEval"}`)
	got, err := svc.Issue(ctx, serializer.IssueRequest{Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	if got.Device.UCI.IsZero() || got.Existing || got.Batch.ID == 0 || got.Batch.Counts.Issued != 1 {
		t.Fatalf("Issue = %+v", got)
	}
	d, err := db.Device(ctx, got.Device.UCI)
	if err != nil {
		t.Fatal(err)
	}
	if d.BatchID != got.Batch.ID || d.StationID != "demo" || d.ProductID != productID || d.State != serializer.DeviceIssued || string(d.Attributes) != string(attrs) {
		t.Fatalf("stored device = %+v", d)
	}
	jobs, err := db.PrintJobs(ctx, d.UCI)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].State != serializer.JobQueued || jobs[0].Kind != serializer.JobDevice || *jobs[0].UCI != d.UCI || jobs[0].StationID != "demo" {
		t.Fatalf("label jobs = %+v", jobs)
	}
	b, err := db.Batch(ctx, got.Batch.ID)
	if err != nil || b.Counts.Issued != 1 || b.State != serializer.BatchOpen {
		t.Fatalf("batch = %+v, %v", b, err)
	}
	audit, err := db.Audit(ctx, "batch:1", 0)
	if err != nil || len(audit) != 1 || audit[0].Action != "batch.open" || audit[0].Actor != "station:demo" {
		t.Fatalf("audit = %+v, %v", audit, err)
	}
}

func TestIssueConcurrentUCIsAreDistinct(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := newService(t, db, autoStation)
	const workers, each = 32, 100
	var (
		mu   sync.Mutex
		seen = map[serializer.UCI]bool{}
		wg   sync.WaitGroup
		errs = make(chan error, workers)
	)
	for range workers {
		wg.Go(func() {
			for range each {
				got, err := svc.Issue(ctx, serializer.IssueRequest{})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if seen[got.Device.UCI] {
					errs <- errors.New("duplicate UCI " + got.Device.UCI.String())
				}
				seen[got.Device.UCI] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n, err := db.DeviceCount(ctx)
	if err != nil || n != workers*each || len(seen) != workers*each {
		t.Fatalf("devices = %d (%v), distinct answers = %d, want %d", n, err, len(seen), workers*each)
	}
	b, err := db.Batch(ctx, 1)
	if err != nil || b.Counts.Issued != workers*each {
		t.Fatalf("batch counter = %+v, %v", b.Counts, err)
	}
}

func TestIssueRedrawsACollidingUCI(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := newService(t, db, autoStation)
	first := serializer.MustParse("04HMASW9NF6YY093")
	second := serializer.MustParse("ZZZZZZZZZZZZZZZZ")
	draws := []serializer.UCI{first, first, second}
	svc.SetUCISource(func() (serializer.UCI, error) {
		u := draws[0]
		draws = draws[1:]
		return u, nil
	})
	a, err := svc.Issue(ctx, serializer.IssueRequest{})
	if err != nil || a.Device.UCI != first {
		t.Fatalf("first issue = %v, %v", a.Device.UCI, err)
	}
	b, err := svc.Issue(ctx, serializer.IssueRequest{})
	if err != nil || b.Device.UCI != second {
		t.Fatalf("second issue = %v, %v; want the redrawn %v", b.Device.UCI, err, second)
	}
	// A source that only ever returns taken UCIs stops with an error, not a loop.
	svc.SetUCISource(func() (serializer.UCI, error) { return first, nil })
	if _, err := svc.Issue(ctx, serializer.IssueRequest{}); err == nil || serializer.ErrorCode(err) != serializer.EINTERNAL {
		t.Fatalf("issue with a broken random source: %v", err)
	}
	if n, _ := db.DeviceCount(ctx); n != 2 {
		t.Fatalf("devices = %d, want 2", n)
	}
}

func TestIdentityGetsTheSameUCIAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "serialbox.db")
	db := mustOpenAt(t, path)
	svc := newService(t, db, autoStation)
	a, err := svc.Issue(ctx, serializer.IssueRequest{Identity: "hwid:ABC123"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := svc.Issue(ctx, serializer.IssueRequest{Identity: "hwid:ABC123"})
	if err != nil || again.Device.UCI != a.Device.UCI || !again.Existing {
		t.Fatalf("second ask = %+v, %v; want existing %v", again, err, a.Device.UCI)
	}
	other, err := svc.Issue(ctx, serializer.IssueRequest{Identity: "hwid:XYZ"})
	if err != nil || other.Device.UCI == a.Device.UCI {
		t.Fatalf("other identity = %v, %v", other.Device.UCI, err)
	}
	// No identity: always a new UCI.
	n1, _ := svc.Issue(ctx, serializer.IssueRequest{})
	n2, _ := svc.Issue(ctx, serializer.IssueRequest{})
	if n1.Device.UCI == n2.Device.UCI {
		t.Fatal("two requests without identity got the same UCI")
	}
	db.Close()

	db2 := mustOpenAt(t, path)
	svc2 := newService(t, db2, autoStation)
	after, err := svc2.Issue(ctx, serializer.IssueRequest{Identity: "hwid:ABC123"})
	if err != nil || after.Device.UCI != a.Device.UCI {
		t.Fatalf("after reopen = %v, %v; want %v", after.Device.UCI, err, a.Device.UCI)
	}
	jobs, _ := db2.PrintJobs(ctx, a.Device.UCI)
	if len(jobs) != 1 {
		t.Fatalf("identity asked three times has %d label jobs, want 1", len(jobs))
	}
	if n, _ := db2.DeviceCount(ctx); n != 4 {
		t.Fatalf("devices = %d, want 4", n)
	}
}

func TestIssueBatchRules(t *testing.T) {
	ctx := context.Background()
	manual := serializer.Station{ID: "line1", ProductID: productID}
	rolling := serializer.Station{ID: "line2", ProductID: productID, AutoBatch: true, BatchSize: 2}
	db := MustOpenDB(t)
	svc := newService(t, db, manual, rolling)

	code := func(err error) string { return serializer.ErrorCode(err) }

	if _, err := svc.Issue(ctx, serializer.IssueRequest{StationID: "line1"}); code(err) != serializer.ENOBATCH {
		t.Fatalf("no open batch: %v", err)
	}
	b, err := svc.OpenBatch(ctx, serializer.OpenBatchRequest{StationID: "line1", Planned: 2}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.OpenBatch(ctx, serializer.OpenBatchRequest{StationID: "line1"}, "test"); code(err) != serializer.ECONFLICT {
		t.Fatalf("second open batch: %v", err)
	}
	if _, err := svc.Issue(ctx, serializer.IssueRequest{StationID: "line1", ProductID: "OTHER"}); code(err) != serializer.EMISMATCH {
		t.Fatalf("other product: %v", err)
	}
	for range 2 {
		if _, err := svc.Issue(ctx, serializer.IssueRequest{StationID: "line1"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Issue(ctx, serializer.IssueRequest{StationID: "line1"}); code(err) != serializer.EBATCHFULL {
		t.Fatalf("full batch: %v", err)
	}
	// An identity that already has its UCI is answered even from a full batch.
	if _, err := svc.CloseBatch(ctx, b.ID, "test", "done"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CloseBatch(ctx, b.ID, "test", "done"); code(err) != serializer.ECONFLICT {
		t.Fatalf("closing twice: %v", err)
	}
	if _, err := svc.Issue(ctx, serializer.IssueRequest{StationID: "line1"}); code(err) != serializer.ENOBATCH {
		t.Fatalf("after close: %v", err)
	}

	// A station that runs automatically rolls over to a new batch when one is full.
	var batches []int64
	for range 5 {
		got, err := svc.Issue(ctx, serializer.IssueRequest{StationID: "line2"})
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, got.Batch.ID)
	}
	if batches[0] != batches[1] || batches[1] == batches[2] || batches[2] != batches[3] || batches[3] == batches[4] {
		t.Fatalf("rolled batches = %v, want pairs", batches)
	}
	first, _ := db.Batch(ctx, batches[0])
	if first.State != serializer.BatchClosed || first.Counts.Issued != 2 {
		t.Fatalf("first rolled batch = %+v", first)
	}
	list, err := svc.Batches(ctx, serializer.BatchFilter{StationID: "line2"})
	if err != nil || len(list) != 3 || list[0].State != serializer.BatchOpen {
		t.Fatalf("batches of line2 = %+v, %v", list, err)
	}

	if _, err := svc.Issue(ctx, serializer.IssueRequest{StationID: "nope"}); code(err) != serializer.EUNKNOWNSTATION {
		t.Fatalf("unknown station: %v", err)
	}
	if _, err := svc.Issue(ctx, serializer.IssueRequest{StationID: "line2", ProductID: "nope"}); code(err) != serializer.EUNKNOWNPRODUCT {
		t.Fatalf("unknown product: %v", err)
	}
	// Two stations and none is the default: the request must name one.
	if _, err := svc.Issue(ctx, serializer.IssueRequest{}); code(err) != serializer.EUNKNOWNSTATION {
		t.Fatalf("no station named: %v", err)
	}
}

// A station that opens batches by itself opens them only for its own product.
func TestAutoBatchOnlyForTheStationsProduct(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := newService(t, db, autoStation)
	if _, err := svc.Issue(ctx, serializer.IssueRequest{ProductID: "OTHER"}); serializer.ErrorCode(err) != serializer.EMISMATCH {
		t.Fatalf("other product at an automatic station: %v", err)
	}
	if list, _ := svc.Batches(ctx, serializer.BatchFilter{}); len(list) != 0 {
		t.Fatalf("a refused request opened %d batches", len(list))
	}
}

func TestStationToken(t *testing.T) {
	ctx := context.Background()
	svc := newService(t, MustOpenDB(t), serializer.Station{ID: "demo", ProductID: productID, AutoBatch: true, Token: "s3cret"})
	for _, tok := range []string{"", "wrong", "s3cret "} {
		if _, err := svc.Issue(ctx, serializer.IssueRequest{Token: tok}); serializer.ErrorCode(err) != serializer.EUNAUTHORIZED {
			t.Errorf("token %q: %v", tok, err)
		}
	}
	if _, err := svc.Issue(ctx, serializer.IssueRequest{Token: "s3cret"}); err != nil {
		t.Fatal(err)
	}
}

func TestJobUpdatesMoveCounters(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := newService(t, db, autoStation)
	var ucis []serializer.UCI
	for range 3 {
		got, err := svc.Issue(ctx, serializer.IssueRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ucis = append(ucis, got.Device.UCI)
	}
	job, ok, err := db.NextJob(ctx, "demo")
	if err != nil || !ok || *job.UCI != ucis[0] {
		t.Fatalf("NextJob = %+v, %v, %v; want the first device's job", job, ok, err)
	}
	if err := db.UpdateJob(ctx, job.ID, serializer.JobSending, ""); err != nil {
		t.Fatal(err)
	}
	// A job being sent is still returned: after a restart the worker must see it.
	if again, ok, _ := db.NextJob(ctx, "demo"); !ok || again.ID != job.ID || again.Attempts != 1 {
		t.Fatalf("NextJob while sending = %+v", again)
	}
	if err := db.UpdateJob(ctx, job.ID, serializer.JobPrinted, ""); err != nil {
		t.Fatal(err)
	}
	d, _ := db.Device(ctx, ucis[0])
	b, _ := db.Batch(ctx, d.BatchID)
	if d.State != serializer.DeviceLabeled || b.Counts.Labeled != 1 || b.Counts.Issued != 3 {
		t.Fatalf("after printing: device %s, counts %+v", d.State, b.Counts)
	}
	next, ok, _ := db.NextJob(ctx, "demo")
	if !ok || *next.UCI != ucis[1] {
		t.Fatalf("next job = %+v, want the second device's", next)
	}
	if err := db.UpdateJob(ctx, 9999, serializer.JobPrinted, ""); serializer.ErrorCode(err) != serializer.ENOTFOUND {
		t.Fatalf("update of a missing job: %v", err)
	}
	counts, err := db.QueueCounts(ctx, "demo")
	if err != nil || counts[serializer.JobQueued] != 2 {
		t.Fatalf("queue counts = %v, %v", counts, err)
	}
}

func TestDeviceNotFound(t *testing.T) {
	_, err := MustOpenDB(t).Device(context.Background(), serializer.MustParse("04HMASW9NF6YY093"))
	if serializer.ErrorCode(err) != serializer.ENOTFOUND || !strings.Contains(err.Error(), "04HM-ASW9-NF6Y-Y093") {
		t.Fatalf("err = %v", err)
	}
}

func TestAuditIsAppendOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "serialbox.db")
	db := mustOpenAt(t, path)
	svc := newService(t, db, autoStation)
	if _, err := svc.Issue(ctx, serializer.IssueRequest{}); err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, path)
	if _, err := raw.Exec(`UPDATE audit SET actor = 'someone else'`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("update of audit: %v", err)
	}
	if _, err := raw.Exec(`DELETE FROM audit`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("delete from audit: %v", err)
	}
}

func TestSecondOriginalLabelJobIsRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "serialbox.db")
	db := mustOpenAt(t, path)
	got, err := newService(t, db, autoStation).Issue(ctx, serializer.IssueRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = rawDB(t, path).Exec(`INSERT INTO print_jobs (kind, uci, batch_id, station_id, created_at, updated_at) VALUES ('device', ?, 1, 'demo', 0, 0)`, got.Device.UCI.String())
	if err == nil {
		t.Fatal("a second original label job for one device was accepted")
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "serialbox.db")
	db := mustOpenAt(t, path)
	v, err := db.SchemaVersion(ctx)
	if err != nil || v < 1 {
		t.Fatalf("schema version = %d, %v", v, err)
	}
	db.Close()
	if _, err := rawDB(t, path).Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, 1)`, v+1); err != nil {
		t.Fatal(err)
	}
	_, err = store.Open(ctx, path, store.Options{})
	if err == nil || !strings.Contains(err.Error(), "newer serialbox") {
		t.Fatalf("Open of a newer database: %v", err)
	}
}

func TestIntegrityCheck(t *testing.T) {
	s, err := MustOpenDB(t).IntegrityCheck(context.Background())
	if err != nil || s != "ok" {
		t.Fatalf("integrity_check = %q, %v", s, err)
	}
}

func TestTimesComeFromTheClock(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	at := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return at }
	got, err := newService(t, db, autoStation).Issue(ctx, serializer.IssueRequest{})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := db.Device(ctx, got.Device.UCI)
	b, _ := db.Batch(ctx, got.Batch.ID)
	if !d.CreatedAt.Equal(at) || !b.OpenedAt.Equal(at) {
		t.Fatalf("created %v, opened %v; want %v", d.CreatedAt, b.OpenedAt, at)
	}
}

func rawDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	raw, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { raw.Close() })
	return raw
}
