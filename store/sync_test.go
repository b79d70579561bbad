package store_test

import (
	"context"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/serializer/upstream"
	"serialbox/store"
)

// closedBatch issues n devices at the automatic station and closes their batch with
// the given auto-sync targets.
func closedBatch(t *testing.T, db *store.DB, n int, autoSync ...string) (*serializer.Service, serializer.Batch, []serializer.UCI) {
	t.Helper()
	ctx := context.Background()
	svc := newService(t, db, autoStation)
	svc.SetAutoSync(autoSync, nil)
	var ucis []serializer.UCI
	var batchID int64
	for range n {
		got, err := svc.Issue(ctx, serializer.IssueRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ucis, batchID = append(ucis, got.Device.UCI), got.Batch.ID
	}
	b, err := svc.CloseBatch(ctx, batchID, "test", "done")
	if err != nil {
		t.Fatal(err)
	}
	return svc, b, ucis
}

func settleAll(t *testing.T, db *store.DB, c upstream.Chunk, status string) {
	t.Helper()
	var results []upstream.Result
	for _, d := range c.Devices {
		results = append(results, upstream.Result{UCI: d.UCI, Status: status})
	}
	if err := db.Settle(context.Background(), c.Target, c.Key, results); err != nil {
		t.Fatal(err)
	}
}

func TestOutboxChunksSettleOncePerTarget(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	_, b, ucis := closedBatch(t, db, 7, "cloud", "archive")

	seen := map[string]map[serializer.UCI]int{"cloud": {}, "archive": {}}
	for _, target := range []string{"cloud", "archive"} {
		for {
			c, ok, err := db.NextChunk(ctx, target, 3)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if c.Batch.ID != b.ID || c.Product.ID != productID || c.Product.Name != "Demo Widget" || len(c.Devices) == 0 || len(c.Devices) > 3 {
				t.Fatalf("chunk = %+v", c)
			}
			// A chunk handed out and not settled comes back the same: same key, same devices.
			again, ok, err := db.NextChunk(ctx, target, 3)
			if err != nil || !ok || again.Key != c.Key || len(again.Devices) != len(c.Devices) || again.Devices[0].UCI != c.Devices[0].UCI {
				t.Fatalf("retry chunk = %+v, %v; want the same as %+v", again, err, c)
			}
			if err := db.Defer(ctx, target, c.Key, "upstream said 503", time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			for _, d := range c.Devices {
				seen[target][d.UCI]++
			}
			status := upstream.StatusOK
			if target == "archive" {
				status = upstream.StatusExists // exists counts as success
			}
			settleAll(t, db, c, status)
			settleAll(t, db, c, upstream.StatusError) // settling twice changes nothing
		}
	}
	for target, got := range seen {
		if len(got) != len(ucis) {
			t.Fatalf("%s got %d devices, want %d", target, len(got), len(ucis))
		}
		for u, n := range got {
			if n != 1 {
				t.Fatalf("%s got %s %d times", target, u, n)
			}
		}
	}
	after, _ := db.Batch(ctx, b.ID)
	if after.Counts.Synced != 7 {
		t.Fatalf("synced = %d, want 7", after.Counts.Synced)
	}
	status, err := db.SyncStatus(ctx, b.ID)
	if err != nil || len(status) != 2 || status[0].State != "done" || status[0].Exists != 7 || status[1].OK != 7 {
		t.Fatalf("sync status = %+v, %v", status, err)
	}
	// Asking again sends nothing: every device already reached both targets.
	queued, err := db.EnqueueSync(ctx, b.ID, []string{"cloud"}, "op", "again")
	if err != nil || queued["cloud"] != 0 {
		t.Fatalf("re-request = %v, %v", queued, err)
	}
	if _, ok, _ := db.NextChunk(ctx, "cloud", 100); ok {
		t.Fatal("a fully registered batch was handed out again")
	}
}

func TestOutboxRefusedDevicesAreShownAndRetriedOnRequest(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	_, b, ucis := closedBatch(t, db, 3, "cloud")
	c, ok, err := db.NextChunk(ctx, "cloud", 100)
	if err != nil || !ok || len(c.Devices) != 3 {
		t.Fatalf("chunk = %+v, %v, %v", c, ok, err)
	}
	// One refused with a reason, one not mentioned at all, one accepted.
	err = db.Settle(ctx, "cloud", c.Key, []upstream.Result{
		{UCI: ucis[0], Status: upstream.StatusError, Message: "product unknown upstream"},
		{UCI: ucis[2], Status: upstream.StatusOK},
	})
	if err != nil {
		t.Fatal(err)
	}
	fails, err := db.SyncFailures(ctx, b.ID, 0)
	if err != nil || len(fails) != 2 {
		t.Fatalf("failures = %+v, %v", fails, err)
	}
	msgs := map[serializer.UCI]string{fails[0].UCI: fails[0].Message, fails[1].UCI: fails[1].Message}
	if msgs[ucis[0]] != "product unknown upstream" || msgs[ucis[1]] != "no result from upstream" {
		t.Fatalf("failure messages = %v", msgs)
	}
	if after, _ := db.Batch(ctx, b.ID); after.Counts.Synced != 1 {
		t.Fatalf("synced = %d, want 1", after.Counts.Synced)
	}
	// An operator asks again: only the refused devices go out.
	queued, err := db.EnqueueSync(ctx, b.ID, []string{"cloud"}, "op", "fixed upstream product")
	if err != nil || queued["cloud"] != 2 {
		t.Fatalf("re-request = %v, %v", queued, err)
	}
	c2, ok, _ := db.NextChunk(ctx, "cloud", 100)
	if !ok || len(c2.Devices) != 2 || c2.Key == c.Key {
		t.Fatalf("second chunk = %+v", c2)
	}
	settleAll(t, db, c2, upstream.StatusOK)
	if after, _ := db.Batch(ctx, b.ID); after.Counts.Synced != 3 {
		t.Fatalf("synced = %d, want 3", after.Counts.Synced)
	}
	if states, _ := db.SyncStates(ctx); states["cloud"]["pending"]+states["cloud"]["sending"]+states["cloud"]["error"] != 0 {
		t.Fatalf("sync states after everything was accepted = %v", states)
	}
}

// Voided devices are not registered; a batch closed because it was full is queued too.
func TestOutboxSkipsVoidedAndQueuesRolledBatches(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := newService(t, db, serializer.Station{ID: "demo", ProductID: productID, AutoBatch: true, BatchSize: 2})
	svc.SetAutoSync([]string{"cloud"}, nil)
	first, _ := svc.Issue(ctx, serializer.IssueRequest{})
	if _, err := svc.Void(ctx, first.Device.UCI, "op", "scrapped"); err != nil {
		t.Fatal(err)
	}
	svc.Issue(ctx, serializer.IssueRequest{})
	third, err := svc.Issue(ctx, serializer.IssueRequest{}) // rolls over: batch 1 closes and is queued
	if err != nil || third.ClosedBatchID != first.Batch.ID {
		t.Fatalf("rollover = %+v, %v", third, err)
	}
	c, ok, err := db.NextChunk(ctx, "cloud", 100)
	if err != nil || !ok || c.Batch.ID != first.Batch.ID || len(c.Devices) != 1 || c.Devices[0].UCI == first.Device.UCI {
		t.Fatalf("chunk = %+v, %v, %v; want batch %d without the voided device", c, ok, err, first.Batch.ID)
	}
}

func TestOutboxSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/serialbox.db"
	db := mustOpenAt(t, path)
	closedBatch(t, db, 5, "cloud")
	c, _, _ := db.NextChunk(ctx, "cloud", 2)
	db.Close()
	db2 := mustOpenAt(t, path)
	again, ok, err := db2.NextChunk(ctx, "cloud", 2)
	if err != nil || !ok || again.Key != c.Key || len(again.Devices) != 2 {
		t.Fatalf("after reopen = %+v, %v; want chunk %s again", again, err, c.Key)
	}
}
