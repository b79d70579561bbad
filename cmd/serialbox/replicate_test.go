package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// requireTool finds a program the test runs against. Without it the test is skipped
// on a developer's machine and fails under CI, which installs it (.ci/run).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is needed (.ci/run installs it): %v", name, err)
	}
	t.Skipf("%s not installed (.ci/run installs it)", name)
	return ""
}

const replicaProductConfig = `
[[products]]
id = "TESTPRODUCT01"
name = "Serial Eval"
[[stations]]
id = "jig1"
product = "TESTPRODUCT01"
auto_batch = true
[stations.printer]
transport = "none"
`

// answered is a UCI and when its 200 arrived.
type answered struct {
	uci string
	at  time.Time
}

// issueUntilKilled runs jigs against the appliance until at least n UCIs were
// answered and the newest answer is settle old, then kills the appliance with
// SIGKILL while the jigs keep asking. It returns every answered UCI and the time of
// the kill.
func issueUntilKilled(t *testing.T, a *appliance, jigs, n int, settle time.Duration) ([]answered, time.Time) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: jigs}}
	var (
		mu   sync.Mutex
		got  []answered
		wg   sync.WaitGroup
		stop = make(chan struct{})
	)
	reached := make(chan struct{})
	var once sync.Once
	for j := range jigs {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id, code, err := serialize(client, a.url("/ioto/serialize"), fmt.Sprintf(`{"product":"TESTPRODUCT01","hwid":"j%d-%d"}`, j, i))
				if err != nil || code != 200 {
					continue
				}
				mu.Lock()
				got = append(got, answered{id, time.Now()})
				if len(got) >= n {
					once.Do(func() { close(reached) })
				}
				mu.Unlock()
				time.Sleep(2 * time.Millisecond) // a jig's pace, well above the line's
			}
		})
	}
	select {
	case <-reached:
	case <-time.After(60 * time.Second):
		t.Fatalf("only %d UCIs answered in 60 s", len(got))
	}
	time.Sleep(settle)
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-a.done
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return append([]answered(nil), got...), killed
}

// checkRestored opens the restored database and checks that every UCI answered
// before cutoff is in it; it returns how many of the later ones made it too.
func checkRestored(t *testing.T, dbPath string, got []answered, cutoff time.Time) (late, lateFound int) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("restored database: integrity_check = %q, %v", check, err)
	}
	missing, early := 0, 0
	for _, g := range got {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM devices d JOIN print_jobs j ON j.uci = d.uci WHERE d.uci = ?`, g.uci).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if g.at.Before(cutoff) {
			early++
			if n != 1 {
				missing++
				if missing <= 5 {
					t.Errorf("UCI %s answered %v before the kill is not in the restored database", g.uci, cutoff.Sub(g.at))
				}
			}
			continue
		}
		late++
		if n == 1 {
			lateFound++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d UCIs answered before the cut-off are missing from the replica", missing, early)
	}
	if early < 1000 {
		t.Fatalf("only %d UCIs were answered before the cut-off", early)
	}
	return late, lateFound
}

// replicaRoundTrip is the proof of [replicate]: 8 jigs serialize 1,000 UCIs, the
// appliance is killed, its data folder deleted, and `serialbox restore
// --from-replica` builds the database from the replica alone.
func replicaRoundTrip(t *testing.T, replicateBlock, replicaURL string) (logs string) {
	requireTool(t, "litestream")
	const syncInterval = time.Second
	cfg := writeConfig(t, replicaProductConfig+replicateBlock)
	data := filepath.Join(t.TempDir(), "data")
	a := startAppliance(t, data, cfg)

	got, killed := issueUntilKilled(t, a, 8, 1000, syncInterval+1500*time.Millisecond)
	logs = a.Logs()
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}

	restored := filepath.Join(t.TempDir(), "newbox")
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run(context.Background(), []string{"restore", "--from-replica", replicaURL, "--config", cfg, "--data", restored}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("restore --from-replica: exit %d\n%s%s\nappliance log:\n%s", code, stdout.String(), stderr.String(), logs)
	}
	took := time.Since(start)
	late, lateFound := checkRestored(t, filepath.Join(restored, "serialbox.db"), got, killed.Add(-syncInterval-time.Second))
	t.Logf("%d UCIs answered; all %d answered more than %v before the kill are in the replica; %d of the %d later ones too; restore took %v",
		len(got), len(got)-late, syncInterval+time.Second, lateFound, late, took.Round(time.Millisecond))

	// The restored box serves, and replicates on.
	b := startAppliance(t, restored, cfg)
	if _, code, err := serialize(http.DefaultClient, b.url("/ioto/serialize"), `{"product":"TESTPRODUCT01","hwid":"j0-0"}`); code != 200 {
		t.Fatalf("the restored box does not serve: %d %v", code, err)
	}
	waitReplicaLag(t, b, 5*time.Second)
	conf, err := os.ReadFile(filepath.Join(restored, "litestream.yml"))
	if err != nil {
		t.Fatal(err)
	}
	return logs + stdout.String() + stderr.String() + b.Logs() + string(conf)
}

