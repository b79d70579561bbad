package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"serialbox/serializer"
	"serialbox/serializer/events"
)

// With the outbox off nothing is written to it; with it on every change it reports
// lands in the transaction that made it, numbered without gaps.
func TestEventOutbox(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := newService(t, db, autoStation)
	issue := func() serializer.UCI {
		t.Helper()
		got, err := svc.Issue(ctx, serializer.IssueRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return got.Device.UCI
	}
	issue() // outbox off (the default): no events, not even for the batch opened
	if n, err := db.NewestSeq(ctx); err != nil || n != 0 {
		t.Fatalf("events written with the outbox off: newest seq %d, %v", n, err)
	}

	if err := db.SetEventOutbox(ctx, true); err != nil {
		t.Fatal(err)
	}
	first := issue()
	again, err := svc.Issue(ctx, serializer.IssueRequest{Identity: "hwid:unit-7"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Issue(ctx, serializer.IssueRequest{Identity: "hwid:unit-7"}); err != nil { // the same device again: no event
		t.Fatal(err)
	}
	job, ok, err := db.NextJob(ctx, "demo")
	if err != nil || !ok {
		t.Fatalf("NextJob = %v, %v", ok, err)
	}
	for _, st := range []serializer.JobState{serializer.JobSending, serializer.JobPrinted} {
		if err := db.UpdateJob(ctx, job.ID, st, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Void(ctx, again.Device.UCI, "test", "scrapped"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(ctx, first, serializer.VerifyRequest{StationID: "demo"}, "anna"); err != nil {
		t.Fatal(err)
	}
	b, _ := db.Device(ctx, first)
	if _, err := svc.CloseBatch(ctx, b.BatchID, "anna", "end of shift"); err != nil {
		t.Fatal(err)
	}

	evs, err := db.EventsAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d: the sequence has a gap", i, ev.Seq)
		}
		if ev.Station != "demo" || ev.At.IsZero() || !json.Valid(ev.Payload) {
			t.Fatalf("event %+v: station, time or payload missing", ev)
		}
		kinds = append(kinds, ev.Kind)
	}
	want := []string{events.DeviceIssued, events.DeviceIssued, events.LabelPrinted, events.DeviceVoided, events.DeviceVerified, events.BatchClosed}
	if len(kinds) != len(want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("events %v, want %v", kinds, want)
		}
	}
	var issued struct {
		UCI   string
		Batch int64
	}
	if err := json.Unmarshal(evs[0].Payload, &issued); err != nil || issued.UCI != first.String() || issued.Batch != b.BatchID {
		t.Fatalf("device.issued payload %s: %v", evs[0].Payload, err)
	}
	if p := string(events.Payload(evs[0])); !json.Valid([]byte(p)) {
		t.Fatalf("message payload is not JSON: %s", p)
	}

	// The next batch opens automatically with the next device.
	issue()
	if evs, _ := db.EventsAfter(ctx, 6, 10); len(evs) != 2 || evs[0].Kind != events.BatchOpened || evs[1].Kind != events.DeviceIssued {
		t.Fatalf("after the batch was closed: %+v", evs)
	}

	if err := db.MarkPublished(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if seq, err := db.PublishedSeq(ctx); err != nil || seq != 5 {
		t.Fatalf("published seq = %d, %v", seq, err)
	}
	if err := db.MarkPublished(ctx, 3); err != nil { // never backwards
		t.Fatal(err)
	}
	if seq, _ := db.PublishedSeq(ctx); seq != 5 {
		t.Fatalf("published seq went back to %d", seq)
	}

	if err := db.SetEventOutbox(ctx, false); err != nil {
		t.Fatal(err)
	}
	newest, _ := db.NewestSeq(ctx)
	issue()
	if n, _ := db.NewestSeq(ctx); n != newest {
		t.Fatalf("the outbox was switched off, yet seq moved from %d to %d", newest, n)
	}
}

// BenchmarkIssueEventOutbox is BenchmarkIssue (group commit) with the event outbox off
// and on: what one device.issued row per device costs the issuing path.
func BenchmarkIssueEventOutbox(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("outbox=%v", on), func(b *testing.B) {
			db := MustOpenDB(b)
			if err := db.SetEventOutbox(context.Background(), on); err != nil {
				b.Fatal(err)
			}
			svc := newService(b, db, autoStation)
			b.SetParallelism(32) // 64 goroutines on two cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := svc.Issue(context.Background(), serializer.IssueRequest{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ucis/s")
		})
	}
}
