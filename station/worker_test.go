package station_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"serialbox/serializer"
	"serialbox/station"
)

const stationID = "line-1"

// fakeTransport is a Transport made of functions.
type fakeTransport struct {
	SendFn   func(ctx context.Context, job station.Job) error
	StatusFn func(ctx context.Context) (station.Status, error)
}

var _ station.Transport = (*fakeTransport)(nil)

func (f *fakeTransport) Send(ctx context.Context, job station.Job) error { return f.SendFn(ctx, job) }
func (f *fakeTransport) Status(ctx context.Context) (station.Status, error) {
	if f.StatusFn == nil {
		return station.Status{State: station.StateReady, Message: "Ready"}, nil
	}
	return f.StatusFn(ctx)
}
func (f *fakeTransport) Close() error { return nil }

// render makes each job a 300-byte ZPL label naming its id.
func render(_ context.Context, job serializer.PrintJob) (station.Job, error) {
	return station.Job{Name: fmt.Sprint(job.ID), Data: zplLabel(job.ID, 300)}, nil
}

// startWorker runs a worker with short waits that stops with the test.
func startWorker(t testing.TB, q station.Queue, r station.Renderer, tr station.Transport, opts ...station.WorkerOption) *station.Worker {
	t.Helper()
	opts = append([]station.WorkerOption{
		station.WithBackoff(func(int) time.Duration { return 10 * time.Millisecond }),
		station.WithPollInterval(50 * time.Millisecond),
		station.WithStatusInterval(0),
	}, opts...)
	w := station.NewWorker(stationID, q, r, tr, opts...)
	w.Start()
	t.Cleanup(func() { w.Close() })
	return w
}

// tcpTransport returns a transport to the fake printer.
func tcpTransport(addr string) station.Transport {
	return station.NewTCP(addr, station.LanguageZPL, fastTimeouts)
}

// checkLabels fails unless the printer holds exactly the labels of ids, in order.
func checkLabels(t *testing.T, got [][]byte, ids ...int64) {
	t.Helper()
	if len(got) != len(ids) {
		t.Fatalf("printer has %d labels, want %d (jobs %v)", len(got), len(ids), ids)
	}
	for i, id := range ids {
		if !bytes.Equal(got[i], zplLabel(id, 300)) {
			t.Errorf("label %d is not job %d's: %.60q", i, id, got[i])
		}
	}
}

func TestWorkerPrintsInOrder(t *testing.T) {
	p := startPrinter(t)
	q := newQueue()
	ids := q.add(stationID, 20)
	q.add("line-2", 3) // another station's jobs are not touched
	w := startWorker(t, q, render, tcpTransport(p.Addr()))
	q.waitFor(t, 10*time.Second, "20 printed", func(jobs []serializer.PrintJob) bool { return settled(jobs[:20]) })
	checkLabels(t, p.Labels(), ids...)
	for _, id := range ids {
		if j := q.job(id); j.State != serializer.JobPrinted || j.Attempts != 1 || j.LastError != "" {
			t.Errorf("job %d = %s, %d attempts, %q", id, j.State, j.Attempts, j.LastError)
		}
	}
	for id := int64(21); id <= 23; id++ {
		if j := q.job(id); j.State != serializer.JobQueued {
			t.Errorf("other station's job %d is %s", id, j.State)
		}
	}
	if s := w.Stats(); s.Printed != 20 || s.Failed != 0 || s.Uncertain != 0 || s.LastPrintedAt.IsZero() {
		t.Errorf("stats = %+v", s)
	}
}

func TestWorkerPrinterKilledAndRestarted(t *testing.T) {
	p := startPrinter(t)
	q := newQueue()
	first := q.add(stationID, 5)
	w := startWorker(t, q, render, tcpTransport(p.Addr()))
	q.waitFor(t, 10*time.Second, "first jobs printed", settled)

	p.Kill()
	second := q.add(stationID, 5)
	w.Wake()
	q.waitFor(t, 10*time.Second, "retries while the printer is off", func(jobs []serializer.PrintJob) bool {
		j := jobs[second[0]-1]
		return j.Attempts >= 3 && j.State == serializer.JobQueued
	})
	if j := q.job(second[0]); j.State != serializer.JobQueued || !strings.Contains(j.LastError, "unreachable") {
		t.Errorf("job while printer off = %s %q, want queued with the reason", j.State, j.LastError)
	}
	if s := w.Stats(); s.Retries < 3 || w.Status().State != station.StateOffline {
		t.Errorf("stats %+v, status %+v: want retries counted and the printer offline", s, w.Status())
	}
	for _, id := range second[1:] {
		if j := q.job(id); j.Attempts != 0 {
			t.Errorf("job %d was tried before the oldest job: %d attempts", id, j.Attempts)
		}
	}

	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	q.waitFor(t, 10*time.Second, "all printed after restart", settled)
	checkLabels(t, p.Labels(), append(first, second...)...)
	for _, s := range q.states() {
		if s != serializer.JobPrinted {
			t.Fatalf("states = %v, want all printed", q.states())
		}
	}
	if j := q.job(second[0]); j.LastError != "" {
		t.Errorf("printed job keeps last error %q", j.LastError)
	}
}

