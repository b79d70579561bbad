package store_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/store"
)

// stallLimit is the jig p99 that a bulk run elsewhere on the line may not exceed.
const stallLimit = 50 * time.Millisecond

// jigLoad runs jigs that each call Issue in a loop until stop is closed, and
// returns the latency of every answer that arrived after since.
func jigLoad(b *testing.B, svc *serializer.Service, station string, jigs int, stop <-chan struct{}, since *atomic.Int64) func() []time.Duration {
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		all []time.Duration
	)
	for range jigs {
		wg.Go(func() {
			var mine []time.Duration
			for {
				select {
				case <-stop:
					mu.Lock()
					all = append(all, mine...)
					mu.Unlock()
					return
				default:
				}
				start := time.Now()
				if _, err := svc.Issue(context.Background(), serializer.IssueRequest{StationID: station}); err != nil {
					b.Error(err)
				}
				if end := time.Now(); end.UnixNano() > since.Load() {
					mine = append(mine, end.Sub(start))
				}
			}
		})
	}
	return func() []time.Duration { wg.Wait(); return all }
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(d))
	return s[max(int(math.Ceil(q*float64(len(s))))-1, 0)]
}

func reportLatency(b *testing.B, lat []time.Duration) {
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(slices.Max(lat).Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(len(lat)), "answers")
	if p99 >= stallLimit {
		b.Errorf("jig p99 %v (p50 %v, max %v, %d answers): over %v", p99, p50, slices.Max(lat), len(lat), stallLimit)
	}
}

// BenchmarkPregenWhileJigsIssue pre-generates 1,000,000 devices into a batch at one
// station while 8 jigs serialize at another, and reports the jigs' latency during the
// run and the run's time.
//
//	go test -run x -bench PregenWhileJigsIssue -benchtime 1x -count 3 ./store
func BenchmarkPregenWhileJigsIssue(b *testing.B) {
	const count, jigs = 1_000_000, 8
	for b.Loop() {
		b.StopTimer()
		ctx := context.Background()
		db, err := store.Open(ctx, filepath.Join(b.TempDir(), "serialbox.db"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		svc := newService(b, db,
			serializer.Station{ID: "bulk", ProductID: productID},
			serializer.Station{ID: "line2", ProductID: productID, AutoBatch: true})
		batch, err := svc.OpenBatch(ctx, serializer.OpenBatchRequest{StationID: "bulk"}, "bench")
		if err != nil {
			b.Fatal(err)
		}
		stop := make(chan struct{})
		var since atomic.Int64
		since.Store(math.MaxInt64)
		wait := jigLoad(b, svc, "line2", jigs, stop, &since)
		time.Sleep(200 * time.Millisecond) // the jigs are busy before the run starts
		b.StartTimer()
		start := time.Now()
		since.Store(start.UnixNano())
		n, err := svc.Pregenerate(ctx, batch.ID, count, serializer.PregenQueue, "bench")
		took := time.Since(start)
		b.StopTimer()
		close(stop)
		lat := wait()
		if err != nil || n != count {
			b.Fatal(n, err)
		}
		b.ReportMetric(took.Seconds()*1e6/count, "s/million")
		b.Logf("pre-generated %d devices in %v", n, took.Round(time.Millisecond))
		reportLatency(b, lat)
		devices, _ := db.DeviceCount(ctx)
		db.Close() // folds the write-ahead log into the database file
		if fi, err := os.Stat(db.Path()); err == nil {
			b.ReportMetric(float64(fi.Size())/float64(devices), "bytes/device")
		}
		b.StartTimer()
	}
}

// BenchmarkRolloverWhileJigsIssue fills an automatic batch of 100,000 devices with an
// auto-sync target up to 256 devices before full, then lets 64 jigs serialize across
// its rollover (the full batch is closed and requested upstream, the next one opened)
// and while the syncer puts the full batch's devices into the outbox, until a moment
// after that, and reports their latency.
//
//	go test -run x -bench RolloverWhileJigsIssue -benchtime 1x -count 3 ./store
func BenchmarkRolloverWhileJigsIssue(b *testing.B) {
	const size, jigs = 100_000, 64
	for b.Loop() {
		b.StopTimer()
		ctx := context.Background()
		db, err := store.Open(ctx, filepath.Join(b.TempDir(), "serialbox.db"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		st := serializer.Station{ID: "line1", ProductID: productID, AutoBatch: true, BatchSize: size}
		svc := newService(b, db, st)
		// The syncer's part: woken by the rollover, it puts the full batch's devices
		// into the outbox while the jigs go on.
		woken := make(chan struct{}, 1)
		svc.SetAutoSync([]string{"cloud"}, wakeFunc(func() {
			select {
			case woken <- struct{}{}:
			default:
			}
		}))
		expanded := make(chan error, 1)
		go func() {
			<-woken
			_, _, err := db.NextChunk(ctx, "cloud", 100)
			expanded <- err
		}()
		first, err := svc.Issue(ctx, serializer.IssueRequest{StationID: "line1"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := svc.Pregenerate(ctx, first.Batch.ID, size-1-4*jigs, serializer.PregenOutside, "bench"); err != nil {
			b.Fatal(err)
		}
		stop := make(chan struct{})
		var since atomic.Int64 // every answer counts
		b.StartTimer()
		wait := jigLoad(b, svc, "line1", jigs, stop, &since)
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if cur, _ := db.Batch(ctx, first.Batch.ID); cur.State == serializer.BatchClosed {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		select {
		case err := <-expanded:
			if err != nil {
				b.Error(err)
			}
		case <-time.After(10 * time.Second):
			b.Error("the full batch was not put into the outbox within 10 s")
		}
		time.Sleep(250 * time.Millisecond) // and a moment after
		close(stop)
		lat := wait()
		b.StopTimer()
		if cur, _ := db.Batch(ctx, first.Batch.ID); cur.State != serializer.BatchClosed {
			b.Fatalf("batch %d did not roll over", first.Batch.ID)
		}
		if st, err := db.SyncStatus(ctx, first.Batch.ID); err != nil || len(st) != 1 || st[0].Pending+st[0].Sending != size || st[0].Queueing != 0 {
			b.Fatalf("sync status after the rollover = %+v, %v; want all %d devices in the outbox", st, err, size)
		}
		reportLatency(b, lat)
		db.Close()
		b.StartTimer()
	}
}

// wakeFunc is a serializer.SyncQueue.
type wakeFunc func()

func (f wakeFunc) Wake() { f() }
