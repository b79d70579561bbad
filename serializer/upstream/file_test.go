package upstream_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"serialbox/serializer/upstream"
)

func newFileTarget(t *testing.T, dir, format string) upstream.Target {
	t.Helper()
	target, err := upstream.New(upstream.TargetConfig{Name: "usb", Kind: "file", Dir: dir, Format: format})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return target
}

func TestFileTargetWritesChunkManifests(t *testing.T) {
	dir := t.TempDir()
	target := newFileTarget(t, dir, "")
	c := testChunk(t, "01JB5K3M8Q", 3)
	res, err := target.Push(context.Background(), c)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	for i, r := range res {
		if r.UCI != c.Devices[i].UCI || r.Status != upstream.StatusOK {
			t.Errorf("result %d = %+v", i, r)
		}
	}
	name := filepath.Join(dir, "batch-7-usb-01JB5K3M8Q.csv")
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 4 || lines[0] != strings.Join(upstream.ManifestColumns(), ",") {
		t.Fatalf("manifest =\n%s", data)
	}
	want := c.Devices[0].UCI.String() + "," + c.Devices[0].UCI.Grouped() + ",7," + testProduct.ID + ",SerialEval,Eval-01,line1,hwid:7-00000,labeled,2025-03-01T08:30:15Z,"
	if !strings.HasPrefix(lines[1], want) {
		t.Errorf("first row = %s\nwant prefix %s", lines[1], want)
	}

	// The same chunk again (its reply was lost, say) replaces its file: no duplicates.
	if _, err := target.Push(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(name)
	if string(again) != string(data) {
		t.Errorf("second push of the same key changed the manifest:\n%s", again)
	}
	// The next chunk gets its own file.
	c2 := testChunk(t, "01JB5K3M8R", 2)
	if _, err := target.Push(context.Background(), c2); err != nil {
		t.Fatal(err)
	}
	if got, want := dirNames(t, dir), []string{"batch-7-usb-01JB5K3M8Q.csv", "batch-7-usb-01JB5K3M8R.csv"}; !slices.Equal(got, want) {
		t.Errorf("folder holds %v, want %v (no temporary files left)", got, want)
	}
	if fi, _ := os.Stat(name); fi.Mode().Perm() != 0o640 {
		t.Errorf("manifest mode %v, want 0640", fi.Mode().Perm())
	}
}

func TestFileTargetJSONLAndOddKeys(t *testing.T) {
	dir := t.TempDir()
	c := testChunk(t, "../../etc/passwd", 2)
	if _, err := newFileTarget(t, dir, "jsonl").Push(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	names := dirNames(t, dir)
	if len(names) != 1 || !strings.HasPrefix(names[0], "batch-7-usb-") || !strings.HasSuffix(names[0], ".jsonl") || strings.Contains(names[0], "..") {
		t.Fatalf("folder holds %v", names)
	}
	data, _ := os.ReadFile(filepath.Join(dir, names[0]))
	if n := strings.Count(string(data), "\n"); n != 2 || !strings.HasPrefix(string(data), `{"uci":"`+c.Devices[0].UCI.String()) {
		t.Errorf("manifest =\n%s", data)
	}
}

func TestFileTargetMissingFolderIsRetried(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "stick")
	target := newFileTarget(t, dir, "csv")
	_, err := target.Push(context.Background(), testChunk(t, "k", 1))
	if !errors.As(err, new(*upstream.RetryError)) || !strings.Contains(err.Error(), "is the drive mounted?") {
		t.Fatalf("Push to a missing folder = %v, want a retryable error", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the missing folder was created")
	}
	os.Mkdir(dir, 0o750)
	if _, err := target.Push(context.Background(), testChunk(t, "k", 1)); err != nil {
		t.Errorf("Push once the folder is there = %v", err)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
