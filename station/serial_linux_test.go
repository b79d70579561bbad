package station

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"serialbox/station/stationtest"
)

func startSerialPrinter(t testing.TB, baud int) *stationtest.FakeSerialPrinter {
	t.Helper()
	p, err := stationtest.StartFakeSerialPrinter(baud)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func serialConfig(dev, flow, lang string) PrinterConfig {
	cfg := PrinterConfig{Transport: TransportSerial, Device: dev, Flow: flow, Language: lang}
	cfg.Defaults()
	return cfg
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// label returns a ZPL label of exactly size bytes.
func label(n, size int) []byte {
	head := fmt.Sprintf("^XA^FO20,20^A0N,30,30^FH^FDlabel %d^FS^FO20,60^BQN,2,4^FH^FDQA,", n)
	tail := "^FS^XZ"
	return []byte(head + strings.Repeat("7", size-len(head)-len(tail)) + tail)
}

func TestSerialSendByteExact(t *testing.T) {
	for _, flow := range []string{FlowRTSCTS, FlowXONXOFF, FlowNone} {
		t.Run(flow, func(t *testing.T) {
			p := startSerialPrinter(t, 0)
			tr, err := Open(serialConfig(p.Path(), flow, LanguageZPL))
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			s := tr.(*Serial)
			if got := termiosFlow(t, s.fd); got != flow {
				t.Errorf("flow control on the port = %s, want %s", got, flow)
			}
			var want [][]byte
			for i, size := range []int{300, 2000, 64 << 10} {
				job := label(i, size)
				if err := tr.Send(ctxFor(t, 10*time.Second), Job{ID: int64(i), Data: job}); err != nil {
					t.Fatalf("job %d: %v", i, err)
				}
				want = append(want, job)
			}
			if err := p.WaitLabels(ctxFor(t, 10*time.Second), len(want)); err != nil {
				t.Fatal(err)
			}
			for i, got := range p.Labels() {
				if !bytes.Equal(got, want[i]) {
					t.Errorf("label %d differs: %d bytes, want %d", i, len(got), len(want[i]))
				}
			}
		})
	}
}

// termiosFlow reads the flow control set on the terminal open as fd.
func termiosFlow(t *testing.T, fd int) string {
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case tio.Cflag&unix.CRTSCTS != 0 && tio.Iflag&unix.IXON == 0:
		return FlowRTSCTS
	case tio.Iflag&(unix.IXON|unix.IXOFF) == unix.IXON|unix.IXOFF && tio.Cflag&unix.CRTSCTS == 0:
		return FlowXONXOFF
	case tio.Iflag&(unix.IXON|unix.IXOFF) == 0 && tio.Cflag&unix.CRTSCTS == 0:
		return FlowNone
	}
	return "mixed"
}

func TestSerialStatus(t *testing.T) {
	p := startSerialPrinter(t, 0)
	tests := []struct {
		name  string
		lang  string
		fault func(bool)
		state string
	}{
		{"zpl ready", LanguageZPL, nil, StateReady},
		{"zpl paper out", LanguageZPL, p.SetPaperOut, StatePaperOut},
		{"zpl head open", LanguageZPL, p.SetHeadOpen, StateHeadOpen},
		{"zpl no reply", LanguageZPL, p.SetNoReply, StateFaulted},
		{"tspl ready", LanguageTSPL, nil, StateReady},
		{"tspl ribbon out", LanguageTSPL, p.SetRibbonOut, StateRibbonOut},
		{"pdf", LanguagePDF, nil, StateUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fault != nil {
				tt.fault(true)
				defer tt.fault(false)
			}
			s, err := NewSerial(serialConfig(p.Path(), FlowNone, tt.lang), Timeouts{Reply: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			st, _ := s.Status(ctxFor(t, 5*time.Second))
			if st.State != tt.state {
				t.Errorf("Status = %+v, want %s", st, tt.state)
			}
		})
	}
}

func TestSerialMissingDevice(t *testing.T) {
	dev := t.TempDir() + "/ttyUSB9"
	_, err := Open(serialConfig(dev, FlowRTSCTS, LanguageZPL))
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), dev+" does not exist") {
		t.Fatalf("Open = %v, want unreachable naming the missing device", err)
	}
	s, _ := NewSerial(serialConfig(dev, FlowRTSCTS, LanguageZPL), Timeouts{})
	if err := s.Send(ctxFor(t, time.Second), Job{Data: label(1, 300)}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Send = %v, want ErrUnreachable", err)
	}
	if st, err := s.Status(ctxFor(t, time.Second)); err == nil || st.State != StateOffline {
		t.Errorf("Status = %+v, %v; want offline", st, err)
	}
}

