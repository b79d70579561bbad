package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"serialbox/serializer"
	"serialbox/serializer/upstream"
	"serialbox/store"
)

// A full automatic batch is requested upstream in the transaction that closes it; its
// devices reach the outbox afterwards. A restart right after the request, and another
// in the middle of the expansion, still get every device queued exactly once.
func TestRolloverRequestSurvivesRestartAndQueuesEachDeviceOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "serialbox.db")
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const size = 25
	svc := newService(t, db, serializer.Station{ID: "line1", ProductID: productID, AutoBatch: true, BatchSize: size})
	svc.SetAutoSync([]string{"cloud"}, nil)
	issued := map[serializer.UCI]bool{}
	var full int64
	for range size + 1 {
		got, err := svc.Issue(ctx, serializer.IssueRequest{StationID: "line1"})
		if err != nil {
			t.Fatal(err)
		}
		if got.ClosedBatchID != 0 {
			full = got.ClosedBatchID
		} else {
			issued[got.Device.UCI] = true
		}
	}
	if full == 0 || len(issued) != size {
		t.Fatalf("closed batch %d with %d devices", full, len(issued))
	}

	// The closing transaction wrote the request, not the devices.
	st, err := db.SyncStatus(ctx, full)
	if err != nil || len(st) != 1 || st[0].State != "queued" || st[0].Pending != 0 || st[0].Queueing != size {
		t.Fatalf("status right after the rollover = %+v, %v", st, err)
	}
	if b, _ := db.Batch(ctx, full); b.State != serializer.BatchClosed {
		t.Fatalf("batch %d is %s", full, b.State)
	}

	// Restart before any expansion, then expand part of it and restart again.
	db.Close()
	db = mustOpenAt(t, path)
	if done, err := store.ExpandStep(ctx, db, full, "cloud", 10); err != nil || done {
		t.Fatalf("first step: done=%v, %v", done, err)
	}
	st, _ = db.SyncStatus(ctx, full)
	if st[0].Pending != 10 || st[0].Queueing != size-10 || st[0].State != "queued" {
		t.Fatalf("status after one step = %+v", st[0])
	}
	db.Close()
	db = mustOpenAt(t, path)

	// The syncer's next look finishes the expansion and hands out every device once.
	seen := map[serializer.UCI]int{}
	for {
		c, ok, err := db.NextChunk(ctx, "cloud", 7)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		for _, d := range c.Devices {
			seen[d.UCI]++
		}
		settleAll(t, db, c, upstream.StatusOK)
	}
	if len(seen) != size {
		t.Fatalf("%d devices reached the upstream, want %d", len(seen), size)
	}
	for u, n := range seen {
		if n != 1 || !issued[u] {
			t.Fatalf("device %s reached the upstream %d times (of the batch: %v)", u, n, issued[u])
		}
	}
	// Expanding again changes nothing.
	if done, err := store.ExpandStep(ctx, db, full, "cloud", 100); err != nil || !done {
		t.Fatalf("expanding a complete request: done=%v, %v", done, err)
	}
	if c, ok, err := db.NextChunk(ctx, "cloud", 100); err != nil || ok {
		t.Fatalf("after everything was settled: chunk %+v, %v, %v", c, ok, err)
	}
	st, _ = db.SyncStatus(ctx, full)
	if st[0].State != "done" || st[0].OK != size || st[0].Queueing != 0 || st[0].Pending != 0 {
		t.Fatalf("final status = %+v", st[0])
	}
	if b, _ := db.Batch(ctx, full); b.Counts.Synced != size {
		t.Fatalf("synced counter = %d, want %d", b.Counts.Synced, size)
	}
	audit, _ := db.Audit(ctx, "batch:1", 0)
	queuedEntries := 0
	for _, e := range audit {
		if e.Action == "sync.queued" {
			queuedEntries++
			if e.Detail != "target=cloud queued=25" {
				t.Fatalf("audit of the expansion: %q", e.Detail)
			}
		}
	}
	if queuedEntries != 1 {
		t.Fatalf("%d sync.queued entries in the audit trail, want 1", queuedEntries)
	}
}

// An operator's request answers with the devices queued, after they are all in the
// outbox, also for a batch larger than one expansion chunk; asking again for a target
// that accepted them queues none.
func TestEnqueueSyncCountsAfterChunkedExpansion(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := newService(t, db, serializer.Station{ID: "bulk", ProductID: productID})
	svc.SetSyncTargets([]string{"cloud"}, nil, nil)
	b, err := svc.OpenBatch(ctx, serializer.OpenBatchRequest{StationID: "bulk"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	const n = 4500 // more than two expansion chunks
	if _, err := svc.Pregenerate(ctx, b.ID, n, serializer.PregenOutside, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CloseBatch(ctx, b.ID, "test", "done"); err != nil {
		t.Fatal(err)
	}
	queued, err := svc.RequestSync(ctx, b.ID, nil, "test", "register")
	if err != nil || queued["cloud"] != n {
		t.Fatalf("RequestSync = %v, %v; want %d", queued, err, n)
	}
	st, _ := db.SyncStatus(ctx, b.ID)
	if st[0].Pending != n || st[0].Queueing != 0 {
		t.Fatalf("status = %+v", st[0])
	}
	for {
		c, ok, err := db.NextChunk(ctx, "cloud", 1000)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		settleAll(t, db, c, upstream.StatusOK)
	}
	if queued, err := svc.RequestSync(ctx, b.ID, nil, "test", "again"); err != nil || queued["cloud"] != 0 {
		t.Fatalf("again: %v, %v; want 0", queued, err)
	}
	if got, _ := db.Batch(ctx, b.ID); got.Counts.Synced != n {
		t.Fatalf("synced = %d, want %d", got.Counts.Synced, n)
	}
}
