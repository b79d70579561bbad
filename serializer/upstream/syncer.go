package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"serialbox/serializer"
	"serialbox/serializer/loop"
)

// Syncer timing defaults.
const (
	DefaultPollInterval = 30 * time.Second // outbox check when nobody calls Wake
	DefaultPushTimeout  = 10 * time.Minute // longest one push may take, all its requests together
	BackoffMin          = time.Second      // first wait after a failed push
	BackoffMax          = 10 * time.Minute // longest wait between tries of a failing target
	MaxRetryAfter       = time.Hour        // longest Retry-After obeyed
	errorLogEvery       = time.Minute      // at most one repeated error log per interval
	recordTimeout       = 10 * time.Second // for writing an outcome to the outbox, even while stopping
)

// DefaultBackoff is the wait after the given number of failures in a row: doubling
// from 1 s up to 10 min, each wait drawn between half and all of that.
func DefaultBackoff(failures int) time.Duration {
	return loop.Backoff{Min: BackoffMin, Max: BackoffMax}.Wait(failures)
}

// TargetStats are one target's counters since the syncer started, for the API and metrics.
type TargetStats struct {
	Target      string    `json:"target"`
	Pushed      uint64    `json:"pushed"`                 // devices with a recorded verdict
	OK          uint64    `json:"ok"`                     // devices registered
	Exists      uint64    `json:"exists"`                 // devices the upstream held already
	Errors      uint64    `json:"errors"`                 // devices the upstream refused
	Chunks      uint64    `json:"chunks"`                 // chunks settled
	Retries     uint64    `json:"retries"`                // pushes that failed as a whole and wait for a retry
	Failures    int       `json:"failures"`               // failures in a row now; 0 when healthy
	Waiting     bool      `json:"waiting"`                // devices were waiting at the last look into the outbox
	Pushing     bool      `json:"pushing"`                // a push is under way
	LastError   string    `json:"last_error,omitempty"`   // the latest failure
	LastErrorAt time.Time `json:"last_error_at,omitzero"` // when it happened
	NextTry     time.Time `json:"next_try,omitzero"`      // no push before this while failing
	LastPushAt  time.Time `json:"last_push_at,omitzero"`  // the latest push that got verdicts
}

// Option adjusts a Syncer.
type Option func(*Syncer)

// WithLogger sets the syncer's logger; nil discards.
func WithLogger(l *slog.Logger) Option { return func(s *Syncer) { s.log = l } }

// WithClock sets the syncer's source of time.
func WithClock(c loop.Clock) Option { return func(s *Syncer) { s.clock = c } }

// WithBackoff sets the wait after a number of failures in a row.
func WithBackoff(f func(failures int) time.Duration) Option {
	return func(s *Syncer) { s.backoff = f }
}

// WithPollInterval sets how often the outbox is checked when nobody calls Wake.
func WithPollInterval(d time.Duration) Option { return func(s *Syncer) { s.pollEvery = d } }

// WithPushTimeout sets the longest one push may take.
func WithPushTimeout(d time.Duration) Option { return func(s *Syncer) { s.pushTimeout = d } }

// WithChunkSize sets the chunk size of targets that do not implement ChunkSizer.
func WithChunkSize(n int) Option { return func(s *Syncer) { s.chunkSize = n } }

// Syncer drains the outbox to every target: one loop per target takes the next
// chunk, pushes it and settles its results, or defers it after a failure. Targets are
// independent: one being down does not hold up the others.
type Syncer struct {
	outbox      Outbox
	loops       []*targetLoop
	log         *slog.Logger
	clock       loop.Clock
	backoff     func(int) time.Duration
	pollEvery   time.Duration
	pushTimeout time.Duration
	chunkSize   int

	runner loop.Runner
}

// targetLoop is the work of one target.
type targetLoop struct {
	s      *Syncer
	target Target
	name   string
	size   int
	log    *slog.Logger
	wake   loop.Waker

	mu    sync.Mutex // guards stats
	stats TargetStats

	// Owned by the loop goroutine.
	failures  int         // failed attempts in a row (target or outbox)
	retryAt   time.Time   // backoff: no push before this unless woken
	notBefore time.Time   // the upstream's Retry-After: no push before this
	pending   *settlement // results pushed but not yet recorded
	failLog   loop.FailureLog
}

// settlement is a chunk's results not yet recorded in the outbox.
type settlement struct {
	key     string
	results []Result
}