func TestSerialPrinterNotTakingData(t *testing.T) {
	// A printer that never reads: the pseudo-terminal's buffers fill, the write
	// times out, and only the bytes that left the driver count as written.
	p := startSerialPrinter(t, 0)
	p.SetStalled(true)
	cfg := serialConfig(p.Path(), FlowNone, LanguageZPL)
	cfg.Baud = 4000000 // the time allowed grows with the wire time; keep it short
	s, err := NewSerial(cfg, Timeouts{Write: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	err = s.Send(ctxFor(t, 10*time.Second), Job{Data: label(1, 256<<10)})
	t.Logf("gave up after %v: %v", time.Since(start), err)
	var se *SendError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "did not take the data in time") {
		t.Fatalf("Send = %v, want a SendError: did not take the data in time", err)
	}
	if se.Written >= se.Total {
		t.Errorf("SendError = %+v, want fewer bytes written than the job", se)
	}
}

// TestSerialWireTime measures one 300-byte label on the pseudo-terminal printer,
// which reads at the pace of a 9600 baud line (8N1: 10 bits a byte).
func TestSerialWireTime(t *testing.T) {
	if testing.Short() {
		t.Skip("paced serial line")
	}
	p := startSerialPrinter(t, 9600)
	cfg := serialConfig(p.Path(), FlowNone, LanguageZPL)
	s, err := NewSerial(cfg, Timeouts{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	job := label(1, 300)
	start := time.Now()
	if err := s.Send(ctxFor(t, 10*time.Second), Job{Data: job}); err != nil {
		t.Fatal(err)
	}
	sent := time.Since(start)
	if err := p.WaitLabels(ctxFor(t, 10*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	arrived := time.Since(start)
	wire := WireTime(cfg, len(job))
	t.Logf("300-byte label at 9600 baud 8N1: %d bytes, %d bits on the wire, wire time %v; Send returned after %v, last byte at the printer after %v",
		len(job), len(job)*10, wire, sent.Round(time.Microsecond), arrived.Round(time.Millisecond))
	if wire != 312500*time.Microsecond {
		t.Errorf("WireTime = %v, want 312.5ms", wire)
	}
	if arrived < wire*9/10 || arrived > wire*3 {
		t.Errorf("label arrived after %v, want about %v", arrived, wire)
	}
}

func TestWireTime(t *testing.T) {
	tests := []struct {
		cfg  PrinterConfig
		n    int
		want time.Duration
	}{
		{PrinterConfig{Baud: 9600, DataBits: 8, StopBits: 1, Parity: "none"}, 960, time.Second},
		{PrinterConfig{Baud: 9600, DataBits: 7, StopBits: 2, Parity: "even"}, 960, 1100 * time.Millisecond},
		{PrinterConfig{Baud: 115200, DataBits: 8, StopBits: 1}, 11520, time.Second},
	}
	for _, tt := range tests {
		if got := WireTime(tt.cfg, tt.n); got != tt.want {
			t.Errorf("WireTime(%+v, %d) = %v, want %v", tt.cfg, tt.n, got, tt.want)
		}
	}
}

// BenchmarkSerialSend sends 300-byte labels over the pseudo-terminal printer. A
// pseudo-terminal has no line speed, so ns/op is the transport's own cost; the
// wire-ms/label metric is what the same bytes take on a 9600 baud 8N1 line.
func BenchmarkSerialSend(b *testing.B) {
	p := startSerialPrinter(b, 0)
	cfg := serialConfig(p.Path(), FlowNone, LanguageZPL)
	s, err := NewSerial(cfg, Timeouts{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	job := Job{Data: label(1, 300)}
	ctx := context.Background()
	b.SetBytes(int64(len(job.Data)))
	for b.Loop() {
		if err := s.Send(ctx, job); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.WaitLabels(ctxFor(b, 10*time.Second), b.N); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(job.Data)), "bytes/label")
	b.ReportMetric(float64(WireTime(cfg, len(job.Data)).Microseconds())/1000, "wire-ms/label")
}
