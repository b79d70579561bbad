package station_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/station"
)

// TestWorkerChaos prints 200 labels while the printer is repeatedly switched off
// and on (connections reset mid-job included) and runs out of paper. No label may
// come out twice or out of order; every job ends printed, with exactly one label
// at the printer, or uncertain, with at most one.
func TestWorkerChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run")
	}
	p := startPrinter(t)
	p.SetReadDelay(3 * time.Millisecond) // a few milliseconds a job, so faults land mid-run
	q := newQueue()
	q.add(stationID, 200)
	w := startWorker(t, q, render, tcpTransport(p.Addr()),
		station.WithBackoff(func(int) time.Duration { return 5 * time.Millisecond }),
		station.WithStatusInterval(20*time.Millisecond))

	stop := make(chan struct{})
	chaosDone := make(chan struct{})
	kills, paperOuts := 0, 0
	go func() {
		defer close(chaosDone)
		rng := rand.New(rand.NewPCG(1, 2))
		pause := func(lo, hi int) bool {
			select {
			case <-stop:
				return false
			case <-time.After(time.Duration(lo+rng.IntN(hi-lo)) * time.Millisecond):
				return true
			}
		}
		for pause(5, 40) {
			if rng.IntN(3) == 0 {
				paperOuts++
				p.SetPaperOut(true)
				pause(20, 80)
				p.SetPaperOut(false)
				continue
			}
			kills++
			p.Kill()
			pause(10, 60)
			if err := p.Restart(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	q.waitFor(t, 20*time.Second, "all jobs settled", settled)
	close(stop)
	<-chaosDone
	if err := p.Restart(); err != nil { // make sure it is up for nothing more to come
		t.Fatal(err)
	}

	count := labelCounts(t, p.Labels())
	printed, uncertain := 0, 0
	for id := int64(1); id <= 200; id++ {
		j := q.job(id)
		switch j.State {
		case serializer.JobPrinted:
			printed++
			if count[id] != 1 {
				t.Errorf("printed job %d has %d labels at the printer", id, count[id])
			}
		case serializer.JobUncertain:
			uncertain++
			if count[id] > 1 {
				t.Errorf("uncertain job %d has %d labels", id, count[id])
			}
		default:
			t.Errorf("job %d ended %s", id, j.State)
		}
	}
	s := w.Stats()
	t.Logf("%d kills, %d paper-outs: %d printed, %d uncertain, %d retries; printer stats %+v",
		kills, paperOuts, printed, uncertain, s.Retries, p.Stats())
	if s.Printed != uint64(printed) || s.Uncertain != uint64(uncertain) {
		t.Errorf("worker stats %+v disagree with the queue: %d printed, %d uncertain", s, printed, uncertain)
	}
}
