package station_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"serialbox/serializer"
	"serialbox/station"
)

// slowTransport is a printer that takes each label only when the test releases it.
type slowTransport struct {
	sending  chan int64    // the id of each job handed to the printer
	release  chan struct{} // one label may finish per receive
	sent     atomic.Int32
	mu       sync.Mutex
	cut      bool // a send was cut off by its context
	closedAt time.Time
}

func newSlowTransport() *slowTransport {
	return &slowTransport{sending: make(chan int64, 100), release: make(chan struct{})}
}

func (s *slowTransport) Send(ctx context.Context, job station.Job) error {
	s.sending <- job.ID
	select {
	case <-s.release:
		s.sent.Add(1)
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		s.cut = true
		s.mu.Unlock()
		return &station.SendError{Kind: station.ErrUncertain, Err: ctx.Err()}
	}
}
func (s *slowTransport) Status(context.Context) (station.Status, error) {
	return station.Status{State: station.StateReady, Message: "Ready"}, nil
}
func (s *slowTransport) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closedAt = time.Now()
	return nil
}

// Stop lets the label being sent reach the printer and be recorded printed, then
// stops without taking the next job.
func TestWorkerStopFinishesTheLabelInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue()
		q.add(stationID, 3)
		tr := newSlowTransport()
		w := station.NewWorker(stationID, q, render, tr, station.WithStatusInterval(0))
		w.Start()
		if id := <-tr.sending; id != 1 {
			t.Fatalf("first send is job %d", id)
		}
		stopped := make(chan error, 1)
		go func() { stopped <- w.Stop(context.Background()) }()
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned (%v) while a label was on its way", err)
		case <-time.After(100 * time.Millisecond):
		}
		tr.release <- struct{}{}
		select {
		case err := <-stopped:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Stop did not return after the label was delivered")
		}
		if j := q.job(1); j.State != serializer.JobPrinted {
			t.Errorf("job in flight ended %s, want printed", j.State)
		}
		for id := int64(2); id <= 3; id++ {
			if j := q.job(id); j.State != serializer.JobQueued {
				t.Errorf("job %d is %s after Stop, want queued", id, j.State)
			}
		}
		if tr.cut || tr.closedAt.IsZero() {
			t.Errorf("send cut off = %v, transport closed = %v", tr.cut, !tr.closedAt.IsZero())
		}
		w.Close() // after Stop: nothing left to do
	})
}

// A Stop whose deadline passes cuts the send off, as Close does, and says so.
func TestWorkerStopDeadline(t *testing.T) {
	q := newQueue()
	q.add(stationID, 1)
	tr := newSlowTransport()
	w := station.NewWorker(stationID, q, render, tr, station.WithStatusInterval(0))
	w.Start()
	<-tr.sending
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want the deadline", err)
	}
	if j := q.job(1); j.State != serializer.JobUncertain {
		t.Errorf("job cut off mid-send ended %s, want uncertain", j.State)
	}
}

// Replace lets the old worker finish its label before the new one starts: the job
// in flight ends printed, not uncertain, and the printer never has two senders.
func TestPoolReplaceHandsOverWithoutCuttingALabel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue()
		q.add(stationID, 4)
		oldTr, newTr := newSlowTransport(), newSlowTransport()
		pool := station.NewPool()
		defer pool.Close()
		old := station.NewWorker(stationID, q, render, oldTr, station.WithStatusInterval(0))
		pool.Add(old)
		old.Start()
		if id := <-oldTr.sending; id != 1 {
			t.Fatalf("first send is job %d", id)
		}

		next := station.NewWorker(stationID, q, render, newTr, station.WithStatusInterval(0))
		replaced := make(chan error, 1)
		go func() { replaced <- pool.Replace(context.Background(), next) }()
		select {
		case id := <-newTr.sending:
			t.Fatalf("the new worker sent job %d while the old one was still sending", id)
		case err := <-replaced:
			t.Fatalf("Replace returned (%v) while the old worker was sending", err)
		case <-time.After(100 * time.Millisecond):
		}
		oldTr.release <- struct{}{}
		if err := <-replaced; err != nil {
			t.Fatal(err)
		}
		if w, _ := pool.Worker(stationID); w != next {
			t.Fatal("the pool does not hold the new worker")
		}
		for want := int64(2); want <= 4; want++ {
			select {
			case id := <-newTr.sending:
				if id != want {
					t.Fatalf("new worker sent job %d, want %d", id, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("new worker did not take job %d", want)
			}
			newTr.release <- struct{}{}
		}
		q.waitFor(t, 5*time.Second, "all printed", settled)
		for id := int64(1); id <= 4; id++ {
			if j := q.job(id); j.State != serializer.JobPrinted || j.Attempts != 1 {
				t.Errorf("job %d ended %s after %d attempts, want printed after 1", id, j.State, j.Attempts)
			}
		}
		if oldTr.cut || oldTr.sent.Load() != 1 {
			t.Errorf("old printer: cut off %v, %d labels", oldTr.cut, oldTr.sent.Load())
		}
	})
}

