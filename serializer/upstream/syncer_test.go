package upstream_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/serializer/upstream"
)

// fakeTarget is an upstream that remembers what it registered. Each chunk key fails
// its first failFirst pushes; with lostReply, a failed push registered the devices
// anyway, as when the answer is lost on the way back.
type fakeTarget struct {
	name      string
	size      int
	failFirst int
	lostReply bool
	PushFn    func(ctx context.Context, c upstream.Chunk) ([]upstream.Result, error) // replaces the default behaviour

	mu         sync.Mutex
	attempts   map[string][][]serializer.UCI
	registered map[serializer.UCI]int
	pushes     int
}

var (
	_ upstream.Target     = (*fakeTarget)(nil)
	_ upstream.ChunkSizer = (*fakeTarget)(nil)
)

func newFakeTarget(name string) *fakeTarget {
	return &fakeTarget{name: name, attempts: map[string][][]serializer.UCI{}, registered: map[serializer.UCI]int{}}
}

func (f *fakeTarget) Name() string   { return f.name }
func (f *fakeTarget) ChunkSize() int { return f.size }

func (f *fakeTarget) Push(ctx context.Context, c upstream.Chunk) ([]upstream.Result, error) {
	f.mu.Lock()
	f.pushes++
	ucis := make([]serializer.UCI, len(c.Devices))
	for i, d := range c.Devices {
		ucis[i] = d.UCI
	}
	f.attempts[c.Key] = append(f.attempts[c.Key], ucis)
	n := len(f.attempts[c.Key])
	fn := f.PushFn
	f.mu.Unlock()
	if fn != nil {
		return fn(ctx, c)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if n <= f.failFirst {
		if f.lostReply && n%2 == 1 {
			for _, u := range ucis {
				f.registered[u]++
			}
		}
		return nil, errors.New("HTTP 503 Service Unavailable")
	}
	res := make([]upstream.Result, len(ucis))
	for i, u := range ucis {
		res[i] = upstream.Result{UCI: u, Status: upstream.StatusOK}
		if f.registered[u] > 0 {
			res[i].Status = upstream.StatusExists
			continue
		}
		f.registered[u]++
	}
	return res, nil
}

func (f *fakeTarget) Pushes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pushes
}

func fastBackoff(int) time.Duration { return time.Millisecond }

func TestSyncerExactlyOncePerDevicePerTarget(t *testing.T) {
	out := newMemOutbox()
	flaky := newFakeTarget("flaky")
	flaky.failFirst, flaky.lostReply = 2, true
	steady := newFakeTarget("steady")
	steady.size = 40
	var all []serializer.Device
	for i, n := range []int{250, 1, 99} {
		b := testBatch(int64(i + 1))
		devs := makeDevices(t, 2, b.ID, n)
		all = append(all, devs...)
		out.Queue("flaky", b, testProduct, devs)
		out.Queue("steady", b, testProduct, devs)
	}
	s := upstream.NewSyncer(out, []upstream.Target{flaky, steady},
		upstream.WithBackoff(fastBackoff), upstream.WithPollInterval(5*time.Millisecond), upstream.WithChunkSize(100))
	s.Start()
	waitFor(t, 10*time.Second, "every device settled with both targets", func() bool {
		return out.Settled("flaky") == len(all) && out.Settled("steady") == len(all)
	})
	s.Close()

	for _, target := range []*fakeTarget{flaky, steady} {
		results := out.Results(target.name)
		for _, d := range all {
			rs := results[d.UCI]
			if len(rs) != 1 || !rs[0].OK() {
				t.Fatalf("%s: device %s settled as %+v, want once as ok or exists", target.name, d.UCI, rs)
			}
			if target.registered[d.UCI] != 1 {
				t.Fatalf("%s: device %s registered %d times upstream", target.name, d.UCI, target.registered[d.UCI])
			}
		}
		if len(target.registered) != len(all) {
			t.Errorf("%s: upstream holds %d devices, want %d", target.name, len(target.registered), len(all))
		}
		for key, tries := range target.attempts {
			for _, try := range tries[1:] {
				if !slices.Equal(try, tries[0]) {
					t.Fatalf("%s: key %s was pushed with different devices", target.name, key)
				}
			}
			if want := target.failFirst + 1; len(tries) != want {
				t.Errorf("%s: key %s pushed %d times, want %d", target.name, key, len(tries), want)
			}
			if max := target.size; max > 0 && len(tries[0]) > max {
				t.Errorf("%s: chunk of %d devices, chunk size is %d", target.name, len(tries[0]), max)
			}
		}
	}
	// 250 = 3 chunks of 100, 1 = 1 chunk, 99 = 1 chunk; each fails twice.
	if got, want := len(out.Defers()), 2*5; got != want {
		t.Errorf("Defer called %d times, want %d", got, want)
	}
	for _, d := range out.Defers() {
		if _, ok := flaky.attempts[d.key]; !ok || d.target != "flaky" || d.reason == "" {
			t.Errorf("Defer(%q, %q, %q): not a failed push of flaky", d.target, d.key, d.reason)
		}
	}
	stats := s.Stats()
	if len(stats) != 2 || stats[0].Target != "flaky" || stats[1].Target != "steady" {
		t.Fatalf("Stats() = %+v", stats)
	}
	for _, st := range stats {
		if st.Pushed != uint64(len(all)) || st.OK+st.Exists != st.Pushed || st.Errors != 0 || st.Failures != 0 {
			t.Errorf("%s stats = %+v", st.Target, st)
		}
	}
	if stats[0].Retries != 10 || stats[0].Exists == 0 {
		t.Errorf("flaky stats = %+v, want 10 retries and some devices that existed", stats[0])
	}
}

