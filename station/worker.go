package station

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"serialbox/serializer"
	"serialbox/serializer/loop"
)

// Queue is the durable label-job queue as the station worker sees it.
type Queue interface {
	// NextJob returns the station's oldest job in state queued or sending (ok=false when none).
	NextJob(ctx context.Context, stationID string) (job serializer.PrintJob, ok bool, err error)
	// MoveJob moves a job from state from to state to; attempts grows by one when
	// moving to sending; lastErr is recorded ("" clears). A job no longer in state
	// from is left as it is and an ECONFLICT error says what it is instead.
	MoveJob(ctx context.Context, id int64, from, to serializer.JobState, lastErr string) error
}

// Renderer turns a job into printer bytes (the daemon wires label rendering here).
type Renderer func(ctx context.Context, job serializer.PrintJob) (Job, error)

// Worker timing defaults.
const (
	DefaultPollInterval = 5 * time.Second        // queue check when nobody calls Wake
	BackoffMin          = 500 * time.Millisecond // first wait after a failure
	BackoffMax          = 30 * time.Second       // longest wait between attempts
	errorLogEvery       = time.Minute            // at most one repeated error log per interval
	statusTimeout       = 15 * time.Second
	updateTimeout       = 10 * time.Second
	silentPrinterFactor = 6 // status polls are this much rarer for a printer that never answers
)

// DefaultBackoff is the wait after the given number of failures in a row: doubling
// from 500 ms up to 30 s, each wait drawn between half and all of that.
func DefaultBackoff(failures int) time.Duration {
	return loop.Backoff{Min: BackoffMin, Max: BackoffMax}.Wait(failures)
}

// WorkerStats are a worker's counters since it started, for the API and metrics.
type WorkerStats struct {
	Printed       uint64    `json:"printed"`                // jobs the printer took whole
	Failed        uint64    `json:"failed"`                 // jobs given up (render errors)
	Uncertain     uint64    `json:"uncertain"`              // jobs whose delivery broke off
	Conflicts     uint64    `json:"conflicts"`              // outcomes not recorded: the job had changed meanwhile
	Retries       uint64    `json:"retries"`                // sends put back because the printer was unreachable
	Sending       bool      `json:"sending"`                // a job is on its way now
	RetryAt       time.Time `json:"retry_at,omitzero"`      // next attempt while the printer is unreachable
	LastError     string    `json:"last_error,omitempty"`   // the latest failure
	LastErrorAt   time.Time `json:"last_error_at,omitzero"` // when it happened
	LastPrintedAt time.Time `json:"last_printed_at,omitzero"`
}

// WorkerOption adjusts a Worker.
type WorkerOption func(*Worker)

// WithLogger sets the worker's logger; nil discards.
func WithLogger(l *slog.Logger) WorkerOption { return func(w *Worker) { w.log = l } }

// WithClock sets the worker's source of time.
func WithClock(c loop.Clock) WorkerOption { return func(w *Worker) { w.clock = c } }

// WithBackoff sets the wait after a number of failures in a row.
func WithBackoff(f func(failures int) time.Duration) WorkerOption {
	return func(w *Worker) { w.backoff = f }
}

// WithPollInterval sets how often the queue is checked when nobody calls Wake.
func WithPollInterval(d time.Duration) WorkerOption { return func(w *Worker) { w.pollEvery = d } }

// WithStatusInterval sets how often the printer's status is asked; zero or less
// turns status polling off.
func WithStatusInterval(d time.Duration) WorkerOption {
	return func(w *Worker) { w.statusEvery = d }
}

// Worker drains one station's label jobs, oldest first, to its printer, and keeps
// the printer's status. It never resends a job whose delivery may have printed.
type Worker struct {
	station     string
	queue       Queue
	render      atomic.Pointer[Renderer] // replaced in place when labels change
	transport   Transport
	log         *slog.Logger
	clock       loop.Clock
	backoff     func(int) time.Duration
	pollEvery   time.Duration
	statusEvery time.Duration

	wake   loop.Waker
	runner loop.Runner

	mu     sync.Mutex // guards status and stats
	status Status
	stats  WorkerStats

	// Owned by the loop goroutine.
	failures   int       // failed attempts in a row (printer or store)
	retryAt    time.Time // no send before this
	nextStatus time.Time // next status poll
	pending    *jobUpdate
	failLog    loop.FailureLog
}

