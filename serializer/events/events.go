// Package events publishes the line's events from the durable event outbox to the
// factory's message broker: in sequence order, each acknowledged by the broker before
// the outbox is told so, so that a broker outage or a restart loses none and resends
// from the first one not acknowledged. Consumers drop repeats by the sequence number.
//
// The outbox (store) and the broker client (an MQTT adapter in cmd) are interfaces
// here; the package imports nothing of the appliance's but its loop scaffolding.
package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"serialbox/serializer/loop"
)

// Event kinds, as written in the outbox and sent in each message's "kind".
const (
	DeviceIssued   = "device.issued"
	DeviceVerified = "device.verified"
	DeviceVoided   = "device.voided"
	LabelPrinted   = "label.printed"
	LabelUncertain = "label.uncertain"
	LabelFailed    = "label.failed"
	BatchOpened    = "batch.opened"
	BatchClosed    = "batch.closed"
	BatchSynced    = "batch.synced"
)

// Event is one row of the outbox: Seq numbers the appliance's events without gaps,
// Payload is a JSON object with the event's own fields.
type Event struct {
	Seq     int64
	At      time.Time
	Station string
	Kind    string
	Payload json.RawMessage
}

// Outbox is the durable store of events.
type Outbox interface {
	// PublishedSeq returns the newest event the broker acknowledged.
	PublishedSeq(ctx context.Context) (int64, error)
	// EventsAfter returns up to limit events after seq, oldest first.
	EventsAfter(ctx context.Context, seq int64, limit int) ([]Event, error)
	// MarkPublished records that every event up to seq was acknowledged.
	MarkPublished(ctx context.Context, seq int64) error
	// NewestSeq returns the newest event written.
	NewestSeq(ctx context.Context) (int64, error)
}

// Message is one message for the broker.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// Broker sends messages at least once (MQTT QoS 1).
type Broker interface {
	// Publish sends the messages in order and returns how many of them, from the
	// first, the broker acknowledged, with the error that stopped the rest.
	Publish(ctx context.Context, msgs []Message) (int, error)
	// Connected reports whether the broker connection is up.
	Connected() bool
}

// Status is what the operator page and /metrics show of the publisher.
type Status struct {
	Connected bool      // the broker connection is up
	Published int64     // newest event the broker acknowledged
	Newest    int64     // newest event in the outbox
	LastError string    // the last failure, "" after a success
	LastSent  time.Time // when the broker last acknowledged an event
}

// Backlog is the number of events not yet acknowledged by the broker.
func (s Status) Backlog() int64 { return max(s.Newest-s.Published, 0) }

// Publisher drains the outbox to the broker.
type Publisher struct {
	Outbox Outbox
	Broker Broker
	Prefix string // topic prefix, e.g. "factory/line1"
	Logger *slog.Logger
	Clock  loop.Clock
	// Batch is the most events sent before the outbox is told; 0 = 1000. Each telling
	// is a write transaction on the appliance's one writer, beside the jigs' commits,
	// so a busy line is told about in large steps.
	Batch int
	// Idle is the wait between looks at an outbox found empty; 0 = 250 ms.
	Idle time.Duration

	wake   loop.Waker
	runner loop.Runner
	fails  loop.FailureLog

	mu     sync.Mutex
	status Status
	cursor int64 // newest event acknowledged, once loaded
	loaded bool
}

// Start runs the publisher in the background until Close.
func (p *Publisher) Start() {
	if p.Batch <= 0 {
		p.Batch = 1000
	}
	if p.Idle <= 0 {
		p.Idle = 250 * time.Millisecond
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	p.wake = loop.NewWaker()
	p.fails = loop.FailureLog{Log: p.Logger, Every: time.Minute}
	backoff := loop.Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second}
	failures := 0
	p.runner.Start(func(ctx context.Context, stop <-chan struct{}) {
		loop.Loop{Clock: p.Clock, Wake: p.wake, Step: func(ctx context.Context) time.Duration {
			sent, err := p.step(ctx)
			switch {
			case errors.Is(err, errNotConnected):
				// Not a failure of ours: the broker client reconnects and says so.
				return p.Idle
			case err != nil:
				failures++
				p.fails.Error(p.now(), failures, "publishing events failed", "err", err)
				return backoff.Wait(failures)
			case sent:
				if failures > 0 {
					p.Logger.Info("publishing events again", "after_failures", failures)
				}
				failures = 0
				p.fails.Reset()
				return 0
			default:
				return p.Idle
			}
		}}.Run(ctx, stop)
	})
}

