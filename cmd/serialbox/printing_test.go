package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/station/stationtest"
)

// tcpPrinterConfig is iotoProductConfig with the station's printer on raw TCP at addr.
func tcpPrinterConfig(addr string) string {
	return strings.Replace(iotoProductConfig, `transport = "file"`,
		fmt.Sprintf("transport = \"tcp\"\naddress = %q\nlanguage = \"zpl\"\nstatus_interval = \"1s\"", addr), 1)
}

// labelsFor counts the whole labels at the printer that carry each UCI's QR code.
func labelsFor(p *stationtest.FakePrinter) map[string]int {
	counts := map[string]int{}
	for _, l := range p.Labels() {
		i := bytes.Index(l, []byte("^FDQA,"))
		if i < 0 {
			continue
		}
		rest := l[i+len("^FDQA,"):]
		if j := bytes.Index(rest, []byte("^FS")); j >= 0 {
			counts[string(rest[:j])]++
		}
	}
	return counts
}

type stationView struct {
	Queue   map[string]int `json:"queue"`
	Printer struct {
		State string `json:"state"`
	} `json:"printer"`
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// postJSON sends a state-changing API request as an operator with an API key.
func postJSON(t *testing.T, a *appliance, path, body string) {
	t.Helper()
	url := a.url(path)
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.operatorKey(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("POST %s: %d", url, resp.StatusCode)
	}
}

// waitQueueSettled waits until the station has no job queued or being sent.
func waitQueueSettled(t *testing.T, a *appliance, within time.Duration) stationView {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var out struct{ Stations []stationView }
		getJSON(t, a.url("/api/v1/stations"), &out)
		v := out.Stations[0]
		if v.Queue["queued"] == 0 && v.Queue["sending"] == 0 {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("label queue did not drain within %v: %v\n%s", within, v.Queue, a.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Fault run: devices are serialized while the printer is switched off and on and runs
// out of paper. Jigs are never held up by the printer, and in the end every device has
// exactly one label at the printer: jobs whose delivery broke off wait for an operator,
// who looks at the printer and confirms or resends them.
func TestPrinterFaultRun(t *testing.T) {
	devices := 200
	if testing.Short() {
		devices = 60
	}
	printer, err := stationtest.StartFakePrinter("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer printer.Close()
	a := startAppliance(t, filepath.Join(t.TempDir(), "data"), writeConfig(t, tcpPrinterConfig(printer.Addr())))

	var (
		mu      sync.Mutex
		ucis    []string
		slowest time.Duration
		next    = make(chan int, devices)
		wg      sync.WaitGroup
	)
	for i := range devices {
		next <- i
	}
	close(next)
	done := make(chan struct{})
	go func() { // the printer's bad day
		defer close(done)
		for cycle := 0; ; cycle++ {
			for _, step := range []func(){
				func() { printer.Kill() },
				func() { printer.Restart() },
				func() { printer.SetPaperOut(true) },
				func() { printer.SetPaperOut(false) },
				func() { printer.DropAfter(100 + cycle*37%200) },
			} {
				// Steps of 100 to 169 ms: a fixed step would keep the same phase
				// against the worker's 1 s status polls, and every poll could find
				// the same fault.
				select {
				case <-time.After(time.Duration(100+cycle*37%70) * time.Millisecond):
				case <-a.done:
					return
				}
				mu.Lock()
				finished := len(ucis) == devices
				mu.Unlock()
				if finished {
					return
				}
				step()
			}
		}
	}()
	client := &http.Client{Timeout: 10 * time.Second}
	for range 8 {
		wg.Go(func() {
			for i := range next {
				start := time.Now()
				id, code, err := serialize(client, a.url("/ioto/serialize"), fmt.Sprintf(`{"hwid":"fault-%d"}`, i))
				took := time.Since(start)
				if err != nil || code != 200 {
					t.Errorf("device %d: %q %d %v", i, id, code, err)
					return
				}
				mu.Lock()
				ucis = append(ucis, id)
				slowest = max(slowest, took)
				mu.Unlock()
				time.Sleep(120 * time.Millisecond) // a jig's cycle: so the load spans many printer faults
			}
		})
	}
	wg.Wait()
	<-done
	if t.Failed() {
		return
	}
	printer.DropAfter(-1)
	printer.SetPaperOut(false)
	if printer.Addr() == "" || !printerListening(printer.Addr()) {
		if err := printer.Restart(); err != nil {
			t.Fatal(err)
		}
	}

	// The operator settles every job whose delivery broke off, by looking at the printer.
	resolved := 0
	for round := 0; round < 5; round++ {
		waitQueueSettled(t, a, 90*time.Second)
		var jobs struct{ Jobs []serializer.PrintJob }
		getJSON(t, a.url("/api/v1/stations/jig1/jobs"), &jobs)
		if len(jobs.Jobs) == 0 {
			break
		}
		atPrinter := labelsFor(printer)
		for _, j := range jobs.Jobs {
			if j.State != serializer.JobUncertain {
				t.Fatalf("job %d is %s after the run: %s", j.ID, j.State, j.LastError)
			}
			action, reason := "resend", "no label came out"
			if atPrinter[j.UCI.String()] > 0 {
				action, reason = "printed", "the label is at the printer"
			}
			postJSON(t, a, fmt.Sprintf("/api/v1/jobs/%d/resolve", j.ID), fmt.Sprintf(`{"action":%q,"reason":%q}`, action, reason))
			resolved++
		}
	}
	waitQueueSettled(t, a, 90*time.Second)

	atPrinter := labelsFor(printer)
	for _, id := range ucis {
		if n := atPrinter[id]; n != 1 {
			t.Errorf("device %s has %d labels at the printer, want exactly 1", id, n)
		}
	}
	if len(atPrinter) != devices {
		t.Errorf("the printer holds labels for %d UCIs, want %d", len(atPrinter), devices)
	}
	if slowest > time.Second {
		t.Errorf("the slowest serialize answer took %v with the printer failing; want under 1 s", slowest)
	}
	st := printer.Stats()
	if st.Dropped == 0 || resolved == 0 {
		t.Errorf("the printer was never cut off mid-job (%d dropped, %d jobs for the operator): the run proved nothing", st.Dropped, resolved)
	}
	t.Logf("%d devices; printer: %d connections, %d labels, %d partial, %d dropped; %d jobs settled by the operator; slowest answer %v",
		devices, st.Connections, st.Labels, st.Partial, st.Dropped, resolved, slowest)
}

func printerListening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Labels queued while the printer is away survive a restart of the appliance and
// come out in the order the devices were serialized.
func TestQueuedLabelsResumeInOrderAfterRestart(t *testing.T) {
	printer := stationtest.NewFakePrinter()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // reserve an address the printer will use later
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	data := filepath.Join(t.TempDir(), "data")
	cfg := writeConfig(t, tcpPrinterConfig(addr))

	a := startAppliance(t, data, cfg)
	var ucis []string
	for i := range 20 {
		id, code, err := serialize(http.DefaultClient, a.url("/ioto/serialize"), fmt.Sprintf(`{"hwid":"order-%d"}`, i))
		if err != nil || code != 200 {
			t.Fatalf("device %d: %d %v", i, code, err)
		}
		ucis = append(ucis, id)
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	<-a.done

	if err := printer.Start(addr); err != nil {
		t.Fatal(err)
	}
	defer printer.Close()
	b := startAppliance(t, data, cfg)
	waitQueueSettled(t, b, 60*time.Second)
	var got []string
	for _, l := range printer.Labels() {
		for _, id := range ucis {
			if bytes.Contains(l, []byte("QA,"+id+"^FS")) {
				got = append(got, id)
			}
		}
	}
	if strings.Join(got, ",") != strings.Join(ucis, ",") {
		t.Fatalf("labels came out as\n%v\nwant\n%v", got, ucis)
	}
}