func TestWorkerDroppedMidJobIsUncertain(t *testing.T) {
	p := startPrinter(t)
	p.DropAfter(100)
	q := newQueue()
	q.add(stationID, 3)
	w := startWorker(t, q, render, tcpTransport(p.Addr()))
	q.waitFor(t, 10*time.Second, "all settled", settled)
	time.Sleep(100 * time.Millisecond) // a resend would show now
	j := q.job(1)
	if j.State != serializer.JobUncertain || j.Attempts != 1 || !strings.Contains(j.LastError, "reprint") {
		t.Errorf("dropped job = %s, %d attempts, %q; want uncertain after one attempt", j.State, j.Attempts, j.LastError)
	}
	checkLabels(t, p.Labels(), 2, 3)
	if s := w.Stats(); s.Uncertain != 1 || s.Printed != 2 {
		t.Errorf("stats = %+v", s)
	}
}

func TestWorkerInterruptedJobIsUncertain(t *testing.T) {
	p := startPrinter(t)
	q := newQueue()
	q.put(serializer.PrintJob{StationID: stationID, State: serializer.JobSending, Attempts: 1})
	q.put(serializer.PrintJob{StationID: stationID, State: serializer.JobQueued})
	startWorker(t, q, render, tcpTransport(p.Addr()))
	q.waitFor(t, 10*time.Second, "both settled", settled)
	if j := q.job(1); j.State != serializer.JobUncertain || j.Attempts != 1 || !strings.Contains(j.LastError, "interrupted") {
		t.Errorf("job found sending = %s, %d attempts, %q; want uncertain, not resent", j.State, j.Attempts, j.LastError)
	}
	checkLabels(t, p.Labels(), 2)
}

func TestWorkerRenderErrorFails(t *testing.T) {
	p := startPrinter(t)
	q := newQueue()
	q.add(stationID, 3)
	r := func(ctx context.Context, job serializer.PrintJob) (station.Job, error) {
		if job.ID == 2 {
			return station.Job{}, errors.New(`template "device" has no field "uci"`)
		}
		return render(ctx, job)
	}
	w := startWorker(t, q, r, tcpTransport(p.Addr()))
	q.waitFor(t, 10*time.Second, "all settled", settled)
	if j := q.job(2); j.State != serializer.JobFailed || j.Attempts != 0 || !strings.Contains(j.LastError, `no field "uci"`) {
		t.Errorf("job 2 = %s, %d attempts, %q; want failed with the reason, never sent", j.State, j.Attempts, j.LastError)
	}
	checkLabels(t, p.Labels(), 1, 3)
	if s := w.Stats(); s.Failed != 1 || !strings.Contains(s.LastError, "rendering") {
		t.Errorf("stats = %+v", s)
	}
}

func TestWorkerHoldsJobsWhilePaperOut(t *testing.T) {
	p := startPrinter(t)
	p.SetPaperOut(true)
	q := newQueue()
	q.add(stationID, 2)
	w := startWorker(t, q, render, tcpTransport(p.Addr()), station.WithStatusInterval(50*time.Millisecond))
	deadline := time.Now().Add(5 * time.Second)
	for w.Status().State != station.StatePaperOut && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := w.Status(); st.State != station.StatePaperOut || st.Message != "Paper out: load labels" {
		t.Fatalf("status = %+v, want paper out", st)
	}
	time.Sleep(200 * time.Millisecond)
	if j := q.job(1); j.State != serializer.JobQueued || j.Attempts != 0 || len(p.Labels()) != 0 {
		t.Fatalf("job sent while the printer is out of paper: %+v", j)
	}
	p.SetPaperOut(false)
	q.waitFor(t, 10*time.Second, "printed after paper loaded", settled)
	checkLabels(t, p.Labels(), 1, 2)
	if st := w.Status(); st.State != station.StateReady {
		t.Errorf("status = %+v, want ready", st)
	}
}

