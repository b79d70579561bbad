package store_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/store"
)

// checkPregenWhole checks that the batch holds want devices, each with its one label
// job, and that its issued counter says so.
func checkPregenWhole(t *testing.T, db *store.DB, batchID int64, station string, want int) {
	t.Helper()
	ctx := context.Background()
	b, err := db.Batch(ctx, batchID)
	if err != nil || b.Counts.Issued != want {
		t.Fatalf("issued counter = %d, %v; want %d", b.Counts.Issued, err, want)
	}
	if n, _ := db.DeviceCount(ctx); n != int64(want) {
		t.Fatalf("devices = %d, want %d", n, want)
	}
	counts, _ := db.QueueCounts(ctx, station)
	if counts[serializer.JobQueued] != want {
		t.Fatalf("label jobs = %v; want %d queued, one per device", counts, want)
	}
	if s, err := db.IntegrityCheck(ctx); err != nil || s != "ok" {
		t.Fatalf("integrity = %q, %v", s, err)
	}
}

func TestPregenerateRefusesWithoutDiskSpace(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := newService(t, db, serializer.Station{ID: "line1", ProductID: productID})
	b, err := svc.OpenBatch(ctx, serializer.OpenBatchRequest{StationID: "line1"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	store.SetFreeDisk(db, func() (uint64, error) { return store.DiskReserve + 100_000*store.PregenBytesPerDevice, nil })
	_, err = db.Pregenerate(ctx, b.ID, 100_001, serializer.PregenQueue, serializer.NewUCI, "test")
	if serializer.ErrorCode(err) != serializer.EUNAVAILABLE || !strings.Contains(serializer.ErrorMessage(err), "not enough free disk for 100001 devices") {
		t.Fatalf("without room: %v", err)
	}
	checkPregenWhole(t, db, b.ID, "line1", 0)
	if n, err := db.Pregenerate(ctx, b.ID, 1000, serializer.PregenQueue, serializer.NewUCI, "test"); err != nil || n != 1000 {
		t.Fatalf("with room: %d, %v", n, err)
	}
}

// A run stopped part-way (the volume filling up, the caller going away) leaves whole
// chunks: every device it made has its label job, the counter matches, and the count
// it returns says how many there are.
func TestPregenerateStoppedLeavesWholeChunks(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := newService(t, db, serializer.Station{ID: "line1", ProductID: productID})
	b, err := svc.OpenBatch(ctx, serializer.OpenBatchRequest{StationID: "line1"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	var looks atomic.Int64
	store.SetFreeDisk(db, func() (uint64, error) {
		if looks.Add(1) > 4 { // the check before the run, then three chunks
			return store.DiskReserve - 1, nil
		}
		return 1 << 40, nil
	})
	n, err := db.Pregenerate(ctx, b.ID, 50_000, serializer.PregenQueue, serializer.NewUCI, "test")
	if serializer.ErrorCode(err) != serializer.EUNAVAILABLE || n == 0 || n >= 50_000 {
		t.Fatalf("Pregenerate = %d, %v; want a part, stopped for the disk", n, err)
	}
	checkPregenWhole(t, db, b.ID, "line1", n)
	audit, _ := db.Audit(ctx, "batch:1", 0)
	if len(audit) == 0 || audit[0].Action != "batch.pregenerate" || !strings.Contains(audit[0].Detail, "of 50000") {
		t.Fatalf("audit = %+v; want the stopped run with its count", audit)
	}

	// Cancelled by the caller after a chunk: the same.
	store.SetFreeDisk(db, func() (uint64, error) { return 1 << 40, nil })
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for cctx.Err() == nil {
			if cur, _ := db.Batch(ctx, b.ID); cur.Counts.Issued > n {
				cancel()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	m, err := db.Pregenerate(cctx, b.ID, 400_000, serializer.PregenQueue, serializer.NewUCI, "test")
	if err == nil || m == 0 || m >= 400_000 {
		t.Fatalf("cancelled run = %d, %v", m, err)
	}
	checkPregenWhole(t, db, b.ID, "line1", n+m)
}

func TestPregenerateOverTheConfiguredMax(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := serializer.NewService(db, nil)
	if err := svc.SetCatalog(ctx, serializer.Catalog{
		Products:  []serializer.Product{{ID: productID, Name: "Demo Widget"}},
		Stations:  []serializer.Station{{ID: "line1", ProductID: productID}},
		PregenMax: 1000,
	}); err != nil {
		t.Fatal(err)
	}
	b, err := svc.OpenBatch(ctx, serializer.OpenBatchRequest{StationID: "line1"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	n, err := svc.Pregenerate(ctx, b.ID, 1001, serializer.PregenQueue, "test")
	if serializer.ErrorCode(err) != serializer.EINVALID || n != 0 || !strings.Contains(serializer.ErrorMessage(err), "limit of 1000") ||
		!strings.Contains(serializer.ErrorMessage(err), "pregen_max") {
		t.Fatalf("over the maximum: %d, %v", n, err)
	}
	if n, err := svc.Pregenerate(ctx, b.ID, 1000, serializer.PregenQueue, "test"); err != nil || n != 1000 {
		t.Fatalf("at the maximum: %d, %v", n, err)
	}
	checkPregenWhole(t, db, b.ID, "line1", 1000)
}
