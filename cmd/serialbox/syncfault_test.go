package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/store"
)

// faultyRegistry is an upstream registry with a bad network: it answers 500 to 30 %
// of pushes, answers some only after the client's timeout, and drops the connection
// after recording some. It deduplicates by idempotency key and by device id, as a
// careful registry does, and keeps each device once.
type faultyRegistry struct {
	mu      sync.Mutex
	rng     *rand.Rand
	held    map[string]bool             // devices registered
	replies map[string][]map[string]any // results by idempotency key
	pushes  int
	faults  map[string]int
}

func (f *faultyRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.pushes++
	roll := f.rng.Float64()
	if roll < 0.3 {
		f.faults["500"]++
		f.mu.Unlock()
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	results, replay := f.replies[key]
	if !replay {
		var body struct{ Devices []struct{ ID string } }
		if err := json.Unmarshal(raw, &body); err != nil {
			f.mu.Unlock()
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, d := range body.Devices {
			status := "ok"
			if f.held[d.ID] {
				status = "exists"
			}
			f.held[d.ID] = true
			results = append(results, map[string]any{"id": d.ID, "status": status})
		}
		f.replies[key] = results
	}
	f.mu.Unlock()
	switch {
	case roll < 0.4: // recorded, but the answer comes after the client gave up
		f.count("slow")
		time.Sleep(1500 * time.Millisecond)
	case roll < 0.5: // recorded, then the connection drops: the client cannot know
		f.count("dropped")
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	json.NewEncoder(w).Encode(map[string]any{"results": results})
}

func (f *faultyRegistry) count(what string) {
	f.mu.Lock()
	f.faults[what]++
	f.mu.Unlock()
}

// A 10,000-device batch syncs through a faulty upstream while the appliance is killed
// twice mid-sync: the upstream ends with every device once, and the batch shows all
// synced.
func TestSyncThroughFaultsAndRestarts(t *testing.T) {
	devices := 10_000
	if testing.Short() {
		devices = 2_000
	}
	reg := &faultyRegistry{rng: rand.New(rand.NewPCG(7, 11)), held: map[string]bool{}, replies: map[string][]map[string]any{}, faults: map[string]int{}}
	up := httptest.NewServer(reg)
	defer up.Close()
	cfgPath := writeConfig(t, iotoProductConfig+fmt.Sprintf(`
[[upstream]]
name = "cloud"
kind = "http"
url = %q
auto = true
allow_http = true
chunk_size = 500
timeout = "1s"
`, up.URL))
	data := filepath.Join(t.TempDir(), "data")

	// The batch: pre-generated and closed, which queues it for the auto target.
	ctx := context.Background()
	cfg, err := loadConfig(cfgPath, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, filepath.Join(data, "serialbox.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc := serializer.NewService(db, nil)
	if err := svc.SetCatalog(ctx, cfg.Catalog()); err != nil {
		t.Fatal(err)
	}
	svc.SetAutoSync([]string{"cloud"}, nil)
	b, err := svc.OpenBatch(ctx, serializer.OpenBatchRequest{StationID: "jig1"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Pregenerate(ctx, b.ID, devices, serializer.PregenOutside, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CloseBatch(ctx, b.ID, "test", "run complete"); err != nil {
		t.Fatal(err)
	}
	var want []string
	db.EachDevice(ctx, b.ID, func(d serializer.Device) error { want = append(want, d.UCI.String()); return nil })
	db.Close()

	for range 2 {
		a := startAppliance(t, data, cfgPath)
		time.Sleep(1500 * time.Millisecond)
		a.cmd.Process.Signal(syscall.SIGKILL)
		<-a.done
	}
	a := startAppliance(t, data, cfgPath)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var status struct {
			Targets []struct {
				State            string
				OK, Exists       int
				Errors           int
				Pending, Sending int
			}
		}
		getJSON(t, a.url(fmt.Sprintf("/api/v1/batches/%d/sync", b.ID)), &status)
		if len(status.Targets) == 1 && status.Targets[0].State == "done" {
			if s := status.Targets[0]; s.Errors != 0 || s.OK+s.Exists != devices {
				t.Fatalf("sync finished with %+v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sync did not finish in 5 minutes: %+v\n%s", status, a.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if len(reg.held) != len(want) {
		t.Fatalf("the registry holds %d devices, want %d", len(reg.held), len(want))
	}
	for _, id := range want {
		if !reg.held[id] {
			t.Fatalf("device %s never reached the registry", id)
		}
	}
	var batch struct{ Counts struct{ Synced int } }
	getJSON(t, a.url(fmt.Sprintf("/api/v1/batches/%d", b.ID)), &batch)
	if batch.Counts.Synced != devices {
		t.Fatalf("batch shows %d synced, want %d", batch.Counts.Synced, devices)
	}
	if reg.faults["500"] == 0 || reg.faults["slow"] == 0 || reg.faults["dropped"] == 0 {
		t.Fatalf("not every fault happened: %v", reg.faults)
	}
	t.Logf("%d devices through %d pushes with faults %v and two kills", devices, reg.pushes, reg.faults)
}
