package stationtest

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// send writes data to the printer, half-closes and returns what it answered.
func send(t *testing.T, addr string, data string) ([]byte, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(data)); err != nil {
		return nil, err
	}
	c.(*net.TCPConn).CloseWrite()
	return io.ReadAll(c)
}

func TestFakePrinter(t *testing.T) {
	p, err := StartFakePrinter("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.OutDir = t.TempDir()

	label := "^XA^FO10,10^FDhello^FS^XZ"
	reply, err := send(t, p.Addr(), label+"~HS")
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(reply, []byte{0x03}); n != 3 {
		t.Errorf("~HS reply has %d ETX, want 3: %q", n, reply)
	}
	if got := p.Labels(); len(got) != 1 || string(got[0]) != label {
		t.Fatalf("labels = %q", got)
	}
	saved, err := os.ReadFile(filepath.Join(p.OutDir, "000001.zpl"))
	if err != nil || string(saved) != label {
		t.Errorf("saved label = %q, %v", saved, err)
	}

	addr := p.Addr()
	p.Kill()
	if _, err := send(t, addr, label); err == nil {
		t.Error("send to a killed printer succeeded")
	}
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	if p.Addr() != addr {
		t.Errorf("restarted on %s, want %s", p.Addr(), addr)
	}
	if _, err := send(t, addr, label); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitLabels(ctx, 2); err != nil {
		t.Fatal(err)
	}

	p.DropAfter(5)
	if _, err := send(t, addr, label); err == nil {
		t.Error("a dropped connection ended cleanly")
	}
	st := p.Stats()
	if st.Labels != 2 || st.Dropped != 1 || st.Connections != 3 {
		t.Errorf("stats = %+v", st)
	}
}

// A status query shorter than DropAfter's count passes the fault on: the next label
// is the one cut off.
func TestFakePrinterDropWaitsForALabel(t *testing.T) {
	p, err := StartFakePrinter("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.DropAfter(10)
	if reply, err := send(t, p.Addr(), "~HS"); err != nil || len(reply) == 0 {
		t.Fatalf("status query: %q, %v", reply, err)
	}
	if _, err := send(t, p.Addr(), "^XA^FO10,10^FDhello^FS^XZ"); err == nil {
		t.Error("the label after the status query was not cut off")
	}
	if _, err := send(t, p.Addr(), "^XA^FO10,10^FDagain^FS^XZ"); err != nil {
		t.Fatalf("the fault struck twice: %v", err)
	}
	if st := p.Stats(); st.Dropped != 1 || st.Labels != 1 {
		t.Errorf("stats = %+v, want 1 dropped and 1 label", st)
	}
}
