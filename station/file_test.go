package station_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"serialbox/station"
)

func TestFileSpool(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	cfg := station.PrinterConfig{Transport: "file", Dir: dir, Language: "tspl"}
	cfg.Defaults()
	tr, err := station.Open(cfg) // creates the folder
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx := testCtx(t, 5*time.Second)
	png := []byte("\x89PNG\r\n\x1a\nfake")
	jobs := []station.Job{
		{ID: 1, Name: "0123-4567-89AB-CDEF", Data: []byte("SIZE 50 mm,30 mm\r\nPRINT 1,1\r\n"), Preview: png},
		{ID: 2, Name: "0123-4567-89AB-CDEF", Data: []byte("reprint\r\n")},
		{ID: 3, Name: "../../etc/passwd", Data: []byte("escape")},
		{ID: 4, Data: []byte("unnamed")},
	}
	for _, j := range jobs {
		if err := tr.Send(ctx, j); err != nil {
			t.Fatalf("job %d: %v", j.ID, err)
		}
	}
	want := map[string]string{
		"0123-4567-89AB-CDEF.tspl":   string(jobs[0].Data),
		"0123-4567-89AB-CDEF.png":    string(png),
		"0123-4567-89AB-CDEF-2.tspl": string(jobs[1].Data),
		"_.._etc_passwd.tspl":        "escape",
		"job-4.tspl":                 "unnamed",
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		info, _ := e.Info()
		if info.Mode().Perm() != 0o644 {
			t.Errorf("%s has mode %v, want 0644", e.Name(), info.Mode().Perm())
		}
	}
	if len(names) != len(want) {
		t.Errorf("spool holds %q, want only the jobs' files (no temporary files left)", names)
	}
	for name, content := range want {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != content {
			t.Errorf("%s = %q, %v; want %q", name, b, err, content)
		}
	}
	if slices.ContainsFunc(names, func(n string) bool { return n[0] == '.' }) {
		t.Errorf("temporary files left: %q", names)
	}
	st, err := tr.Status(ctx)
	if err != nil || st.State != station.StateReady {
		t.Errorf("Status = %+v, %v", st, err)
	}
}

func TestFileSpoolMissingFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	tr := station.NewFileSpool(dir, "zpl")
	err := tr.Send(testCtx(t, time.Second), station.Job{Name: "x", Data: []byte("^XA^XZ")})
	if !errors.Is(err, station.ErrUnreachable) {
		t.Fatalf("Send into a missing folder = %v, want ErrUnreachable", err)
	}
	if st, err := tr.Status(testCtx(t, time.Second)); err == nil || st.State != station.StateOffline {
		t.Errorf("Status = %+v, %v; want offline", st, err)
	}
}

func TestNone(t *testing.T) {
	cfg := station.PrinterConfig{Transport: "none"}
	cfg.Defaults()
	tr, err := station.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Send(testCtx(t, time.Second), station.Job{Data: []byte("^XA^XZ")}); err != nil {
		t.Errorf("Send = %v", err)
	}
	if st, _ := tr.Status(testCtx(t, time.Second)); st.State != station.StateReady {
		t.Errorf("Status = %+v", st)
	}
}

func TestOpenUnknownTransport(t *testing.T) {
	_, err := station.Open(station.PrinterConfig{Transport: "carrier-pigeon", Language: "zpl", DPI: 203, StatusInterval: station.Duration(time.Minute)})
	if err == nil || err.Error() != `invalid: printer.transport: unknown transport "carrier-pigeon" (tcp, serial, usb, file, none)` {
		t.Fatalf("Open = %v", err)
	}
}