// Wake makes the publisher look at the outbox now.
func (p *Publisher) Wake() { p.wake.Wake() }

// Close stops the publisher and waits for it.
func (p *Publisher) Close() { p.runner.Close() }

// Status returns the publisher's state.
func (p *Publisher) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.status
	s.Connected = p.Broker.Connected()
	return s
}

func (p *Publisher) now() time.Time {
	if p.Clock == nil {
		return time.Now()
	}
	return p.Clock.Now()
}

var errNotConnected = errors.New("not connected to the broker")

// step sends the next events; sent reports whether any went out.
func (p *Publisher) step(ctx context.Context) (sent bool, err error) {
	defer func() {
		p.mu.Lock()
		if err != nil {
			p.status.LastError = err.Error()
		} else if sent {
			p.status.LastError = ""
		}
		p.mu.Unlock()
	}()
	if !p.loaded {
		seq, err := p.Outbox.PublishedSeq(ctx)
		if err != nil {
			return false, err
		}
		p.cursor, p.loaded = seq, true
		p.setStatus(func(s *Status) { s.Published = seq })
	}
	newest, err := p.Outbox.NewestSeq(ctx)
	if err != nil {
		return false, err
	}
	p.setStatus(func(s *Status) { s.Newest = newest })
	if newest <= p.cursor {
		return false, nil
	}
	if !p.Broker.Connected() {
		return false, errNotConnected
	}
	evs, err := p.Outbox.EventsAfter(ctx, p.cursor, p.Batch)
	if err != nil || len(evs) == 0 {
		return false, err
	}
	msgs := make([]Message, len(evs))
	for i, ev := range evs {
		msgs[i] = Message{Topic: Topic(p.Prefix, ev), Payload: Payload(ev)}
	}
	n, perr := p.Broker.Publish(ctx, msgs)
	if n > 0 {
		upto := evs[n-1].Seq
		if err := p.Outbox.MarkPublished(ctx, upto); err != nil {
			return false, err
		}
		p.cursor = upto
		at := p.now()
		p.setStatus(func(s *Status) { s.Published, s.LastSent = upto, at })
	}
	return n > 0, perr
}

func (p *Publisher) setStatus(f func(*Status)) {
	p.mu.Lock()
	f(&p.status)
	p.mu.Unlock()
}

// Topic is where an event goes: PREFIX/STATION/KIND with the kind's dots as levels,
// e.g. factory/line1/line1-jig1/device/issued.
func Topic(prefix string, ev Event) string {
	t := ev.Station + "/" + strings.ReplaceAll(ev.Kind, ".", "/")
	if prefix == "" {
		return t
	}
	return strings.TrimSuffix(prefix, "/") + "/" + t
}

// Payload is an event's message: its seq, kind, time (RFC 3339, UTC, milliseconds)
// and station, followed by the event's own fields.
func Payload(ev Event) []byte {
	head, _ := json.Marshal(struct {
		Seq     int64  `json:"seq"`
		Kind    string `json:"kind"`
		At      string `json:"at"`
		Station string `json:"station"`
	}{ev.Seq, ev.Kind, ev.At.UTC().Format("2006-01-02T15:04:05.000Z07:00"), ev.Station})
	body := bytes.TrimSpace(ev.Payload)
	if len(body) < 2 || body[0] != '{' {
		return head
	}
	inner := bytes.TrimSpace(body[1 : len(body)-1])
	if len(inner) == 0 {
		return head
	}
	out := make([]byte, 0, len(head)+len(inner)+1)
	out = append(out, head[:len(head)-1]...)
	out = append(out, ',')
	out = append(out, inner...)
	return append(out, '}')
}
