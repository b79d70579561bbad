package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"serialbox/serializer"
)

// fakeRegistry is an upstream device registry: it fails its first pushes, then takes
// devices and answers "exists" for ones it already has.
type fakeRegistry struct {
	mu       sync.Mutex
	failures int               // pushes still to refuse with 503
	devices  map[string]int    // UCI → pushes that carried it
	tokens   map[string]string // UCI → provisioning token pushed
	keys     map[string]int    // Idempotency-Key → pushes
	token    string
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		http.Error(w, `{"error":"bad token"}`, http.StatusUnauthorized)
		return
	}
	f.keys[r.Header.Get("Idempotency-Key")]++
	if f.failures > 0 {
		f.failures--
		http.Error(w, "registry down for maintenance", http.StatusServiceUnavailable)
		return
	}
	var body struct {
		Devices []struct{ ID, Token string } `json:"devices"`
	}
	raw, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(raw, &body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var results []map[string]string
	for _, d := range body.Devices {
		status := "ok"
		if f.devices[d.ID] > 0 {
			status = "exists"
		}
		f.devices[d.ID]++
		f.tokens[d.ID] = d.Token
		results = append(results, map[string]string{"id": d.ID, "status": status})
	}
	json.NewEncoder(w).Encode(map[string]any{"results": results})
}

func (f *fakeRegistry) snapshot() (devices, keys map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	devices, keys = map[string]int{}, map[string]int{}
	for k, v := range f.devices {
		devices[k] = v
	}
	for k, v := range f.keys {
		keys[k] = v
	}
	return devices, keys
}

// A closed batch reaches the upstream registry exactly once per device, through an
// outage and a restart of the appliance; its manifest lists every device.
func TestClosedBatchSyncsUpstreamOnce(t *testing.T) {
	reg := &fakeRegistry{failures: 2, devices: map[string]int{}, tokens: map[string]string{}, keys: map[string]int{}, token: "s3cr3t-registry-token"}
	const secret = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
	t.Setenv("TEST_PROVISIONING_SECRET", secret)
	key, _ := serializer.DecodeProvisioningSecret(secret)
	up := httptest.NewServer(reg)
	defer up.Close()
	cfgText := strings.Replace(iotoProductConfig, `model = "Eval-01"`, "model = \"Eval-01\"\nprovisioning_secret = \"${TEST_PROVISIONING_SECRET}\"", 1) + fmt.Sprintf(`
[[upstream]]
name = "cloud"
kind = "http"
url = %q
token = "${TEST_REGISTRY_TOKEN}"
auto = true
allow_http = true
chunk_size = 4
`, up.URL+"/v1/devices")
	cfg := writeConfig(t, cfgText)
	t.Setenv("TEST_REGISTRY_TOKEN", reg.token)
	data := filepath.Join(t.TempDir(), "data")

	a := startAppliance(t, data, cfg)
	var ucis []string
	for i := range 10 {
		resp, err := http.Post(a.url("/ioto/serialize"), "application/json", strings.NewReader(fmt.Sprintf(`{"hwid":"sync-%d"}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		var out struct{ ID, Token string }
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 200 || out.ID == "" {
			t.Fatalf("device %d: %d %+v", i, resp.StatusCode, out)
		}
		if out.Token != serializer.ProvisioningToken(key, out.ID) {
			t.Fatalf("device %d: token %q is not the provisioning token of %s", i, out.Token, out.ID)
		}
		ucis = append(ucis, out.ID)
	}
	postJSON(t, a, "/api/v1/batches/1/close", `{"reason":"end of run"}`)
	// Stop the appliance while the registry is still refusing, then start it again.
	time.Sleep(300 * time.Millisecond)
	a.cmd.Process.Signal(syscall.SIGTERM)
	<-a.done
	b := startAppliance(t, data, cfg)

	deadline := time.Now().Add(60 * time.Second)
	var status struct {
		Targets []struct {
			Target string
			State  string
			OK     int
		}
		Failures []any
	}
	for {
		getJSON(t, b.url("/api/v1/batches/1/sync"), &status)
		if len(status.Targets) == 1 && status.Targets[0].State == "done" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sync did not finish: %+v\n%s", status, b.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	devices, keys := reg.snapshot()
	for _, id := range ucis {
		if devices[id] != 1 {
			t.Errorf("device %s reached the registry %d times", id, devices[id])
		}
		reg.mu.Lock()
		token := reg.tokens[id]
		reg.mu.Unlock()
		if token != serializer.ProvisioningToken(key, id) {
			t.Errorf("device %s reached the registry with token %q", id, token)
		}
	}
	if len(devices) != len(ucis) || status.Targets[0].OK != len(ucis) || len(status.Failures) != 0 {
		t.Fatalf("registry holds %d devices; status %+v", len(devices), status)
	}
	retried := 0
	for _, n := range keys {
		if n > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Fatalf("no chunk was retried under its own key: %v", keys)
	}
	var batch struct{ Counts struct{ Synced int } }
	getJSON(t, b.url("/api/v1/batches/1"), &batch)
	if batch.Counts.Synced != len(ucis) {
		t.Fatalf("batch synced counter = %d, want %d", batch.Counts.Synced, len(ucis))
	}

	// The manifest over HTTP and from the command line: every device, in issue order.
	resp, err := http.Get(b.url("/api/v1/batches/1/manifest?format=csv"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkManifest(t, "HTTP", body, ucis)
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"export", "--batch", "1", "--config", cfg, "--data", data}, &out, &errOut); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errOut.String())
	}
	checkManifest(t, "export", out.Bytes(), ucis)

	// No secret from the configuration appears in the logs.
	for _, secret := range []string{reg.token, secret} {
		if strings.Contains(a.Logs()+b.Logs(), secret) {
			t.Fatal("a secret from the configuration appears in the appliance log")
		}
	}
}

func checkManifest(t *testing.T, from string, body []byte, ucis []string) {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("%s manifest: %v\n%s", from, err, body)
	}
	if len(rows) != len(ucis)+1 || strings.Join(rows[0], ",") != "uci,display,batch,product,product_name,model,station,identity,state,created,attributes" {
		t.Fatalf("%s manifest has %d rows, header %v", from, len(rows), rows[0])
	}
	for i, id := range ucis {
		if rows[i+1][0] != id || rows[i+1][3] != "TESTPRODUCT01" || rows[i+1][7] != fmt.Sprintf("hwid:sync-%d", i) {
			t.Fatalf("%s manifest row %d = %v, want %s", from, i+1, rows[i+1], id)
		}
	}
}
