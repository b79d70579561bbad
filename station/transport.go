package station

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Job is one label job as the printer's bytes.
type Job struct {
	ID      int64  // the label job's id
	Name    string // base file name for the file transport (e.g. the UCI); no folder, no extension
	Data    []byte // the printer language bytes (ZPL, TSPL or PDF)
	Preview []byte // optional PNG preview, written only by the file transport
}

// Transport delivers label jobs to one printer and asks it for its status. Its
// methods are safe for concurrent use; jobs and status queries never overlap.
type Transport interface {
	// Send delivers one whole job. A failure wraps ErrUnreachable when no byte reached
	// the printer (safe to retry) and ErrUncertain when delivery broke off after some
	// bytes were written (never resend without an operator).
	Send(ctx context.Context, job Job) error
	// Status asks the printer for its state. The Status is filled in even when the
	// error is not nil: it then says what is wrong (offline, no reply).
	Status(ctx context.Context) (Status, error)
	// Close releases the connection or device.
	Close() error
}

// ErrUnreachable marks a send that delivered nothing: the printer could not be
// reached (connection refused, timeout, device missing). The job may be sent again.
var ErrUnreachable = errors.New("printer unreachable")

// ErrUncertain marks a send that broke off after some bytes were written: a partial
// or complete label may have come out. The job must not be resent automatically.
var ErrUncertain = errors.New("delivery uncertain")

// SendError is a failed delivery. Kind is ErrUnreachable or ErrUncertain; errors.Is
// matches both the kind and the cause.
type SendError struct {
	Kind    error // ErrUnreachable or ErrUncertain
	Written int   // bytes handed to the printer before the failure
	Total   int   // bytes in the job
	Err     error // what went wrong
}

// Error describes the failure for logs and the job's last error.
func (e *SendError) Error() string {
	if e.Kind == ErrUncertain {
		return fmt.Sprintf("%v after %d of %d bytes: %v", e.Kind, e.Written, e.Total, e.Err)
	}
	return fmt.Sprintf("%v: %v", e.Kind, e.Err)
}

// Unwrap returns the kind and the cause.
func (e *SendError) Unwrap() []error { return []error{e.Kind, e.Err} }

// unreachable wraps err as a send that delivered nothing.
func unreachable(err error) error {
	return &SendError{Kind: ErrUnreachable, Err: err}
}

// broken classifies a write that failed after written of total bytes.
func broken(written, total int, err error) error {
	if written == 0 {
		return &SendError{Kind: ErrUnreachable, Total: total, Err: err}
	}
	return &SendError{Kind: ErrUncertain, Written: written, Total: total, Err: err}
}

// Timeouts bound each step of talking to a printer. Zero fields take the defaults.
type Timeouts struct {
	Connect time.Duration // tcp: connecting (default 5 s)
	Write   time.Duration // one job, on top of its wire time on a serial line (default 30 s)
	Reply   time.Duration // waiting for a status reply (default 2 s)
	Finish  time.Duration // tcp: the printer closing its side after the job (default 10 s)
}

// DefaultTimeouts are the timeouts used when none are given.
var DefaultTimeouts = Timeouts{
	Connect: 5 * time.Second,
	Write:   30 * time.Second,
	Reply:   2 * time.Second,
	Finish:  10 * time.Second,
}

func (t Timeouts) withDefaults() Timeouts {
	if t.Connect <= 0 {
		t.Connect = DefaultTimeouts.Connect
	}
	if t.Write <= 0 {
		t.Write = DefaultTimeouts.Write
	}
	if t.Reply <= 0 {
		t.Reply = DefaultTimeouts.Reply
	}
	if t.Finish <= 0 {
		t.Finish = DefaultTimeouts.Finish
	}
	return t
}

// TransportOption adjusts a transport built by New or Open.
type TransportOption func(*transportOptions)

type transportOptions struct {
	timeouts Timeouts
}

// WithTimeouts sets the transport's timeouts.
func WithTimeouts(t Timeouts) TransportOption {
	return func(o *transportOptions) { o.timeouts = t }
}

// prober is a transport that can check, once at start-up, that its printer exists.
type prober interface {
	probe(ctx context.Context) error
}

// New returns the transport cfg names without touching the printer: devices and
// connections are opened when first needed and again after a fault. It fails only
// for a configuration that can never work. cfg must have had Defaults applied.
func New(cfg PrinterConfig, opts ...TransportOption) (Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o transportOptions
	for _, opt := range opts {
		opt(&o)
	}
	to := o.timeouts.withDefaults()
	switch cfg.Transport {
	case TransportTCP:
		return NewTCP(cfg.Address, cfg.Language, to), nil
	case TransportSerial:
		s, err := NewSerial(cfg, to)
		if err != nil {
			return nil, err
		}
		return s, nil
	case TransportUSB:
		return NewUSB(cfg.Device, cfg.Language, to), nil
	case TransportFile:
		return NewFileSpool(cfg.Dir, cfg.Language), nil
	case TransportNone:
		return None{}, nil
	}
	return nil, fmt.Errorf("printer.transport: unknown transport %q", cfg.Transport)
}

// Open is New followed by a check that the printer can be found: the device exists
// and opens, the address resolves, the spool folder is writable. A failed check
// returns an error wrapping ErrUnreachable that names the problem; the caller adds
// the station. New still gives a usable transport for a printer that is plugged in
// later.
func Open(cfg PrinterConfig, opts ...TransportOption) (Transport, error) {
	t, err := New(cfg, opts...)
	if err != nil {
		return nil, err
	}
	if p, ok := t.(prober); ok {
		ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeouts.Connect)
		defer cancel()
		if err := p.probe(ctx); err != nil {
			t.Close()
			return nil, err
		}
	}
	return t, nil
}
