package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"serialbox/serializer"
	"serialbox/store"
)

func TestPregenerate(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := newService(t, db, serializer.Station{ID: "line1", ProductID: productID})
	b, err := svc.OpenBatch(ctx, serializer.OpenBatchRequest{StationID: "line1", Planned: 50_000}, "test")
	if err != nil {
		t.Fatal(err)
	}
	// A source that repeats itself now and then: the database still keeps them unique.
	var last serializer.UCI
	draws := 0
	source := func() (serializer.UCI, error) {
		draws++
		if draws%1000 == 0 {
			return last, nil
		}
		u, err := serializer.NewUCI()
		last = u
		return u, err
	}
	n, err := db.Pregenerate(ctx, b.ID, 45_000, serializer.PregenQueue, source, "test")
	if err != nil || n != 45_000 {
		t.Fatalf("Pregenerate = %d, %v", n, err)
	}
	after, _ := db.Batch(ctx, b.ID)
	if after.Counts.Issued != 45_000 {
		t.Fatalf("issued counter = %d", after.Counts.Issued)
	}
	if c, _ := db.DeviceCount(ctx); c != 45_000 {
		t.Fatalf("devices = %d", c)
	}
	counts, _ := db.QueueCounts(ctx, "line1")
	if counts[serializer.JobQueued] != 45_000 {
		t.Fatalf("label jobs queued = %v; every device needs its label job", counts)
	}
	// Over the planned size: refused as a whole, nothing written.
	if _, err := db.Pregenerate(ctx, b.ID, 5_001, serializer.PregenQueue, serializer.NewUCI, "test"); serializer.ErrorCode(err) != serializer.EBATCHFULL {
		t.Fatalf("over the planned size: %v", err)
	}
	if _, err := db.Pregenerate(ctx, b.ID, 0, serializer.PregenQueue, serializer.NewUCI, "test"); serializer.ErrorCode(err) != serializer.EINVALID {
		t.Fatalf("count 0: %v", err)
	}
	if _, err := db.Pregenerate(ctx, b.ID, 1, "sideways", serializer.NewUCI, "test"); serializer.ErrorCode(err) != serializer.EINVALID {
		t.Fatalf("bad labels mode: %v", err)
	}
	if _, err := svc.CloseBatch(ctx, b.ID, "test", "done"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pregenerate(ctx, b.ID, 1, serializer.PregenQueue, serializer.NewUCI, "test"); serializer.ErrorCode(err) != serializer.ECONFLICT {
		t.Fatalf("into a closed batch: %v", err)
	}
	if s, err := db.IntegrityCheck(ctx); err != nil || s != "ok" {
		t.Fatalf("integrity = %q, %v", s, err)
	}
}

func BenchmarkPregenerate1M(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		ctx := context.Background()
		db, err := store.Open(ctx, filepath.Join(b.TempDir(), "serialbox.db"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		svc := newService(b, db, serializer.Station{ID: "line1", ProductID: productID})
		batch, err := svc.OpenBatch(ctx, serializer.OpenBatchRequest{StationID: "line1"}, "bench")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		n, err := db.Pregenerate(ctx, batch.ID, 1_000_000, serializer.PregenOutside, serializer.NewUCI, "bench")
		if err != nil || n != 1_000_000 {
			b.Fatal(n, err)
		}
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(1_000_000*b.N)/b.Elapsed().Seconds(), "ucis/s")
}
