package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"serialbox/serializer"
	"serialbox/store"
)

func TestPregenCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	db, err := store.Open(ctx, filepath.Join(data, "serialbox.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := demoConfig()
	svc := serializer.NewService(db, nil)
	if err := svc.SetCatalog(ctx, cfg.Catalog()); err != nil {
		t.Fatal(err)
	}
	b, err := svc.OpenBatch(ctx, serializer.OpenBatchRequest{StationID: "demo", Planned: 500}, "test")
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	manifest, sheet := filepath.Join(dir, "run.csv"), filepath.Join(dir, "run.pdf")
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"pregen", "--data", data, "--batch", "1", "--count", "300", "--labels", "outside",
		"--manifest", manifest, "--sheet", sheet}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "issued 300 UCIs into batch 1") {
		t.Fatalf("exit %d: %s %s", code, out.String(), errOut.String())
	}
	for _, p := range []string{manifest, sheet} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v; claim IDs are for the appliance's user only (0600)", filepath.Base(p), fi.Mode(), err)
		}
	}
	f, _ := os.Open(manifest)
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 301 {
		t.Fatalf("manifest rows = %d, %v", len(rows), err)
	}
	seen := map[string]bool{}
	for _, r := range rows[1:] {
		if _, err := serializer.Parse(r[0]); err != nil || seen[r[0]] {
			t.Fatalf("manifest UCI %q: %v (seen before: %v)", r[0], err, seen[r[0]])
		}
		seen[r[0]] = true
	}
	pdf, err := os.ReadFile(sheet)
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) || bytes.Count(pdf, []byte("/Type /Page\n")) != 13 {
		t.Fatalf("sheet: %d bytes, %d pages, %v; want 13 pages of 24 labels", len(pdf), bytes.Count(pdf, []byte("/Type /Page\n")), err)
	}

	// Over the planned size: refused by name, nothing issued.
	errOut.Reset()
	if code := run(ctx, []string{"pregen", "--data", data, "--batch", "1", "--count", "201"}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "room for 200 more") {
		t.Fatalf("over the plan: exit %d, %s", code, errOut.String())
	}
	db2, _ := store.Open(ctx, filepath.Join(data, "serialbox.db"), store.Options{})
	defer db2.Close()
	after, _ := db2.Batch(ctx, b.ID)
	if after.Counts.Issued != 300 {
		t.Fatalf("issued = %d, want 300", after.Counts.Issued)
	}
}