// jobUpdate is an outcome not yet recorded in the queue.
type jobUpdate struct {
	id       int64
	from, to serializer.JobState
	lastErr  string
}

// NewWorker returns the worker for a station; Start runs it. The worker owns the
// transport and closes it in Close.
func NewWorker(stationID string, q Queue, render Renderer, t Transport, opts ...WorkerOption) *Worker {
	w := &Worker{
		station:     stationID,
		queue:       q,
		transport:   t,
		clock:       loop.Wall,
		backoff:     DefaultBackoff,
		pollEvery:   DefaultPollInterval,
		statusEvery: DefaultStatusInterval,
		wake:        loop.NewWaker(),
		status:      Status{State: StateUnknown, Message: msgNotChecked},
	}
	w.render.Store(&render)
	for _, opt := range opts {
		opt(w)
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.log = w.log.With("station", stationID)
	w.failLog = loop.FailureLog{Log: w.log, Every: errorLogEvery}
	if w.pollEvery <= 0 {
		w.pollEvery = DefaultPollInterval
	}
	return w
}

// StationID returns the station the worker prints for.
func (w *Worker) StationID() string { return w.station }

// Start runs the worker in the background until Stop or Close.
func (w *Worker) Start() { w.runner.Start(w.run) }

// Wake tells the worker that jobs were queued. It never blocks.
func (w *Worker) Wake() { w.wake.Wake() }

// SetRenderer makes the worker render the jobs it takes from now on with r, as
// when a product's label template changed. The job being sent is not touched.
func (w *Worker) SetRenderer(r Renderer) { w.render.Store(&r) }

// Close stops the worker, waits for it, and closes the transport. A job being sent
// is cut off and recorded as the transport reports it.
func (w *Worker) Close() error {
	w.runner.Close()
	return w.transport.Close()
}

// Stop lets the job being sent reach the printer and its outcome be recorded, then
// stops the worker and closes the transport; no further job is taken. When ctx ends
// first the send is cut off as by Close and Stop returns ctx's error.
func (w *Worker) Stop(ctx context.Context) error {
	err := w.runner.Stop(ctx)
	return errors.Join(err, w.transport.Close())
}

// Status returns the printer's latest status.
func (w *Worker) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

// Stats returns a snapshot of the worker's counters.
func (w *Worker) Stats() WorkerStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

func (w *Worker) run(ctx context.Context, stop <-chan struct{}) {
	w.log.Info("print worker started")
	defer w.log.Info("print worker stopped")
	loop.Loop{Clock: w.clock, Wake: w.wake, Step: w.step}.Run(ctx, stop)
}

// step does the next piece of work and returns how long to wait before the next
// one; zero means at once.
func (w *Worker) step(ctx context.Context) time.Duration {
	if w.pending != nil {
		if err := w.flush(ctx); err != nil {
			return w.trouble("recording a label job's outcome failed", err)
		}
	}
	now := w.clock.Now()
	idle := w.pollEvery
	if w.statusEvery > 0 {
		if !now.Before(w.nextStatus) {
			every := w.statusEvery
			if w.pollStatus(ctx) {
				// The printer prints but does not answer status queries: ask less
				// often, since each unanswered query costs a reply timeout.
				every *= silentPrinterFactor
			}
			now = w.clock.Now()
			w.nextStatus = now.Add(every)
		}
		idle = min(idle, w.nextStatus.Sub(now))
	}
	if now.Before(w.retryAt) {
		return min(idle, w.retryAt.Sub(now))
	}
	if w.Status().Held() {
		// The printer says it cannot print: jobs wait in the queue, not in its buffer.
		return idle
	}
	job, ok, err := w.queue.NextJob(ctx, w.station)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		return w.trouble("reading the print queue failed", err)
	}
	if !ok {
		return idle
	}
	return w.process(ctx, job)
}