// waitReplicaLag waits until /readyz reports the replica running and at most max behind.
func waitReplicaLag(t *testing.T, a *appliance, most time.Duration) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(a.url("/readyz"))
		if err == nil {
			var r struct {
				Replica struct {
					Running bool    `json:"running"`
					Lag     float64 `json:"lag_seconds"`
				} `json:"replica"`
			}
			json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			last = fmt.Sprintf("%+v", r)
			if r.Replica.Running && r.Replica.Lag <= most.Seconds() {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the replica did not catch up: /readyz %s\n%s", last, a.Logs())
}

func TestReplicaFileRestoreAfterKill(t *testing.T) {
	replica := filepath.Join(t.TempDir(), "nas", "serialbox")
	url := "file://" + replica
	replicaRoundTrip(t, fmt.Sprintf("[replicate]\nurl = %q\nsync_interval = \"1s\"\n", url), url)
}

// The same against an S3-compatible server (gofakes3, in this process), with the keys
// from the environment; neither key appears in any log line nor in Litestream's
// configuration file.
func TestReplicaS3RestoreAfterKill(t *testing.T) {
	backend := s3mem.New()
	faker := gofakes3.New(backend)
	srv := httptest.NewServer(faker.Server())
	defer srv.Close()
	if err := backend.CreateBucket("serialbox"); err != nil {
		t.Fatal(err)
	}
	const keyID, secret = "line1-key-7c21", "line1-secret-9f04be"
	t.Setenv("T_S3_KEY", keyID)
	t.Setenv("T_S3_SECRET", secret)
	block := fmt.Sprintf(`[replicate]
url = "s3://serialbox/line1"
sync_interval = "1s"
endpoint = %q
region = "us-east-1"
access_key_id = "${T_S3_KEY}"
secret_access_key = "${T_S3_SECRET}"
force_path_style = true
`, srv.URL)
	logs := replicaRoundTrip(t, block, "s3://serialbox/line1")
	for _, s := range []string{keyID, secret} {
		if strings.Contains(logs, s) {
			t.Fatalf("a replica key is in the log or in litestream.yml: %s", grepLines(logs, s))
		}
	}
	objects, err := backend.ListBucket("serialbox", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil || len(objects.Contents) == 0 {
		t.Fatalf("nothing in the bucket: %v", err)
	}
}

// A replica that cannot be reached shows as behind: in /readyz, /metrics and the banner.
func TestReplicaLagIsShown(t *testing.T) {
	requireTool(t, "litestream")
	// An S3 endpoint nobody listens on.
	block := "[replicate]\nurl = \"s3://serialbox/line1\"\nsync_interval = \"1s\"\nlag_limit = \"2s\"\nendpoint = \"http://127.0.0.1:1\"\nregion = \"us-east-1\"\nforce_path_style = true\n"
	a := startAppliance(t, filepath.Join(t.TempDir(), "data"), writeConfig(t, replicaProductConfig+block))
	if _, code, err := serialize(http.DefaultClient, a.url("/ioto/serialize"), `{"product":"TESTPRODUCT01"}`); code != 200 {
		t.Fatalf("serialize: %d %v", code, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		body := get(t, a.url("/readyz"))
		var r struct {
			Replica struct {
				Lag    float64 `json:"lag_seconds"`
				Behind bool    `json:"behind"`
			} `json:"replica"`
		}
		json.Unmarshal([]byte(body), &r)
		if r.Replica.Behind && r.Replica.Lag > 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("an unreachable replica is not reported behind: %s", body)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if m := get(t, a.url("/metrics")); !strings.Contains(m, "serialbox_replica_lag_seconds ") || !strings.Contains(m, "serialbox_replica_running 1") {
		t.Fatalf("/metrics lacks the replica:\n%s", grepLines(m, "serialbox_replica"))
	}
	if page := get(t, a.url("/")); !strings.Contains(page, "Replica behind") || !strings.Contains(page, `data-offsite="replica"`) {
		t.Fatalf("the line view shows no replica banner")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return b.String()
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// restore --from-replica refuses while an appliance serves the data folder.
func TestRestoreFromReplicaRefusedWhileServing(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	startAppliance(t, data, writeConfig(t, replicaProductConfig))
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"restore", "--from-replica", "file:///nonexistent/replica", "--data", data}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "refusing to restore") {
		t.Fatalf("restore while serving: exit %d, %s", code, stderr.String())
	}
}
