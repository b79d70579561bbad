package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"serialbox/station"
	"serialbox/store"
)

// A backup taken while jigs are being served restores completely: every UCI
// acknowledged before the backup started is in the restored database. Restoring over
// the running appliance's database is refused.
func TestBackupUnderLoadRestores(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	a := startAppliance(t, data, writeConfig(t, iotoProductConfig))

	var (
		mu      sync.Mutex
		acked   []string
		slowest time.Duration
		during  bool
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for j := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				id, code, err := serialize(client, a.url("/ioto/serialize"), fmt.Sprintf(`{"hwid":"b-%d-%d"}`, j, i))
				took := time.Since(start)
				if err != nil || code != 200 {
					t.Errorf("serialize: %q %d %v", id, code, err)
					return
				}
				mu.Lock()
				acked = append(acked, id)
				if during {
					slowest = max(slowest, took)
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Second)
	mu.Lock()
	before := append([]string(nil), acked...)
	during = true
	mu.Unlock()
	backup := filepath.Join(dir, "backup.db")
	out, err := exec.Command(binary, "backup", "--data", data, "--out", backup).CombinedOutput()
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	mu.Lock()
	during = false
	mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(before) < 100 {
		t.Fatalf("only %d UCIs before the backup: the load did not run", len(before))
	}

	// Restoring over the running appliance is refused.
	out, err = exec.Command(binary, "restore", "--data", data, "--from", backup).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another serialbox is serving") {
		t.Fatalf("restore over a running appliance: %v\n%s", err, out)
	}

	restored := filepath.Join(dir, "restored")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"restore", "--data", restored, "--from", backup}, &stdout, &stderr); code != 0 {
		t.Fatalf("restore: exit %d: %s", code, stderr.String())
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(restored, "serialbox.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	missing := 0
	for _, id := range before {
		var n int
		db.QueryRow(`SELECT COUNT(*) FROM devices d JOIN print_jobs j ON j.uci = d.uci WHERE d.uci = ?`, id).Scan(&n)
		if n != 1 {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d UCIs acknowledged before the backup are not in the restored database", missing, len(before))
	}
	// The restored database serves.
	b := startAppliance(t, restored, writeConfig(t, iotoProductConfig))
	if id, code, err := serialize(http.DefaultClient, b.url("/ioto/serialize"), `{"hwid":"b-0-0"}`); err != nil || code != 200 || id != before[0] && !contains(before, id) {
		t.Fatalf("identity after restore: %q %d %v", id, code, err)
	}
	t.Logf("%d UCIs before the backup, %d in all; slowest answer while the backup ran: %v", len(before), len(acked), slowest)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Scheduled backups are written while serving and only the newest are kept.
func TestScheduledBackupsKeepTheNewest(t *testing.T) {
	dir := t.TempDir()
	cfg := demoConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Backup = BackupConfig{Dir: "backups", Every: station.Duration(300 * time.Millisecond), Keep: 2}
	db, err := store.Open(context.Background(), filepath.Join(cfg.DataDir, "serialbox.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := startBackups(&cfg, newLogger(os.Stderr, "error"))
	time.Sleep(1500 * time.Millisecond)
	b.Close()
	entries, err := os.ReadDir(filepath.Join(cfg.DataDir, "backups"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("%d backups kept, want 2", len(entries))
	}
	for _, e := range entries {
		if err := store.CheckFile(context.Background(), filepath.Join(cfg.DataDir, "backups", e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}
