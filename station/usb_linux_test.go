package station

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestUSBSendRegularFile(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "lp0")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := PrinterConfig{Transport: TransportUSB, Device: dev}
	cfg.Defaults()
	tr, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i, size := range []int{300, 64 << 10, 1000} {
		job := label(i, size)
		if err := tr.Send(ctxFor(t, 5*time.Second), Job{Data: job}); err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
		want = append(want, job...)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("device got %d bytes, want %d (byte-exact)", len(got), len(want))
	}
}

// mkfifo makes a named pipe standing in for /dev/usb/lp0: it is a character
// stream that takes a limited amount of data (64 KiB) before writes would block.
func mkfifo(t *testing.T) string {
	t.Helper()
	dev := filepath.Join(t.TempDir(), "lp0")
	if err := unix.Mkfifo(dev, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	return dev
}

func TestUSBSendFIFOTail(t *testing.T) {
	dev := mkfifo(t)
	got := make(chan []byte, 1)
	go func() {
		f, err := os.Open(dev)
		if err != nil {
			got <- nil
			return
		}
		defer f.Close()
		time.Sleep(100 * time.Millisecond) // a slow printer: the writer must wait
		b, _ := io.ReadAll(f)
		got <- b
	}()
	u := NewUSB(dev, LanguageZPL, Timeouts{Write: 5 * time.Second})
	var want []byte
	for i, size := range []int{64 << 10, 300} {
		job := label(i, size)
		if err := u.Send(ctxFor(t, 5*time.Second), Job{Data: job}); err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
		want = append(want, job...)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			t.Fatalf("reader got %d bytes, want %d; tail %q", len(b), len(want), b[max(len(b)-20, 0):])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reader did not see the end of the data")
	}
}

func TestUSBSendStalled(t *testing.T) {
	dev := mkfifo(t)
	opened := make(chan *os.File, 1)
	go func() {
		f, err := os.Open(dev) // a printer that takes nothing more
		if err == nil {
			opened <- f
		}
	}()
	u := NewUSB(dev, LanguageZPL, Timeouts{Write: 200 * time.Millisecond})
	defer u.Close()

	// The first job fills the pipe part way and then stops moving: uncertain.
	err := u.Send(ctxFor(t, 5*time.Second), Job{Data: label(1, 256<<10)})
	var se *SendError
	if !errors.Is(err, ErrUncertain) || !errors.As(err, &se) || se.Written == 0 || se.Written >= se.Total {
		t.Fatalf("Send of a job larger than the printer takes = %v, want uncertain part way", err)
	}
	select {
	case f := <-opened:
		defer f.Close()
	case <-time.After(time.Second):
		t.Fatal("reader did not open")
	}
	// The pipe is full: the next job cannot start, so nothing was delivered.
	fd, err := unix.Open(dev, unix.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for {
		if _, err := unix.Write(fd, bytes.Repeat([]byte{'x'}, 4096)); err != nil {
			break
		}
	}
	err = u.Send(ctxFor(t, 5*time.Second), Job{Data: label(2, 300)})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Send to a printer that takes no byte = %v, want ErrUnreachable", err)
	}
}

func TestUSBStatus(t *testing.T) {
	p := startSerialPrinter(t, 0) // a bidirectional character device
	u := NewUSB(p.Path(), LanguageZPL, Timeouts{Reply: 300 * time.Millisecond})
	defer u.Close()
	if err := u.Send(ctxFor(t, 5*time.Second), Job{Data: label(1, 300)}); err != nil {
		t.Fatal(err)
	}
	p.SetPaperOut(true)
	st, err := u.Status(ctxFor(t, 5*time.Second))
	if err != nil || st.State != StatePaperOut {
		t.Errorf("Status = %+v, %v; want paper out", st, err)
	}
	p.SetPaperOut(false)
	p.SetNoReply(true)
	st, err = u.Status(ctxFor(t, 5*time.Second))
	if st.State != StateFaulted || !strings.Contains(st.Message, "No reply") {
		t.Errorf("Status without reply = %+v, %v; want faulted, no reply", st, err)
	}
	p.SetNoReply(false)
	// Printing and status shared the one descriptor; the label came through whole.
	if err := p.WaitLabels(ctxFor(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	if got := p.Labels()[0]; !bytes.Equal(got, label(1, 300)) {
		t.Errorf("label = %q", got)
	}
}

func TestUSBMissingDevice(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "lp7")
	cfg := PrinterConfig{Transport: TransportUSB, Device: dev}
	cfg.Defaults()
	_, err := Open(cfg)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), dev+" does not exist") {
		t.Fatalf("Open = %v, want unreachable naming the device", err)
	}
}
