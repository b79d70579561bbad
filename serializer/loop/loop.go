// Package loop is the scaffolding every background worker of the appliance shares:
// the print workers, the upstream syncers and the event publisher. It holds the clock
// they read, the capped exponential backoff with jitter they wait by, the
// rate-limited logger for failures that repeat, and the runner that steps a loop over
// a timer, a wake-up channel and a stop signal.
//
// It imports nothing of the appliance's own packages.
package loop

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// Clock is a worker's source of time; tests replace it.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// Wall is the wall clock.
var Wall Clock = wallClock{}

type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Backoff is a capped exponential backoff with jitter: the wait after n failures in a
// row doubles from Min up to Max, and each wait is drawn between half and all of that,
// so that workers failing together do not retry together.
type Backoff struct {
	Min, Max time.Duration
}

// Ceiling returns the longest wait after the given number of failures in a row
// (1 = the first): Min, doubled for each further failure, at most Max.
func (b Backoff) Ceiling(failures int) time.Duration {
	d := b.Min
	for i := 1; i < failures && d > 0 && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Wait returns the wait after the given number of failures in a row, drawn between
// half and all of Ceiling.
func (b Backoff) Wait(failures int) time.Duration {
	d := b.Ceiling(failures)
	return d/2 + rand.N(d/2+1)
}

// FailureLog logs a failure that repeats at most once per Every: the first of a run is
// logged at once, the repeats within Every are counted, and the count goes with the
// next line. It belongs to one loop goroutine.
type FailureLog struct {
	Log   *slog.Logger
	Every time.Duration

	last       time.Time
	suppressed int
}

// Error logs msg with attrs at error level, unless a line went out less than Every
// before now. failures is the number of failures in a row, logged with it.
func (f *FailureLog) Error(now time.Time, failures int, msg string, attrs ...any) {
	if !f.last.IsZero() && now.Sub(f.last) < f.Every {
		f.suppressed++
		return
	}
	if f.suppressed > 0 {
		attrs = append(attrs, "repeats_not_logged", f.suppressed)
	}
	attrs = append(attrs, "failures_in_a_row", failures)
	f.Log.Error(msg, attrs...)
	f.last, f.suppressed = now, 0
}

// Reset ends the run of failures: the next one is logged at once.
func (f *FailureLog) Reset() { f.last, f.suppressed = time.Time{}, 0 }

// Waker tells a loop that work is waiting. Wake-ups coalesce; Wake never blocks.
type Waker chan struct{}

// NewWaker returns a Waker.
func NewWaker() Waker { return make(Waker, 1) }

// Wake signals the loop.
func (w Waker) Wake() {
	select {
	case w <- struct{}{}:
	default:
	}
}

// Loop is a background loop: Step does the next piece of work and returns how long to
// wait before the next one (zero or less: at once). The wait ends early when Wake
// receives; Woken, when set, is then called before the next step.
type Loop struct {
	Clock Clock // nil: Wall
	Wake  <-chan struct{}
	Woken func()
	Step  func(ctx context.Context) time.Duration
}

// Run steps the loop until ctx ends, which cuts off the step under way, or stop
// closes, which lets the step under way finish first.
func (l Loop) Run(ctx context.Context, stop <-chan struct{}) {
	clock := l.Clock
	if clock == nil {
		clock = Wall
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		default:
		}
		wait := l.Step(ctx)
		if wait <= 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-l.Wake:
			if l.Woken != nil {
				l.Woken()
			}
		case <-clock.After(wait):
		}
	}
}

// Runner runs a worker's loops in the background and stops them. Its zero value is
// ready to use.
type Runner struct {
	started  sync.Once
	cancel   context.CancelFunc
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// Start runs each loop in a goroutine of its own, with the context that Close cancels
// and the channel that Stop closes. Only the first call starts anything.
func (r *Runner) Start(loops ...func(ctx context.Context, stop <-chan struct{})) {
	r.started.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel, r.stop = cancel, make(chan struct{})
		for _, run := range loops {
			r.wg.Go(func() { run(ctx, r.stop) })
		}
	})
}

// Close cuts off the work under way and waits for the loops to return. A runner never
// started stays stopped.
func (r *Runner) Close() {
	r.started.Do(func() {})
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
}

// Stop asks the loops to return once the step under way is done and waits for them.
// When ctx ends first the work under way is cut off as by Close, and Stop returns
// ctx's error.
func (r *Runner) Stop(ctx context.Context) error {
	r.started.Do(func() {})
	if r.stop == nil {
		return nil
	}
	r.stopOnce.Do(func() { close(r.stop) })
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		r.Close()
		return ctx.Err()
	}
}

// Duration is a time.Duration written as a Go duration string ("10s", "1m30s") in
// configuration files.
type Duration time.Duration

// UnmarshalText parses a duration string such as "30s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("not a duration (use e.g. \"30s\" or \"1m\"): %q", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// String returns the duration as a Go duration string.
func (d Duration) String() string { return time.Duration(d).String() }