// NewSyncer returns a syncer of outbox to targets; Start runs it.
func NewSyncer(outbox Outbox, targets []Target, opts ...Option) *Syncer {
	s := &Syncer{
		outbox:      outbox,
		clock:       loop.Wall,
		backoff:     DefaultBackoff,
		pollEvery:   DefaultPollInterval,
		pushTimeout: DefaultPushTimeout,
		chunkSize:   DefaultChunkSize,
	}
	for _, opt := range opts {
		opt(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.pollEvery <= 0 {
		s.pollEvery = DefaultPollInterval
	}
	if s.pushTimeout <= 0 {
		s.pushTimeout = DefaultPushTimeout
	}
	if s.chunkSize <= 0 || s.chunkSize > MaxChunkSize {
		s.chunkSize = DefaultChunkSize
	}
	for _, t := range targets {
		size := s.chunkSize
		if cs, ok := t.(ChunkSizer); ok && cs.ChunkSize() > 0 {
			size = min(cs.ChunkSize(), MaxChunkSize)
		}
		log := s.log.With("target", t.Name())
		s.loops = append(s.loops, &targetLoop{
			s:       s,
			target:  t,
			name:    t.Name(),
			size:    size,
			log:     log,
			wake:    loop.NewWaker(),
			stats:   TargetStats{Target: t.Name()},
			failLog: loop.FailureLog{Log: log, Every: errorLogEvery},
		})
	}
	return s
}

// Start runs one loop per target in the background until Close.
func (s *Syncer) Start() {
	runs := make([]func(context.Context, <-chan struct{}), len(s.loops))
	for i, l := range s.loops {
		runs[i] = l.run
	}
	s.runner.Start(runs...)
}

// Wake tells the syncer that devices were queued: every target looks into the outbox
// at once, and a target waiting after failures tries again now, unless the upstream
// asked for a later time. It never blocks.
func (s *Syncer) Wake() {
	for _, l := range s.loops {
		l.wake.Wake()
	}
}

// Close stops the syncer and waits for its loops. A push under way is cut off; its
// chunk stays in the outbox and goes again under the same key after the next Start.
func (s *Syncer) Close() { s.runner.Close() }

// Stats returns a snapshot of every target's counters, in the order of the targets.
func (s *Syncer) Stats() []TargetStats {
	out := make([]TargetStats, len(s.loops))
	for i, l := range s.loops {
		l.mu.Lock()
		out[i] = l.stats
		l.mu.Unlock()
	}
	return out
}

var _ serializer.SyncQueue = (*Syncer)(nil)

func (l *targetLoop) run(ctx context.Context, stop <-chan struct{}) {
	l.log.Info("upstream sync started", "chunk_size", l.size)
	defer l.log.Info("upstream sync stopped")
	loop.Loop{
		Clock: l.s.clock,
		Wake:  l.wake,
		Woken: func() { l.retryAt = time.Time{} }, // told of new work: try again now
		Step:  l.step,
	}.Run(ctx, stop)
}

// step does the next piece of work and returns how long to wait before the next one;
// zero means at once.
func (l *targetLoop) step(ctx context.Context) time.Duration {
	if l.pending != nil {
		if err := l.flush(ctx); err != nil {
			return l.trouble("recording upstream results in the outbox failed", err)
		}
	}
	now := l.s.clock.Now()
	if t := later(l.retryAt, l.notBefore); now.Before(t) {
		return t.Sub(now)
	}
	c, ok, err := l.s.outbox.NextChunk(ctx, l.name, l.size)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		return l.trouble("reading the upstream outbox failed", err)
	}
	l.mu.Lock()
	l.stats.Waiting = ok
	l.mu.Unlock()
	if !ok {
		l.healthy()
		return l.s.pollEvery
	}
	if c.Key == "" || len(c.Devices) == 0 {
		return l.trouble("the upstream outbox returned an unusable chunk",
			fmt.Errorf("key %q with %d devices", c.Key, len(c.Devices)))
	}
	return l.push(ctx, c)
}

// push sends one chunk and records the outcome.
func (l *targetLoop) push(ctx context.Context, c Chunk) time.Duration {
	l.setPushing(true)
	pctx, cancel := context.WithTimeout(ctx, l.s.pushTimeout)
	results, err := l.target.Push(pctx, c)
	cancel()
	l.setPushing(false)
	if ctx.Err() != nil {
		return 0 // stopping: the chunk stays handed out and goes again under its key
	}
	now := l.s.clock.Now()
	if err != nil {
		l.failures++
		wait := l.s.backoff(l.failures)
		if ra := RetryAfter(err); ra > 0 {
			wait = min(max(ra, BackoffMin), MaxRetryAfter)
			l.notBefore = now.Add(wait)
		}
		l.retryAt = now.Add(wait)
		l.logFailure("upstream push failed; the chunk will be retried under the same key",
			"key", c.Key, "batch", c.Batch.ID, "devices", len(c.Devices), "err", err, "retry_in", wait)
		l.mu.Lock()
		l.stats.Retries++
		l.stats.Failures = l.failures
		l.stats.LastError, l.stats.LastErrorAt = err.Error(), now
		l.stats.NextTry = l.retryAt
		l.mu.Unlock()
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		if err := l.s.outbox.Defer(dctx, l.name, c.Key, err.Error(), l.retryAt); err != nil {
			l.logFailure("recording a failed upstream push in the outbox failed", "key", c.Key, "err", err)
		}
		return wait
	}

	l.healthy()
	res := matchChunk(c, results)
	refused, first := 0, ""
	for _, r := range res {
		if r.Status == StatusError {
			if refused == 0 {
				first = r.Message
			}
			refused++
		}
	}
	if refused > 0 {
		l.log.Warn("upstream refused devices; they are marked failed with the reason",
			"key", c.Key, "batch", c.Batch.ID, "refused", refused, "devices", len(res), "first_reason", first)
		l.mu.Lock()
		l.stats.LastError, l.stats.LastErrorAt = fmt.Sprintf("%d of %d devices refused: %s", refused, len(res), first), now
		l.mu.Unlock()
	} else {
		l.log.Debug("chunk registered upstream", "key", c.Key, "batch", c.Batch.ID, "devices", len(res))
	}
	l.pending = &settlement{key: c.Key, results: res}
	if err := l.flush(ctx); err != nil {
		return l.trouble("recording upstream results in the outbox failed", err)
	}
	return 0
}

// flush records the pending results. It outlives a cancelled ctx for a few seconds so
// that stopping does not lose what the upstream just answered.
func (l *targetLoop) flush(ctx context.Context) error {
	p := l.pending
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := l.s.outbox.Settle(fctx, l.name, p.key, p.results); err != nil {
		return err
	}
	l.pending = nil
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Chunks++
	l.stats.LastPushAt = l.s.clock.Now()
	for _, r := range p.results {
		l.stats.Pushed++
		switch r.Status {
		case StatusOK:
			l.stats.OK++
		case StatusExists:
			l.stats.Exists++
		default:
			l.stats.Errors++
		}
	}
	return nil
}

// matchChunk gives every device of c exactly one result from what the target
// returned, in the chunk's order: a device without one, or with a status that is not
// ours, counts as refused, and results about other devices are dropped.
func matchChunk(c Chunk, results []Result) []Result {
	by := make(map[serializer.UCI]Result, len(results))
	for _, r := range results {
		if _, dup := by[r.UCI]; !dup {
			by[r.UCI] = r
		}
	}
	out := make([]Result, len(c.Devices))
	for i, d := range c.Devices {
		r, ok := by[d.UCI]
		switch {
		case !ok:
			r = Result{UCI: d.UCI, Status: StatusError, Message: "no result from upstream"}
		case r.Status != StatusOK && r.Status != StatusExists && r.Status != StatusError:
			r = Result{UCI: d.UCI, Status: StatusError, Message: fmt.Sprintf("unknown status %q: %s", r.Status, r.Message)}
		case r.Status == StatusError && r.Message == "":
			r.Message = "refused by upstream (no reason given)"
		}
		out[i] = r
	}
	return out
}

// healthy clears the failure state after the target or outbox answered.
func (l *targetLoop) healthy() {
	if l.failures > 0 {
		l.log.Info("upstream sync working again", "failed_attempts", l.failures)
	}
	l.failures, l.retryAt, l.notBefore = 0, time.Time{}, time.Time{}
	l.failLog.Reset()
	l.mu.Lock()
	l.stats.Failures, l.stats.NextTry = 0, time.Time{}
	l.mu.Unlock()
}

// trouble logs a failure (rate-limited), records it and returns the backoff wait.
func (l *targetLoop) trouble(msg string, err error) time.Duration {
	l.failures++
	wait := l.s.backoff(l.failures)
	now := l.s.clock.Now()
	l.retryAt = now.Add(wait)
	l.logFailure(msg, "err", err, "retry_in", wait)
	l.mu.Lock()
	l.stats.Failures = l.failures
	l.stats.LastError, l.stats.LastErrorAt = msg+": "+err.Error(), now
	l.stats.NextTry = l.retryAt
	l.mu.Unlock()
	return wait
}

// logFailure logs at most once per errorLogEvery while failures repeat.
func (l *targetLoop) logFailure(msg string, attrs ...any) {
	l.failLog.Error(l.s.clock.Now(), l.failures, msg, attrs...)
}

func (l *targetLoop) setPushing(v bool) {
	l.mu.Lock()
	l.stats.Pushing = v
	l.mu.Unlock()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