func TestWorkerKeepsOutcomeWhenStoreFails(t *testing.T) {
	p := startPrinter(t)
	q := newQueue()
	q.add(stationID, 2)
	var fails atomic.Int32
	q.MoveJobFn = func(id int64, state serializer.JobState) error {
		if state == serializer.JobPrinted && id == 1 && fails.Add(1) <= 3 {
			return errors.New("database is locked")
		}
		return nil
	}
	startWorker(t, q, render, tcpTransport(p.Addr()))
	q.waitFor(t, 10*time.Second, "all printed", settled)
	for _, s := range q.states() {
		if s != serializer.JobPrinted {
			t.Fatalf("states = %v, want printed (not uncertain) after the store recovered", q.states())
		}
	}
	checkLabels(t, p.Labels(), 1, 2)
}

func TestWorkerStoreReadFailureRetried(t *testing.T) {
	q := newQueue()
	q.add(stationID, 1)
	var fails atomic.Int32
	q.NextJobFn = func() error {
		if fails.Add(1) <= 2 {
			return errors.New("disk I/O error")
		}
		return nil
	}
	var sent atomic.Int32
	tr := &fakeTransport{SendFn: func(context.Context, station.Job) error { sent.Add(1); return nil }}
	startWorker(t, q, render, tr)
	q.waitFor(t, 5*time.Second, "printed", settled)
	if sent.Load() != 1 {
		t.Errorf("sent %d times", sent.Load())
	}
}

func TestWorkerUnclassifiedErrorIsUncertain(t *testing.T) {
	q := newQueue()
	q.add(stationID, 1)
	tr := &fakeTransport{SendFn: func(context.Context, station.Job) error { return errors.New("something odd") }}
	startWorker(t, q, render, tr)
	q.waitFor(t, 5*time.Second, "settled", settled)
	if j := q.job(1); j.State != serializer.JobUncertain {
		t.Errorf("job = %+v, want uncertain", j)
	}
}

