package loop_test

import (
	"bytes"
	"context"
	"encoding"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"serialbox/serializer/loop"
)

func TestBackoff(t *testing.T) {
	b := loop.Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second}
	for failures, want := range map[int]time.Duration{
		0: 500 * time.Millisecond, 1: 500 * time.Millisecond, 2: time.Second, 3: 2 * time.Second,
		7: 30 * time.Second, 60: 30 * time.Second, 1 << 40: 30 * time.Second,
	} {
		if got := b.Ceiling(failures); got != want {
			t.Errorf("Ceiling(%d) = %v, want %v", failures, got, want)
		}
		for range 200 {
			if d := b.Wait(failures); d < want/2 || d > want {
				t.Fatalf("Wait(%d) = %v, want between %v and %v", failures, d, want/2, want)
			}
		}
	}
	// The waits are drawn, not fixed: workers failing together spread out.
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[b.Wait(5)] = true
	}
	if len(seen) < 10 {
		t.Errorf("50 waits took only %d values: no jitter", len(seen))
	}
}

func TestFailureLogRate(t *testing.T) {
	var buf bytes.Buffer
	f := loop.FailureLog{Log: slog.New(slog.NewTextHandler(&buf, nil)), Every: time.Minute}
	start := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	for i := range 100 {
		f.Error(start.Add(time.Duration(i)*time.Second), i+1, "printer unreachable", "err", "refused")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("100 failures in 100 s logged %d lines, want 2:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "failures_in_a_row=1") || strings.Contains(lines[0], "repeats_not_logged") {
		t.Errorf("first line = %s", lines[0])
	}
	if !strings.Contains(lines[1], "repeats_not_logged=59") || !strings.Contains(lines[1], "failures_in_a_row=61") {
		t.Errorf("second line = %s", lines[1])
	}
	buf.Reset()
	f.Reset()
	f.Error(start.Add(101*time.Second), 1, "printer unreachable")
	if !strings.Contains(buf.String(), "printer unreachable") || strings.Contains(buf.String(), "repeats_not_logged") {
		t.Errorf("after Reset: %q", buf.String())
	}
}

func TestWakerNeverBlocks(t *testing.T) {
	w := loop.NewWaker()
	for range 10 {
		w.Wake()
	}
	<-w
	select {
	case <-w:
		t.Fatal("ten wake-ups did not coalesce into one")
	default:
	}
}

// A loop waits what its step asks for, wakes early when told, and calls Woken.
func TestLoopWaitsAndWakes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := loop.NewWaker()
		var steps, woken atomic.Int32
		var r loop.Runner
		r.Start(loop.Loop{
			Wake:  w,
			Woken: func() { woken.Add(1) },
			Step:  func(context.Context) time.Duration { steps.Add(1); return time.Hour },
		}.Run)
		synctest.Wait()
		if steps.Load() != 1 {
			t.Fatalf("%d steps at start, want 1", steps.Load())
		}
		time.Sleep(59 * time.Minute)
		synctest.Wait()
		if steps.Load() != 1 {
			t.Fatalf("%d steps before the wait was over", steps.Load())
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if steps.Load() != 2 {
			t.Fatalf("%d steps after the wait, want 2", steps.Load())
		}
		w.Wake()
		synctest.Wait()
		if steps.Load() != 3 || woken.Load() != 1 {
			t.Fatalf("after Wake: %d steps, %d woken; want 3, 1", steps.Load(), woken.Load())
		}
		r.Close()
	})
}

// Stop lets the step under way finish; Close cuts it off.
func TestRunnerStopFinishesTheStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r loop.Runner
		inStep, finished, cut := make(chan struct{}), atomic.Bool{}, atomic.Bool{}
		steps := atomic.Int32{}
		r.Start(loop.Loop{Step: func(ctx context.Context) time.Duration {
			if steps.Add(1) > 1 {
				t.Error("a step began after Stop")
				return time.Hour
			}
			close(inStep)
			select {
			case <-time.After(5 * time.Second): // a label on its way to a slow printer
				finished.Store(true)
			case <-ctx.Done():
				cut.Store(true)
			}
			return 0
		}}.Run)
		<-inStep
		if err := r.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !finished.Load() || cut.Load() {
			t.Fatalf("Stop returned with the step finished=%v, cut off=%v", finished.Load(), cut.Load())
		}
		r.Close() // after Stop: returns at once
	})
}

// A Stop whose deadline passes cuts the step off and says so.
func TestRunnerStopDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r loop.Runner
		inStep, cut := make(chan struct{}), atomic.Bool{}
		r.Start(loop.Loop{Step: func(ctx context.Context) time.Duration {
			close(inStep)
			<-ctx.Done()
			cut.Store(true)
			return 0
		}}.Run)
		<-inStep
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := r.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) || !cut.Load() {
			t.Fatalf("Stop = %v, step cut off = %v", err, cut.Load())
		}
	})
}

// Close and Stop of a runner never started return at once and it stays stopped.
func TestRunnerNeverStarted(t *testing.T) {
	var r loop.Runner
	r.Close()
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	ran := false
	r.Start(func(context.Context, <-chan struct{}) { ran = true })
	r.Close()
	if ran {
		t.Fatal("a closed runner started a loop")
	}
}

func TestDurationText(t *testing.T) {
	var d loop.Duration
	var _ encoding.TextUnmarshaler = &d
	if err := d.UnmarshalText([]byte(" 1m30s ")); err != nil || time.Duration(d) != 90*time.Second {
		t.Errorf("UnmarshalText = %v, %v", time.Duration(d), err)
	}
	if err := d.UnmarshalText([]byte("30")); err == nil {
		t.Error("UnmarshalText(30) accepted a number without unit")
	}
	if b, _ := d.MarshalText(); string(b) != "1m30s" || d.String() != "1m30s" {
		t.Errorf("MarshalText = %s", b)
	}
}
