package store_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"serialbox/serializer"
	"serialbox/store"
)

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// The registry holds every claim ID, the password hashes and the session tokens: the
// database, its -wal and -shm files and every backup are the appliance user's only,
// also in a data folder that exists already and under a permissive umask.
func TestDatabaseAndBackupsArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o750)
	path := filepath.Join(dir, "serialbox.db")
	var log bytes.Buffer
	db, err := store.Open(ctx, path, store.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc := newService(t, db, autoStation)
	if _, err := svc.Issue(ctx, serializer.IssueRequest{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if m := fileMode(t, p); m != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(p), m)
		}
	}
	if strings.Contains(log.String(), "level=WARN") {
		t.Errorf("a folder of the appliance's user and group is not worth a warning:\n%s", log.String())
	}

	backup := filepath.Join(dir, "backups", "one.db")
	os.Mkdir(filepath.Dir(backup), 0o755)
	if err := store.Backup(ctx, path, backup); err != nil {
		t.Fatal(err)
	}
	if m := fileMode(t, backup); m != 0o600 {
		t.Errorf("backup: mode %v, want 0600", m)
	}
	db.Close()
	restored := filepath.Join(t.TempDir(), "restored", "serialbox.db")
	if err := store.Restore(ctx, backup, restored); err != nil {
		t.Fatal(err)
	}
	if m := fileMode(t, restored); m != 0o600 {
		t.Errorf("restored database: mode %v, want 0600", m)
	}
}

// A database made readable by others earlier is narrowed at start, and a data folder
// others may read is named in a warning.
func TestOpenNarrowsAnOpenDatabaseAndWarnsAboutTheFolder(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "serialbox.db")
	db := mustOpenAt(t, path)
	db.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); err == nil {
			os.Chmod(p, 0o644)
		}
	}
	var log bytes.Buffer
	db, err := store.Open(ctx, path, store.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if m := fileMode(t, path); m != 0o600 {
		t.Errorf("database: mode %v, want 0600", m)
	}
	if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), "data folder can be read by other users") ||
		!strings.Contains(log.String(), "mode=-rwxr-xr-x") {
		t.Errorf("log:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "mode was narrowed to 0600") {
		t.Errorf("the narrowed database is not logged:\n%s", log.String())
	}
}