func TestWorkerWakeDoesNotBlock(t *testing.T) {
	w := station.NewWorker(stationID, newQueue(), render, station.None{})
	done := make(chan struct{})
	go func() {
		for range 1000 {
			w.Wake()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Wake blocked on a worker that is not running")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPoolWakesStation(t *testing.T) {
	q := newQueue()
	var sent atomic.Int32
	tr := &fakeTransport{SendFn: func(context.Context, station.Job) error { sent.Add(1); return nil }}
	pool := station.NewPool()
	w := station.NewWorker(stationID, q, render, tr, station.WithPollInterval(time.Hour), station.WithStatusInterval(0))
	pool.Add(w)
	w.Start()
	defer pool.Close()
	time.Sleep(20 * time.Millisecond) // the worker has found the queue empty and sleeps
	q.add(stationID, 1)
	pool.Queued("other-station")
	pool.Queued(stationID)
	q.waitFor(t, 2*time.Second, "printed after Queued", settled)
	if got := pool.Workers(); len(got) != 1 || got[0] != w {
		t.Errorf("Workers() = %v", got)
	}
}

// countingHandler counts log records by level.
type countingHandler struct {
	mu     sync.Mutex
	errors int
	infos  []string
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Level >= slog.LevelError {
		h.errors++
	} else {
		h.infos = append(h.infos, r.Message)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func TestWorkerBackoffAndLogRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue()
		q.add(stationID, 1)
		var (
			mu    sync.Mutex
			sends []time.Time
			up    bool
		)
		tr := &fakeTransport{
			SendFn: func(context.Context, station.Job) error {
				mu.Lock()
				defer mu.Unlock()
				sends = append(sends, time.Now())
				if up {
					return nil
				}
				return &station.SendError{Kind: station.ErrUnreachable, Err: errors.New("connection refused")}
			},
			StatusFn: func(context.Context) (station.Status, error) {
				return station.Status{State: station.StateOffline, Message: "Printer offline"}, errors.New("refused")
			},
		}
		h := &countingHandler{}
		w := station.NewWorker(stationID, q, render, tr, station.WithLogger(slog.New(h)))
		w.Start()
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		n := len(sends)
		// 0.5 s doubling to 30 s with jitter: about 15 attempts in 5 minutes, at
		// least 10 (all waits at their longest) and at most 30 (all at their shortest).
		if n < 10 || n > 30 {
			t.Errorf("%d attempts in 5 minutes, want capped exponential backoff", n)
		}
		for i := 1; i < n; i++ {
			if gap := sends[i].Sub(sends[i-1]); gap > station.BackoffMax+time.Second {
				t.Errorf("gap %v between attempts %d and %d exceeds the cap", gap, i-1, i)
			}
		}
		if late := sends[n-1].Sub(sends[n-2]); late < station.BackoffMax/2 {
			t.Errorf("late gap %v, want near the cap", late)
		}
		h.mu.Lock()
		if h.errors < 2 || h.errors > 6 {
			t.Errorf("%d error logs in 5 minutes of failures, want about one a minute", h.errors)
		}
		h.mu.Unlock()
		if s := w.Stats(); s.Retries != uint64(n) || s.RetryAt.IsZero() || !strings.Contains(s.LastError, "refused") {
			t.Errorf("stats = %+v", s)
		}

		up = true
		mu.Unlock()
		time.Sleep(station.BackoffMax)
		synctest.Wait()
		if j := q.job(1); j.State != serializer.JobPrinted || j.Attempts != n+1 {
			t.Errorf("job = %s after %d attempts, want printed after %d", j.State, j.Attempts, n+1)
		}
		w.Close()
		mu.Lock()
	})
}

func TestDefaultBackoff(t *testing.T) {
	for failures := 1; failures <= 40; failures++ {
		ceiling := min(station.BackoffMin<<min(failures-1, 20), station.BackoffMax)
		for range 50 {
			d := station.DefaultBackoff(failures)
			if d < ceiling/2 || d > ceiling {
				t.Fatalf("DefaultBackoff(%d) = %v, want between %v and %v", failures, d, ceiling/2, ceiling)
			}
		}
	}
}

func TestWorkerCloseWhileSending(t *testing.T) {
	q := newQueue()
	q.add(stationID, 1)
	sending := make(chan struct{})
	tr := &fakeTransport{SendFn: func(ctx context.Context, job station.Job) error {
		close(sending)
		<-ctx.Done()
		return &station.SendError{Kind: station.ErrUnreachable, Err: ctx.Err()}
	}}
	w := station.NewWorker(stationID, q, render, tr, station.WithStatusInterval(0))
	w.Start()
	<-sending
	if !w.Stats().Sending {
		t.Error("Stats().Sending = false during a send")
	}
	done := make(chan error)
	go func() { done <- w.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	if j := q.job(1); j.State != serializer.JobQueued {
		t.Errorf("job cut off before any byte = %s, want queued again", j.State)
	}
}

func TestWorkerRestartResumesInOrder(t *testing.T) {
	p := startPrinter(t)
	p.SetReadDelay(2 * time.Millisecond)
	q := newQueue()
	q.add(stationID, 20)
	opts := []station.WorkerOption{station.WithStatusInterval(0), station.WithPollInterval(50 * time.Millisecond)}
	w := station.NewWorker(stationID, q, render, tcpTransport(p.Addr()), opts...)
	w.Start()
	q.waitFor(t, 10*time.Second, "some printed", func(jobs []serializer.PrintJob) bool {
		return jobs[4].State == serializer.JobPrinted
	})
	if err := w.Close(); err != nil { // the appliance stops with jobs left
		t.Fatal(err)
	}
	left := 0
	for _, s := range q.states() {
		if s == serializer.JobQueued {
			left++
		}
		if s == serializer.JobSending {
			t.Fatalf("a clean stop left a job sending: %v", q.states())
		}
	}
	if left == 0 {
		t.Fatal("nothing left to resume")
	}

	w2 := station.NewWorker(stationID, q, render, tcpTransport(p.Addr()), opts...)
	w2.Start()
	defer w2.Close()
	q.waitFor(t, 10*time.Second, "all settled after restart", settled)
	count := labelCounts(t, p.Labels())
	printed := 0
	for id := int64(1); id <= 20; id++ {
		switch j := q.job(id); j.State {
		case serializer.JobPrinted:
			printed++
			if count[id] != 1 {
				t.Errorf("printed job %d has %d labels", id, count[id])
			}
		case serializer.JobUncertain:
			if count[id] > 1 {
				t.Errorf("uncertain job %d has %d labels", id, count[id])
			}
		default:
			t.Errorf("job %d ended %s", id, j.State)
		}
	}
	if printed < 19 {
		t.Errorf("%d of 20 printed; only the job cut off by the stop may be uncertain", printed)
	}
}
