package station

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"serialbox/serializer"
)

// Pool holds the running station workers and passes queue wake-ups to them.
type Pool struct {
	swap    sync.Mutex // serialises Replace and Remove
	mu      sync.RWMutex
	workers map[string]*Worker
}

var _ serializer.PrintQueue = (*Pool)(nil)

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{workers: make(map[string]*Worker)} }

// Add puts a worker in the pool, replacing (not closing) any for the same station.
func (p *Pool) Add(w *Worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.workers[w.StationID()] = w
}

// Worker returns the station's worker.
func (p *Pool) Worker(stationID string) (*Worker, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	w, ok := p.workers[stationID]
	return w, ok
}

// Workers returns every worker, ordered by station id.
func (p *Pool) Workers() []*Worker {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]*Worker, 0, len(p.workers))
	for _, w := range p.workers {
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b *Worker) int { return strings.Compare(a.station, b.station) })
	return out
}

// Queued wakes the station's worker; it never blocks. It implements
// serializer.PrintQueue.
func (p *Pool) Queued(stationID string) {
	if w, ok := p.Worker(stationID); ok {
		w.Wake()
	}
}

// Replace swaps the station's worker for w, which is not started yet: the worker it
// replaces, if any, finishes the label it is sending and stops (see Worker.Stop);
// only then does w start, so a label in flight is never cut off and the printer never
// has two senders. When ctx ends first the old worker's send is cut off. A
// configuration reload uses it to swap one station's printer.
func (p *Pool) Replace(ctx context.Context, w *Worker) error {
	p.swap.Lock()
	defer p.swap.Unlock()
	old, _ := p.Worker(w.StationID())
	var err error
	if old != nil && old != w {
		err = old.Stop(ctx)
	}
	p.Add(w)
	w.Start()
	return err
}

// Remove stops and drops the station's worker, letting the label it is sending
// finish as Replace does.
func (p *Pool) Remove(ctx context.Context, stationID string) error {
	p.swap.Lock()
	defer p.swap.Unlock()
	old, _ := p.Worker(stationID)
	if old == nil {
		return nil
	}
	err := old.Stop(ctx)
	p.mu.Lock()
	if p.workers[stationID] == old {
		delete(p.workers, stationID)
	}
	p.mu.Unlock()
	return err
}

// Close stops every worker at once and waits for all of them; labels being sent are
// cut off.
func (p *Pool) Close() error { return p.stopAll(func(w *Worker) error { return w.Close() }) }

// Stop stops every worker at once as Worker.Stop does, letting the labels being sent
// finish, and waits for all of them. When ctx ends first the sends still going are
// cut off.
func (p *Pool) Stop(ctx context.Context) error {
	return p.stopAll(func(w *Worker) error { return w.Stop(ctx) })
}

func (p *Pool) stopAll(stop func(*Worker) error) error {
	p.mu.Lock()
	ws := make([]*Worker, 0, len(p.workers))
	for _, w := range p.workers {
		ws = append(ws, w)
	}
	p.workers = map[string]*Worker{}
	p.mu.Unlock()
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() { errs[i] = stop(w) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