// process takes one job from queued or sending to its next state.
func (w *Worker) process(ctx context.Context, job serializer.PrintJob) time.Duration {
	log := w.log.With("job", job.ID)
	switch job.State {
	case serializer.JobSending:
		// An earlier run stopped between handing the job to the printer and hearing
		// the outcome: the label may or may not have come out.
		log.Warn("label job was interrupted during delivery; marked uncertain")
		w.finish(ctx, job.ID, serializer.JobSending, serializer.JobUncertain,
			"delivery was interrupted (the appliance stopped while sending): check the printer and reprint if the label is missing")
		return 0
	case serializer.JobQueued:
	default:
		return w.trouble("print queue returned a job that is not queued", fmt.Errorf("job %d is %s", job.ID, job.State))
	}

	pj, err := (*w.render.Load())(ctx, job)
	if err != nil {
		if ctx.Err() != nil {
			return 0 // shutting down: the job stays queued
		}
		log.Error("label job cannot be rendered; marked failed", "err", err)
		w.finish(ctx, job.ID, serializer.JobQueued, serializer.JobFailed, "rendering the label failed: "+err.Error())
		return 0
	}
	if pj.ID == 0 {
		pj.ID = job.ID
	}
	if err := w.queue.MoveJob(ctx, job.ID, serializer.JobQueued, serializer.JobSending, ""); err != nil {
		if ctx.Err() != nil {
			return 0
		}
		if serializer.ErrorCode(err) == serializer.ECONFLICT {
			// Cancelled (voided) or taken by another worker since it was read: not ours to send.
			w.conflict(job.ID, serializer.JobSending, err)
			return 0
		}
		return w.trouble("marking a label job as sending failed", err)
	}

	w.setSending(true)
	start := w.clock.Now()
	err = w.transport.Send(ctx, pj)
	w.setSending(false)

	switch {
	case err == nil:
		if w.failures > 0 {
			log.Info("printer reachable again", "failed_attempts", w.failures)
		}
		w.failures, w.retryAt = 0, time.Time{}
		w.failLog.Reset()
		log.Debug("label printed", "bytes", len(pj.Data), "took", w.clock.Now().Sub(start))
		w.setDelivered()
		w.finish(ctx, job.ID, serializer.JobSending, serializer.JobPrinted, "")
	case errors.Is(err, ErrUnreachable) && ctx.Err() != nil:
		// Stopped before a byte went out: the job simply waits for the next run.
		w.finish(ctx, job.ID, serializer.JobSending, serializer.JobQueued, "")
	case errors.Is(err, ErrUnreachable):
		w.failures++
		wait := w.backoff(w.failures)
		w.retryAt = w.clock.Now().Add(wait)
		w.logFailure("printer unreachable; label job stays queued", "job", job.ID, "err", err, "retry_in", wait)
		w.mu.Lock()
		w.stats.Retries++
		w.stats.RetryAt = w.retryAt
		w.mu.Unlock()
		w.finish(ctx, job.ID, serializer.JobSending, serializer.JobQueued, err.Error())
		w.setOffline(err)
		return 0
	default:
		// ErrUncertain, or any failure a transport did not classify: some bytes may
		// have reached the printer, so resending could print the label twice.
		log.Warn("label delivery broke off; marked uncertain for the operator", "err", err)
		w.finish(ctx, job.ID, serializer.JobSending, serializer.JobUncertain,
			err.Error()+": check the printer and reprint if the label is missing or damaged")
	}
	return 0
}

// finish records a job's move from state from to state and counts it. When the
// queue cannot take it the outcome is kept and recorded before anything else is done.
func (w *Worker) finish(ctx context.Context, id int64, from, state serializer.JobState, lastErr string) {
	w.mu.Lock()
	now := w.clock.Now()
	switch state {
	case serializer.JobPrinted:
		w.stats.Printed++
		w.stats.LastPrintedAt = now
	case serializer.JobFailed:
		w.stats.Failed++
	case serializer.JobUncertain:
		w.stats.Uncertain++
	}
	if state != serializer.JobQueued {
		w.stats.RetryAt = time.Time{}
	}
	if lastErr != "" {
		w.stats.LastError, w.stats.LastErrorAt = lastErr, now
	}
	w.mu.Unlock()
	w.pending = &jobUpdate{id: id, from: from, to: state, lastErr: lastErr}
	if err := w.flush(ctx); err != nil {
		w.trouble("recording a label job's outcome failed", err)
	}
}

