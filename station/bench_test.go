package station_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/station"
	"serialbox/station/stationtest"
)

// BenchmarkTCPSend sends 300-byte labels to the fake network printer, one
// connection per job as in production.
func BenchmarkTCPSend(b *testing.B) {
	p := startPrinter(b)
	tr := station.NewTCP(p.Addr(), station.LanguageZPL, station.Timeouts{})
	ctx := context.Background()
	job := station.Job{Data: zplLabel(1, 300)}
	b.SetBytes(int64(len(job.Data)))
	for b.Loop() {
		if err := tr.Send(ctx, job); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	if got := p.Stats().Labels; got != b.N {
		b.Fatalf("printer got %d labels, want %d", got, b.N)
	}
}

// BenchmarkWorkerQueue drains queued jobs through a worker to the fake network
// printer: jobs per second through the queue.
func BenchmarkWorkerQueue(b *testing.B) {
	p := startPrinter(b)
	q := newQueue()
	q.add(stationID, b.N)
	b.ResetTimer()
	w := station.NewWorker(stationID, q, render, station.NewTCP(p.Addr(), station.LanguageZPL, station.Timeouts{}),
		station.WithStatusInterval(0))
	w.Start()
	q.waitFor(b, time.Minute, "all printed", settled)
	b.StopTimer()
	w.Close()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkWorkerLatency16Stations queues one label at each of 16 busy stations at
// once, each with its own fake printer, and measures from queueing (and Wake) to
// the label being whole at the printer.
func BenchmarkWorkerLatency16Stations(b *testing.B) {
	const stations = 16
	q := newQueue()
	printers := make([]*stationtest.FakePrinter, stations)
	workers := make([]*station.Worker, stations)
	for i := range stations {
		printers[i] = startPrinter(b)
		workers[i] = station.NewWorker(fmt.Sprintf("line-%d", i), q, render,
			station.NewTCP(printers[i].Addr(), station.LanguageZPL, station.Timeouts{}),
			station.WithStatusInterval(0), station.WithPollInterval(time.Hour))
		workers[i].Start()
		defer workers[i].Close()
	}
	var lat []time.Duration
	var mu sync.Mutex
	ctx := context.Background()
	for n := 1; b.Loop(); n++ {
		start := time.Now()
		var wg sync.WaitGroup
		for i := range stations {
			q.put(serializer.PrintJob{StationID: fmt.Sprintf("line-%d", i), State: serializer.JobQueued})
			workers[i].Wake()
			wg.Go(func() {
				if err := printers[i].WaitLabels(ctx, n); err != nil {
					b.Error(err)
				}
				d := time.Since(start)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