func TestSyncerRefusalsAreSettled(t *testing.T) {
	out := newMemOutbox()
	c := testChunk(t, "", 5)
	out.Queue("cloud", c.Batch, c.Product, c.Devices)
	target := newFakeTarget("cloud")
	target.PushFn = func(_ context.Context, c upstream.Chunk) ([]upstream.Result, error) {
		return []upstream.Result{
			{UCI: c.Devices[4].UCI, Status: upstream.StatusOK}, // out of order
			{UCI: c.Devices[0].UCI, Status: upstream.StatusExists},
			{UCI: c.Devices[0].UCI, Status: upstream.StatusError, Message: "second answer ignored"},
			{UCI: c.Devices[1].UCI, Status: upstream.StatusError, Message: "identity taken"},
			{UCI: c.Devices[2].UCI, Status: "maybe"},
			{UCI: serializer.MustParse("58KPP23VZ4Y298SM"), Status: upstream.StatusOK}, // not in the chunk
			// Devices[3]: no answer
		}, nil
	}
	s := upstream.NewSyncer(out, []upstream.Target{target}, upstream.WithBackoff(fastBackoff))
	s.Start()
	waitFor(t, 5*time.Second, "settle", func() bool { return out.Settled("cloud") == 5 })
	s.Close()
	res := out.Results("cloud")
	want := []struct{ status, msg string }{
		{upstream.StatusExists, ""},
		{upstream.StatusError, "identity taken"},
		{upstream.StatusError, `unknown status "maybe"`},
		{upstream.StatusError, "no result from upstream"},
		{upstream.StatusOK, ""},
	}
	for i, w := range want {
		rs := res[c.Devices[i].UCI]
		if len(rs) != 1 || rs[0].Status != w.status || !contains(rs[0].Message, w.msg) {
			t.Errorf("device %d settled as %+v, want %s %q", i, rs, w.status, w.msg)
		}
	}
	st := s.Stats()[0]
	if st.OK != 1 || st.Exists != 1 || st.Errors != 3 || st.LastError == "" {
		t.Errorf("stats = %+v", st)
	}
}

func TestSyncerCloseStopsPromptlyAndResumesUnderTheSameKey(t *testing.T) {
	out := newMemOutbox()
	c := testChunk(t, "", 3)
	out.Queue("cloud", c.Batch, c.Product, c.Devices)
	hanging := newFakeTarget("cloud")
	hanging.PushFn = func(ctx context.Context, c upstream.Chunk) ([]upstream.Result, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	s := upstream.NewSyncer(out, []upstream.Target{hanging})
	s.Start()
	waitFor(t, 5*time.Second, "push under way", func() bool { return s.Stats()[0].Pushing })
	start := time.Now()
	s.Close()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v", took)
	}
	if n := len(out.Defers()); n != 0 {
		t.Errorf("a push cut off by Close was deferred %d times; it should simply go again", n)
	}

	// The next run pushes the same chunk under the same key.
	working := newFakeTarget("cloud")
	s = upstream.NewSyncer(out, []upstream.Target{working})
	s.Start()
	defer s.Close()
	waitFor(t, 5*time.Second, "settle after restart", func() bool { return out.Settled("cloud") == 3 })
	for key := range hanging.attempts {
		if _, ok := working.attempts[key]; !ok {
			t.Errorf("after the restart the chunk went under keys %v, want %q", keysOf(working.attempts), key)
		}
	}
}

func TestSyncerWake(t *testing.T) {
	out := newMemOutbox()
	target := newFakeTarget("cloud")
	s := upstream.NewSyncer(out, []upstream.Target{target}, upstream.WithPollInterval(time.Hour))
	s.Start()
	defer s.Close()
	waitFor(t, 5*time.Second, "the first look into the outbox", func() bool {
		out.mu.Lock()
		defer out.mu.Unlock()
		return out.nexts > 0
	})
	c := testChunk(t, "", 4)
	out.Queue("cloud", c.Batch, c.Product, c.Devices)
	s.Wake()
	s.Wake() // never blocks
	waitFor(t, 2*time.Second, "settle after Wake", func() bool { return out.Settled("cloud") == 4 })
}

