package station

import (
	"errors"
	"slices"
	"strings"
	"sync"

	"serialbox/serializer"
)

// Pool holds the running station workers and passes queue wake-ups to them.
type Pool struct {
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

// Replace puts w in the pool and stops the worker it replaces, if any, after w took
// over: a configuration reload uses it to swap one station's printer.
func (p *Pool) Replace(w *Worker) error {
	p.mu.Lock()
	old := p.workers[w.StationID()]
	p.workers[w.StationID()] = w
	p.mu.Unlock()
	if old == nil || old == w {
		return nil
	}
	return old.Close()
}

// Remove stops and drops the station's worker.
func (p *Pool) Remove(stationID string) error {
	p.mu.Lock()
	old := p.workers[stationID]
	delete(p.workers, stationID)
	p.mu.Unlock()
	if old == nil {
		return nil
	}
	return old.Close()
}

// Close stops every worker at once and waits for all of them.
func (p *Pool) Close() error {
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
		wg.Go(func() { errs[i] = w.Close() })
	}
	wg.Wait()
	return errors.Join(errs...)
}
