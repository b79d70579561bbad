package upstream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/serializer/upstream"
)

var (
	testProduct = serializer.Product{ID: "01H4R15D3478JD26YDYK408XE6", Name: "SerialEval", Model: "Eval-01"}
	testCreated = time.Date(2025, 3, 1, 8, 30, 15, 0, time.UTC)
)

// testBatch returns batch id of testProduct at station "line1".
func testBatch(id int64) serializer.Batch {
	return serializer.Batch{ID: id, ProductID: testProduct.ID, StationID: "line1", State: serializer.BatchClosed}
}

// makeDevices returns n devices of a batch with UCIs drawn from a seeded source.
func makeDevices(t testing.TB, seed uint64, batch int64, n int) []serializer.Device {
	t.Helper()
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(batch)})
	devs := make([]serializer.Device, n)
	for i := range devs {
		u, err := serializer.ReadUCI(r)
		if err != nil {
			t.Fatal(err)
		}
		devs[i] = serializer.Device{
			UCI:        u,
			BatchID:    batch,
			ProductID:  testProduct.ID,
			StationID:  "line1",
			Identity:   fmt.Sprintf("hwid:%d-%05d", batch, i),
			Attributes: json.RawMessage(fmt.Sprintf(`{"product":%q,"hwid":"%d-%05d"}`, testProduct.ID, batch, i)),
			State:      serializer.DeviceLabeled,
			CreatedAt:  testCreated.Add(time.Duration(i) * time.Second),
		}
	}
	return devs
}

func testChunk(t testing.TB, key string, n int) upstream.Chunk {
	return upstream.Chunk{Target: "cloud", Key: key, Batch: testBatch(7), Product: testProduct, Devices: makeDevices(t, 1, 7, n)}
}

// memOutbox is an in-memory Outbox with the semantics the syncer relies on. It
// records every Settle per device so that tests can check exactly-once.
type memOutbox struct {
	mu      sync.Mutex
	waiting map[string][]queued                             // per target, in queue order
	handed  map[string]*upstream.Chunk                      // per target: the chunk handed out, not settled
	settled map[string]map[serializer.UCI][]upstream.Result // per target and device: every Settle
	defers  []deferCall
	keys    int
	nexts   int // NextChunk calls

	// Fault injection; nil = none.
	NextChunkFn func(target string) error
	SettleFn    func(target, key string) error
}

var _ upstream.Outbox = (*memOutbox)(nil)

type queued struct {
	batch   serializer.Batch
	product serializer.Product
	device  serializer.Device
}

type deferCall struct {
	target, key, reason string
	next                time.Time
}

func newMemOutbox() *memOutbox {
	return &memOutbox{
		waiting: map[string][]queued{},
		handed:  map[string]*upstream.Chunk{},
		settled: map[string]map[serializer.UCI][]upstream.Result{},
	}
}

// Queue adds a batch's devices for a target.
func (o *memOutbox) Queue(target string, b serializer.Batch, p serializer.Product, devs []serializer.Device) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, d := range devs {
		o.waiting[target] = append(o.waiting[target], queued{b, p, d})
	}
}

func (o *memOutbox) NextChunk(ctx context.Context, target string, max int) (upstream.Chunk, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.nexts++
	if o.NextChunkFn != nil {
		if err := o.NextChunkFn(target); err != nil {
			return upstream.Chunk{}, false, err
		}
	}
	if c := o.handed[target]; c != nil {
		return cloneChunk(*c), true, nil
	}
	w := o.waiting[target]
	if len(w) == 0 {
		return upstream.Chunk{}, false, nil
	}
	o.keys++
	c := upstream.Chunk{Target: target, Key: fmt.Sprintf("%s-%04d", target, o.keys), Batch: w[0].batch, Product: w[0].product}
	n := 0
	for n < len(w) && n < max && w[n].batch.ID == w[0].batch.ID {
		c.Devices = append(c.Devices, w[n].device)
		n++
	}
	o.waiting[target] = w[n:]
	o.handed[target] = &c
	return cloneChunk(c), true, nil
}

func cloneChunk(c upstream.Chunk) upstream.Chunk {
	c.Devices = slices.Clone(c.Devices)
	return c
}

func (o *memOutbox) Settle(ctx context.Context, target, key string, results []upstream.Result) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.SettleFn != nil {
		if err := o.SettleFn(target, key); err != nil {
			return err
		}
	}
	c := o.handed[target]
	if c == nil || c.Key != key {
		return fmt.Errorf("settle %s/%s: no such chunk handed out", target, key)
	}
	if len(results) != len(c.Devices) {
		return fmt.Errorf("settle %s/%s: %d results for %d devices", target, key, len(results), len(c.Devices))
	}
	if o.settled[target] == nil {
		o.settled[target] = map[serializer.UCI][]upstream.Result{}
	}
	for i, r := range results {
		if r.UCI != c.Devices[i].UCI {
			return fmt.Errorf("settle %s/%s: result %d is for %s, not %s", target, key, i, r.UCI, c.Devices[i].UCI)
		}
		o.settled[target][r.UCI] = append(o.settled[target][r.UCI], r)
	}
	delete(o.handed, target)
	return nil
}

func (o *memOutbox) Defer(ctx context.Context, target, key, reason string, next time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c := o.handed[target]; c == nil || c.Key != key {
		return fmt.Errorf("defer %s/%s: no such chunk handed out", target, key)
	}
	o.defers = append(o.defers, deferCall{target, key, reason, next})
	return nil
}

// Settled returns how many devices of target have at least one recorded result.
func (o *memOutbox) Settled(target string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.settled[target])
}

func (o *memOutbox) Results(target string) map[serializer.UCI][]upstream.Result {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps(o.settled[target])
}

func maps(m map[serializer.UCI][]upstream.Result) map[serializer.UCI][]upstream.Result {
	out := make(map[serializer.UCI][]upstream.Result, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

func (o *memOutbox) Defers() []deferCall {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.defers)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: testCreated} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	return ch
}

// Advance moves the clock and fires the timers that became due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// Waiters returns how many timers are pending.
func (c *fakeClock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}