func TestSyncerWakeSkipsBackoff(t *testing.T) {
	out := newMemOutbox()
	c := testChunk(t, "", 2)
	out.Queue("cloud", c.Batch, c.Product, c.Devices)
	target := newFakeTarget("cloud")
	target.failFirst = 1
	s := upstream.NewSyncer(out, []upstream.Target{target},
		upstream.WithBackoff(func(int) time.Duration { return time.Hour }))
	s.Start()
	defer s.Close()
	waitFor(t, 5*time.Second, "first failure", func() bool { return len(out.Defers()) == 1 })
	if st := s.Stats()[0]; st.Failures != 1 || st.NextTry.IsZero() || !contains(st.LastError, "503") {
		t.Errorf("stats after a failure = %+v", st)
	}
	s.Wake()
	waitFor(t, 2*time.Second, "settle after Wake", func() bool { return out.Settled("cloud") == 2 })
}

func TestSyncerBackoffAndRetryAfter(t *testing.T) {
	clock := newFakeClock()
	t0 := clock.Now()
	out := newMemOutbox()
	c := testChunk(t, "", 2)
	out.Queue("cloud", c.Batch, c.Product, c.Devices)
	target := newFakeTarget("cloud")
	var calls atomic.Int32
	target.PushFn = func(_ context.Context, c upstream.Chunk) ([]upstream.Result, error) {
		switch calls.Add(1) {
		case 1:
			return nil, errors.New("connection reset")
		case 2:
			return nil, &upstream.RetryError{After: 42 * time.Second, Err: errors.New("HTTP 429")}
		}
		return []upstream.Result{{UCI: c.Devices[0].UCI, Status: "ok"}, {UCI: c.Devices[1].UCI, Status: "ok"}}, nil
	}
	s := upstream.NewSyncer(out, []upstream.Target{target}, upstream.WithClock(clock),
		upstream.WithBackoff(func(n int) time.Duration { return time.Duration(n) * time.Second }))
	s.Start()
	defer s.Close()

	waitFor(t, 5*time.Second, "backoff timer", func() bool { return clock.HasWaiter(t0.Add(time.Second)) })
	if d := out.Defers(); len(d) != 1 || !d[0].next.Equal(t0.Add(time.Second)) || d[0].reason != "connection reset" {
		t.Fatalf("defers = %+v, want one at t0+1s", d)
	}
	clock.Advance(time.Second)
	t1 := t0.Add(time.Second)
	waitFor(t, 5*time.Second, "Retry-After timer", func() bool { return clock.HasWaiter(t1.Add(42 * time.Second)) })
	if d := out.Defers(); len(d) != 2 || !d[1].next.Equal(t1.Add(42*time.Second)) {
		t.Fatalf("defers = %+v, want the second at t0+1s+42s", d)
	}
	if st := s.Stats()[0]; !st.NextTry.Equal(t1.Add(42 * time.Second)) {
		t.Errorf("NextTry = %v, want %v", st.NextTry, t1.Add(42*time.Second))
	}

	// Wake does not override what the upstream asked for.
	s.Wake()
	time.Sleep(30 * time.Millisecond)
	if n := calls.Load(); n != 2 {
		t.Fatalf("pushed %d times before Retry-After passed, want 2", n)
	}
	clock.Advance(42 * time.Second)
	waitFor(t, 5*time.Second, "settle", func() bool { return out.Settled("cloud") == 2 })
}

func TestSyncerOutboxTrouble(t *testing.T) {
	out := newMemOutbox()
	c := testChunk(t, "", 3)
	out.Queue("cloud", c.Batch, c.Product, c.Devices)
	var nextFails, settleFails atomic.Int32
	nextFails.Store(20)
	settleFails.Store(2)
	out.NextChunkFn = func(string) error {
		if nextFails.Add(-1) >= 0 {
			return errors.New("database is locked")
		}
		return nil
	}
	out.SettleFn = func(string, string) error {
		if settleFails.Add(-1) >= 0 {
			return errors.New("disk I/O error")
		}
		return nil
	}
	logs := &countHandler{}
	target := newFakeTarget("cloud")
	s := upstream.NewSyncer(out, []upstream.Target{target},
		upstream.WithBackoff(fastBackoff), upstream.WithLogger(slog.New(logs)))
	s.Start()
	waitFor(t, 5*time.Second, "settle", func() bool { return out.Settled("cloud") == 3 })
	s.Close()
	if n := target.Pushes(); n != 1 {
		t.Errorf("pushed %d times; results that could not be recorded must be recorded, not pushed again", n)
	}
	// Two episodes within a minute (20 failed reads, then 2 failed writes after a push
	// that worked): one error log each.
	if n := logs.errors.Load(); n != 2 {
		t.Errorf("%d error logs for 22 failures in two episodes, want 2 (rate-limited)", n)
	}
	if st := s.Stats()[0]; st.Failures != 0 || st.Pushed != 3 || st.Chunks != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestSyncerCloseWithoutStart(t *testing.T) {
	s := upstream.NewSyncer(newMemOutbox(), []upstream.Target{newFakeTarget("cloud")})
	s.Wake()
	s.Close()
	s.Start() // stays stopped
	s.Close()
}

// countHandler counts log records by level.
type countHandler struct{ errors atomic.Int32 }

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.errors.Add(1)
	}
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

// HasWaiter reports whether a timer is set for exactly at.
func (c *fakeClock) HasWaiter(at time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.waiters {
		if w.at.Equal(at) {
			return true
		}
	}
	return false
}

func keysOf[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
