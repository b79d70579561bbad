package station_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/station"
)

// memQueue is an in-memory Queue that records every state change.
type memQueue struct {
	mu        sync.Mutex
	jobs      []serializer.PrintJob // in id order
	changes   []change
	conflicts []change // moves refused because the job was in another state
	changed   chan struct{}
	// MoveJobFn, when set, may fail an update before it is applied.
	MoveJobFn func(id int64, state serializer.JobState) error
	// NextJobFn, when set, may fail a read.
	NextJobFn func() error
}

var _ station.Queue = (*memQueue)(nil)

type change struct {
	id      int64
	state   serializer.JobState
	lastErr string
}

func newQueue() *memQueue { return &memQueue{changed: make(chan struct{})} }

// add queues n jobs for station and returns their ids.
func (q *memQueue) add(stationID string, n int) []int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ids []int64
	for range n {
		id := int64(len(q.jobs) + 1)
		q.jobs = append(q.jobs, serializer.PrintJob{ID: id, Kind: serializer.JobDevice, StationID: stationID, State: serializer.JobQueued})
		ids = append(ids, id)
	}
	return ids
}

// put adds a job as given.
func (q *memQueue) put(j serializer.PrintJob) {
	q.mu.Lock()
	defer q.mu.Unlock()
	j.ID = int64(len(q.jobs) + 1)
	q.jobs = append(q.jobs, j)
}

func (q *memQueue) NextJob(ctx context.Context, stationID string) (serializer.PrintJob, bool, error) {
	if q.NextJobFn != nil {
		if err := q.NextJobFn(); err != nil {
			return serializer.PrintJob{}, false, err
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, j := range q.jobs {
		if j.StationID == stationID && (j.State == serializer.JobQueued || j.State == serializer.JobSending) {
			return j, true, nil
		}
	}
	return serializer.PrintJob{}, false, nil
}

func (q *memQueue) MoveJob(ctx context.Context, id int64, from, state serializer.JobState, lastErr string) error {
	if q.MoveJobFn != nil {
		if err := q.MoveJobFn(id, state); err != nil {
			return err
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if id < 1 || int(id) > len(q.jobs) {
		return fmt.Errorf("no job %d", id)
	}
	j := &q.jobs[id-1]
	if j.State != from {
		q.conflicts = append(q.conflicts, change{id, state, lastErr})
		return serializer.Errorf(serializer.ECONFLICT, "label job %d is %s, not %s", id, j.State, from)
	}
	if state == serializer.JobSending {
		j.Attempts++
	}
	j.State, j.LastError = state, lastErr
	q.changes = append(q.changes, change{id, state, lastErr})
	close(q.changed)
	q.changed = make(chan struct{})
	return nil
}

// set puts a job in a state from outside the worker, as an operator or a void does.
func (q *memQueue) set(id int64, state serializer.JobState) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.jobs[id-1].State = state
}

// job returns a copy of job id.
func (q *memQueue) job(id int64) serializer.PrintJob {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.jobs[id-1]
}

// waitFor blocks until cond holds for the jobs, failing the test after d.
func (q *memQueue) waitFor(t testing.TB, d time.Duration, what string, cond func(jobs []serializer.PrintJob) bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		q.mu.Lock()
		ok, ch := cond(q.jobs), q.changed
		q.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			q.mu.Lock()
			defer q.mu.Unlock()
			t.Fatalf("waiting for %s: jobs %+v", what, q.jobs)
		}
	}
}

// settled reports whether no job is queued or sending.
func settled(jobs []serializer.PrintJob) bool {
	for _, j := range jobs {
		if j.State == serializer.JobQueued || j.State == serializer.JobSending {
			return false
		}
	}
	return true
}

// states returns the states of jobs, in id order.
func (q *memQueue) states() []serializer.JobState {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]serializer.JobState, len(q.jobs))
	for i, j := range q.jobs {
		out[i] = j.State
	}
	return out
}
