package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"serialbox/station"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls out until re matches, returning the first submatch.
func waitFor(t *testing.T, out *syncBuffer, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[len(m)-1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %v in output:\n%s", re, out.String())
	return ""
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--out", dir, "--paper-out"}, &out, &errs)
	}()
	addr := waitFor(t, &out, regexp.MustCompile(`listening on (\S+)`))

	tr := station.NewTCP(addr, station.LanguageZPL, station.Timeouts{Reply: time.Second})
	st, err := tr.Status(ctx)
	if err != nil || st.State != station.StatePaperOut {
		t.Errorf("status = %+v, %v; want paper out", st, err)
	}
	label := []byte("^XA^FO20,20^A0N,30,30^FDhello^FS^XZ")
	if err := tr.Send(ctx, station.Job{Data: label}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "000001.zpl")); err != nil || !bytes.Equal(got, label) {
		t.Errorf("saved label = %q, %v", got, err)
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &out, regexp.MustCompile(`paper out: (false)`))
	if st, _ := tr.Status(ctx); st.State != station.StateReady {
		t.Errorf("status after SIGUSR1 = %+v, want ready", st)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "totals: 1 labels") {
		t.Errorf("no totals in output:\n%s", out.String())
	}
}

func TestRunSerial(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errs syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--listen", "", "--serial", "--count"}, &out, &errs) }()
	dev := waitFor(t, &out, regexp.MustCompile(`serial printer on (\S+)`))

	cfg := station.PrinterConfig{Transport: "serial", Device: dev, Flow: "none"}
	cfg.Defaults()
	tr, err := station.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Send(ctx, station.Job{Data: []byte("SIZE 50 mm,30 mm\r\nCLS\r\nPRINT 1,1\r\n")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "totals: 1 labels") {
		t.Errorf("no totals in output:\n%s", out.String())
	}
}

func TestRunBadFlags(t *testing.T) {
	var out, errs syncBuffer
	if err := run(context.Background(), []string{"--listen", ""}, &out, &errs); err == nil {
		t.Error("run with nothing to do succeeded")
	}
	if err := run(context.Background(), []string{"--bogus"}, &out, &errs); err == nil {
		t.Error("run with an unknown flag succeeded")
	}
}