// flush writes the pending outcome. It outlives a cancelled ctx for a few seconds
// so that shutting down does not lose what just happened. An outcome the job has
// moved on from meanwhile is reported and dropped, never written over the job.
func (w *Worker) flush(ctx context.Context) error {
	u := w.pending
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), updateTimeout)
	defer cancel()
	err := w.queue.MoveJob(uctx, u.id, u.from, u.to, u.lastErr)
	if serializer.ErrorCode(err) == serializer.ECONFLICT {
		w.conflict(u.id, u.to, err)
		err = nil
	}
	if err != nil {
		return err
	}
	w.pending = nil
	return nil
}

// conflict reports a state change the queue refused because the job was no longer
// in the state this worker left it in.
func (w *Worker) conflict(id int64, to serializer.JobState, err error) {
	msg := fmt.Sprintf("label job %d not marked %s: %s", id, to, serializer.ErrorMessage(err))
	w.log.Warn("label job changed meanwhile; this outcome is not recorded", "job", id, "outcome", to, "err", err)
	w.mu.Lock()
	w.stats.Conflicts++
	w.stats.LastError, w.stats.LastErrorAt = msg, w.clock.Now()
	w.mu.Unlock()
}

// trouble logs a failure (rate-limited), records it and returns the backoff wait.
func (w *Worker) trouble(msg string, err error) time.Duration {
	w.failures++
	wait := w.backoff(w.failures)
	w.retryAt = w.clock.Now().Add(wait)
	w.logFailure(msg, "err", err, "retry_in", wait)
	w.mu.Lock()
	w.stats.LastError, w.stats.LastErrorAt = msg+": "+err.Error(), w.clock.Now()
	w.mu.Unlock()
	return wait
}

// logFailure logs at most once per errorLogEvery while failures repeat.
func (w *Worker) logFailure(msg string, attrs ...any) {
	w.failLog.Error(w.clock.Now(), w.failures, msg, attrs...)
}

// pollStatus asks the printer for its status; it runs only between jobs. It reports
// whether the printer gave no reply although it printed since the last poll.
func (w *Worker) pollStatus(ctx context.Context) (silent bool) {
	sctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	st, err := w.transport.Status(sctx)
	if ctx.Err() != nil {
		return false
	}
	if st.State == "" {
		st.State, st.Message = StateUnknown, msgNoStatus
	}
	if st.CheckedAt.IsZero() {
		st.CheckedAt = w.clock.Now()
	}
	if st.State != StateOffline && !w.retryAt.IsZero() {
		// The printer answers again: no need to sit out the rest of the backoff.
		w.retryAt = time.Time{}
	}
	w.mu.Lock()
	prev := w.status
	w.status = st
	silent = errors.Is(err, errNoReply) && w.stats.LastPrintedAt.After(prev.CheckedAt)
	w.mu.Unlock()
	if prev.State != st.State {
		level := slog.LevelInfo
		if st.State != StateReady {
			level = slog.LevelWarn
		}
		w.log.Log(ctx, level, "printer status", "state", st.State, "message", st.Message, "was", prev.State, "err", err)
	}
	return silent
}

// setOffline shows a failed send as the printer's status until the next poll.
func (w *Worker) setOffline(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.status = Status{State: StateOffline, Message: "Printer offline: " + err.Error() + ": check power and cable", CheckedAt: w.clock.Now()}
}

func (w *Worker) setSending(on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stats.Sending = on
	if on {
		w.stats.RetryAt = time.Time{}
	}
}

// setDelivered clears an offline status that a failed send had set: the printer has
// just taken a job.
func (w *Worker) setDelivered() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status.State == StateOffline {
		w.status = Status{State: StateReady, Message: "Ready: the printer took a job", CheckedAt: w.clock.Now()}
	}
}
