package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"serialbox/serializer/events"
)

// outbox is an in-memory Outbox.
type outbox struct {
	mu        sync.Mutex
	evs       []events.Event
	published int64
}

var _ events.Outbox = (*outbox)(nil)

func (o *outbox) add(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for range n {
		seq := int64(len(o.evs) + 1)
		o.evs = append(o.evs, events.Event{Seq: seq, At: time.UnixMilli(seq).UTC(), Station: "jig1", Kind: events.DeviceIssued, Payload: json.RawMessage(`{"uci":"X"}`)})
	}
}

func (o *outbox) PublishedSeq(context.Context) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.published, nil
}

func (o *outbox) NewestSeq(context.Context) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return int64(len(o.evs)), nil
}

func (o *outbox) EventsAfter(_ context.Context, seq int64, limit int) ([]events.Event, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	end := min(int(seq)+limit, len(o.evs))
	return slices.Clone(o.evs[seq:end]), nil
}

func (o *outbox) MarkPublished(_ context.Context, seq int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.published = max(o.published, seq)
	return nil
}

// broker acknowledges messages until failAfter of them went through, then drops the
// rest of that call; it can be switched off.
type broker struct {
	mu        sync.Mutex
	up        bool
	failAfter int // acknowledge this many more, then fail once; -1: never fail
	got       []int64
}

func (b *broker) Publish(_ context.Context, msgs []events.Message) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, m := range msgs {
		if b.failAfter == 0 {
			b.failAfter = -1
			return i, errors.New("connection reset")
		}
		if b.failAfter > 0 {
			b.failAfter--
		}
		var p struct{ Seq int64 }
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			return i, err
		}
		b.got = append(b.got, p.Seq)
	}
	return len(msgs), nil
}

func (b *broker) Connected() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.up
}

func (b *broker) received() []int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.got)
}

func waitPublished(t *testing.T, o *outbox, seq int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if s, _ := o.PublishedSeq(context.Background()); s >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("published seq did not reach %d", seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Events go out in order; a batch cut off part-way is resumed from the first event not
// acknowledged; while the broker is away nothing is marked, and a new publisher (a
// restart) resumes from the outbox's mark.
func TestPublisherOrderAndResume(t *testing.T) {
	o := &outbox{}
	b := &broker{up: true, failAfter: 7}
	p := &events.Publisher{Outbox: o, Broker: b, Prefix: "factory/line1", Batch: 5, Idle: 5 * time.Millisecond}
	p.Start()
	o.add(20)
	waitPublished(t, o, 20)

	b.mu.Lock()
	b.up = false
	b.mu.Unlock()
	o.add(10)
	time.Sleep(50 * time.Millisecond)
	if s := p.Status(); s.Connected || s.Published != 20 || s.Backlog() != 10 {
		t.Fatalf("broker away: status %+v", s)
	}
	p.Close()

	b.mu.Lock()
	b.up = true
	b.mu.Unlock()
	p2 := &events.Publisher{Outbox: o, Broker: b, Prefix: "factory/line1", Batch: 5, Idle: 5 * time.Millisecond}
	p2.Start()
	defer p2.Close()
	waitPublished(t, o, 30)

	want := make([]int64, 30)
	for i := range want {
		want[i] = int64(i + 1)
	}
	if got := b.received(); !slices.Equal(got, want) {
		t.Fatalf("broker received %v, want 1..30 once each in order", got)
	}
}

func TestTopicAndPayload(t *testing.T) {
	ev := events.Event{Seq: 7, At: time.Date(2026, 11, 21, 14, 30, 0, 125e6, time.UTC), Station: "line1-jig1", Kind: events.LabelPrinted,
		Payload: json.RawMessage(`{"job":3,"uci":"58KPP23VZ4Y298SM"}`)}
	if got := events.Topic("factory/line1/", ev); got != "factory/line1/line1-jig1/label/printed" {
		t.Fatalf("topic %q", got)
	}
	want := `{"seq":7,"kind":"label.printed","at":"2026-11-21T14:30:00.125Z","station":"line1-jig1","job":3,"uci":"58KPP23VZ4Y298SM"}`
	if got := string(events.Payload(ev)); got != want {
		t.Fatalf("payload\n%s\nwant\n%s", got, want)
	}
	ev.Payload = json.RawMessage(`{}`)
	if got := string(events.Payload(ev)); !json.Valid([]byte(got)) {
		t.Fatalf("payload of an event without fields: %s", got)
	}
}
