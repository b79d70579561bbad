package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/station/stationtest"
)

// jigLoad is jigs asking for UCIs in the background.
type jigLoad struct {
	mu       sync.Mutex
	ucis     []string // answered
	failures []string // anything but a 200 with an id
	done     chan struct{}
	wg       sync.WaitGroup
}

// startJigs has n jigs post body to url again and again, pause apart, until stop.
func startJigs(url, body string, n int, pause time.Duration) *jigLoad {
	l := &jigLoad{done: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	for range n {
		l.wg.Go(func() {
			for {
				select {
				case <-l.done:
					return
				case <-time.After(pause):
				}
				id, code, err := serialize(client, url, body)
				l.mu.Lock()
				if err != nil || code != 200 || id == "" {
					l.failures = append(l.failures, fmt.Sprintf("%q %d %v", id, code, err))
				} else {
					l.ucis = append(l.ucis, id)
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

// stop ends the load and returns the UCIs answered and the requests that failed.
func (l *jigLoad) stop() (ucis, failures []string) {
	close(l.done)
	l.wg.Wait()
	return l.ucis, l.failures
}

// labelInFlight waits until the station is sending a label and returns that job.
func labelInFlight(t *testing.T, a *appliance, stationID string, within time.Duration) serializer.PrintJob {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var out struct{ Jobs []serializer.PrintJob }
		getJSON(t, a.url("/api/v1/stations/"+stationID+"/jobs"), &out)
		for _, j := range out.Jobs {
			if j.State == serializer.JobSending {
				return j
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no label was being sent within %v: %+v\n%s", within, out.Jobs, a.Logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deviceJobs returns the label jobs of a device.
func deviceJobs(t *testing.T, a *appliance, uci serializer.UCI) []serializer.PrintJob {
	t.Helper()
	var out struct {
		LabelJobs []serializer.PrintJob `json:"label_jobs"`
	}
	getJSON(t, a.url("/api/v1/devices/"+uci.String()), &out)
	return out.LabelJobs
}

// Reloads while jigs are served and a slow printer is taking a label: a product
// (label) change reaches the worker in place, and a printer change hands the station
// over to a new worker only after the old one delivered its label. The labels in
// flight at each reload end printed, never uncertain, and every device has exactly
// one label at the printer.
func TestReloadLetsTheLabelInFlightFinish(t *testing.T) {
	printer, err := stationtest.StartFakePrinter("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer printer.Close()
	printer.SetReadDelay(150 * time.Millisecond) // every label takes a few hundred ms
	base := tcpPrinterConfig(printer.Addr())
	path := writeConfig(t, base)
	a := startAppliance(t, filepath.Join(t.TempDir(), "data"), path)

	load := startJigs(a.url("/ioto/serialize"), `{"product":"TESTPRODUCT01"}`, 2, 150*time.Millisecond)

	reload := func(text, detail string) serializer.PrintJob {
		t.Helper()
		inFlight := labelInFlight(t, a, "jig1", 15*time.Second)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		postJSON(t, a, "/api/v1/config/reload", `{}`)
		var audit struct {
			Audit []struct{ Action, Detail string }
		}
		getJSON(t, a.url("/api/v1/audit?subject=config"), &audit)
		if len(audit.Audit) == 0 || !strings.Contains(audit.Audit[0].Detail, detail) {
			t.Fatalf("reload audited as %+v, want %q", audit.Audit, detail)
		}
		return inFlight
	}
	// A product change: the label templates change, the printer does not.
	renamed := strings.Replace(base, `name = "Serial Eval"`, `name = "Serial Eval II"`, 1)
	first := reload(renamed, "labels of station jig1")
	// A printer change: the station's worker is replaced.
	second := reload(strings.Replace(renamed, `status_interval = "1s"`, `status_interval = "2s"`, 1), "station jig1")
	time.Sleep(300 * time.Millisecond)
	ucis, failures := load.stop()

	waitQueueSettled(t, a, 60*time.Second)
	for _, j := range []serializer.PrintJob{first, second} {
		jobs := deviceJobs(t, a, *j.UCI)
		if len(jobs) != 1 || jobs[0].State != serializer.JobPrinted || jobs[0].Attempts != 1 {
			t.Errorf("label job %d, in flight at a reload: %+v; want printed after one attempt", j.ID, jobs)
		}
	}
	var left struct{ Jobs []serializer.PrintJob }
	getJSON(t, a.url("/api/v1/stations/jig1/jobs"), &left)
	if len(left.Jobs) > 0 {
		t.Errorf("label jobs waiting for an operator after the reloads: %+v", left.Jobs)
	}
	if len(failures) > 0 {
		t.Errorf("%d jig requests failed during the reloads: %v", len(failures), failures[:min(len(failures), 5)])
	}
	counts := labelsFor(printer)
	for _, id := range ucis {
		if counts[id] != 1 {
			t.Errorf("device %s has %d labels at the printer, want 1", id, counts[id])
		}
	}
	if strings.Contains(a.Logs(), "marked uncertain") {
		t.Errorf("a label was marked uncertain:\n%s", a.Logs())
	}
	t.Logf("%d devices served through two reloads with a label in flight, each printed once", len(ucis))
}