// Remove too lets the label in flight finish.
func TestPoolRemoveFinishesTheLabelInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue()
		q.add(stationID, 1)
		tr := newSlowTransport()
		pool := station.NewPool()
		w := station.NewWorker(stationID, q, render, tr, station.WithStatusInterval(0))
		pool.Add(w)
		w.Start()
		<-tr.sending
		removed := make(chan error, 1)
		go func() { removed <- pool.Remove(context.Background(), stationID) }()
		tr.release <- struct{}{}
		if err := <-removed; err != nil {
			t.Fatal(err)
		}
		if j := q.job(1); j.State != serializer.JobPrinted {
			t.Errorf("job ended %s, want printed", j.State)
		}
		if _, ok := pool.Worker(stationID); ok {
			t.Error("removed worker still in the pool")
		}
	})
}

// A job whose state changed while its label was sent (an operator cancelled it, the
// device was voided) keeps that state: the worker's outcome is reported as a
// conflict, not written over it.
func TestWorkerLostCompareAndSetIsReported(t *testing.T) {
	q := newQueue()
	q.add(stationID, 2)
	tr := newSlowTransport()
	w := startWorker(t, q, render, tr)
	<-tr.sending
	q.set(1, serializer.JobCancelled)
	tr.release <- struct{}{}
	<-tr.sending // the worker went on to the next job
	tr.release <- struct{}{}
	q.waitFor(t, 5*time.Second, "job 2 printed", func(jobs []serializer.PrintJob) bool {
		return jobs[1].State == serializer.JobPrinted
	})
	if j := q.job(1); j.State != serializer.JobCancelled {
		t.Errorf("cancelled job became %s", j.State)
	}
	st := w.Stats()
	if st.Conflicts != 1 || st.Printed != 2 {
		t.Errorf("stats: %d conflicts, %d printed; want 1, 2", st.Conflicts, st.Printed)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.conflicts) != 1 || q.conflicts[0].id != 1 || q.conflicts[0].state != serializer.JobPrinted {
		t.Errorf("conflicts = %+v", q.conflicts)
	}
}

// A job cancelled between being read and being marked sending is not sent.
func TestWorkerDoesNotSendAJobTakenMeanwhile(t *testing.T) {
	q := newQueue()
	q.add(stationID, 2)
	var sent []string
	var mu sync.Mutex
	tr := &fakeTransport{SendFn: func(_ context.Context, j station.Job) error {
		mu.Lock()
		sent = append(sent, j.Name)
		mu.Unlock()
		return nil
	}}
	cancelOnce := sync.Once{}
	r := func(ctx context.Context, job serializer.PrintJob) (station.Job, error) {
		if job.ID == 1 {
			cancelOnce.Do(func() { q.set(1, serializer.JobCancelled) })
		}
		return render(ctx, job)
	}
	startWorker(t, q, r, tr)
	q.waitFor(t, 5*time.Second, "job 2 printed", func(jobs []serializer.PrintJob) bool {
		return jobs[1].State == serializer.JobPrinted
	})
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 1 || sent[0] != "2" {
		t.Errorf("sent %v, want only job 2", sent)
	}
	if j := q.job(1); j.State != serializer.JobCancelled {
		t.Errorf("job 1 became %s", j.State)
	}
}

// SetRenderer changes how the next jobs look without stopping the worker.
func TestWorkerSetRendererInPlace(t *testing.T) {
	q := newQueue()
	q.add(stationID, 1)
	tr := newSlowTransport()
	w := startWorker(t, q, render, tr)
	<-tr.sending
	w.SetRenderer(func(ctx context.Context, job serializer.PrintJob) (station.Job, error) {
		j, err := render(ctx, job)
		j.Name = "new-" + j.Name
		return j, err
	})
	tr.release <- struct{}{}
	q.waitFor(t, 5*time.Second, "job 1 printed", settled)
	names := make(chan string, 1)
	w.SetRenderer(func(ctx context.Context, job serializer.PrintJob) (station.Job, error) {
		names <- "renderer 3"
		return render(ctx, job)
	})
	q.add(stationID, 1)
	w.Wake()
	select {
	case n := <-names:
		if n != "renderer 3" {
			t.Fatal(n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the new renderer was not used")
	}
	tr.release <- struct{}{}
	q.waitFor(t, 5*time.Second, "job 2 printed", settled)
	if j := q.job(1); j.State != serializer.JobPrinted || j.Attempts != 1 {
		t.Errorf("job being sent during SetRenderer: %s after %d attempts", j.State, j.Attempts)
	}
}

// Pool.Stop, as at shutdown, lets every station's label in flight finish.
func TestPoolStopFinishesTheLabelsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue()
		q.add("line-1", 2)
		q.add("line-2", 2)
		pool := station.NewPool()
		var trs []*slowTransport
		for _, id := range []string{"line-1", "line-2"} {
			tr := newSlowTransport()
			trs = append(trs, tr)
			w := station.NewWorker(id, q, render, tr, station.WithStatusInterval(0))
			pool.Add(w)
			w.Start()
			<-tr.sending
		}
		stopped := make(chan error, 1)
		go func() { stopped <- pool.Stop(context.Background()) }()
		synctest.Wait() // Stop has told the workers before their labels finish
		for _, tr := range trs {
			tr.release <- struct{}{}
		}
		if err := <-stopped; err != nil {
			t.Fatal(err)
		}
		for id, want := range map[int64]serializer.JobState{1: serializer.JobPrinted, 2: serializer.JobQueued, 3: serializer.JobPrinted, 4: serializer.JobQueued} {
			if j := q.job(id); j.State != want {
				t.Errorf("job %d is %s after Stop, want %s", id, j.State, want)
			}
		}
		if len(pool.Workers()) != 0 {
			t.Error("workers left in the pool")
		}
	})
}
