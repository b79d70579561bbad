package station_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"serialbox/station"
)

func TestTCPSendByteExact(t *testing.T) {
	p := startPrinter(t)
	tr := station.NewTCP(p.Addr(), station.LanguageZPL, fastTimeouts)
	defer tr.Close()
	ctx := testCtx(t, 10*time.Second)
	var want [][]byte
	for i, size := range []int{300, 1, 4 << 10, 256 << 10} {
		job := zplLabel(int64(i), size)
		if err := tr.Send(ctx, station.Job{ID: int64(i), Data: job}); err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
		want = append(want, job)
	}
	got := p.Labels()
	if len(got) != len(want) {
		t.Fatalf("printer got %d labels, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("label %d differs: %d bytes, want %d", i, len(got[i]), len(want[i]))
		}
	}
	if st := p.Stats(); st.Connections != len(want) || st.Partial != 0 {
		t.Errorf("printer stats %+v: want one connection per job, no partial label", st)
	}
}

func TestTCPSendUnreachable(t *testing.T) {
	p := startPrinter(t)
	addr := p.Addr()
	p.Kill()
	tr := station.NewTCP(addr, station.LanguageZPL, fastTimeouts)
	err := tr.Send(testCtx(t, 5*time.Second), station.Job{Data: zplLabel(1, 300)})
	if !errors.Is(err, station.ErrUnreachable) || errors.Is(err, station.ErrUncertain) {
		t.Fatalf("Send to a dead printer = %v, want ErrUnreachable", err)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Send = %v, want the cause (connection refused) kept", err)
	}
	st, err := tr.Status(testCtx(t, 5*time.Second))
	if err == nil || st.State != station.StateOffline || !strings.Contains(st.Message, addr) {
		t.Errorf("Status of a dead printer = %+v, %v; want offline naming %s", st, err, addr)
	}
}

func TestTCPSendDroppedMidJob(t *testing.T) {
	tests := []struct {
		name string
		size int
		drop int
	}{
		{"drop after the job was written", 300, 100},
		{"drop while writing", 4 << 20, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startPrinter(t)
			tr := station.NewTCP(p.Addr(), station.LanguageZPL, fastTimeouts)
			p.DropAfter(tt.drop)
			err := tr.Send(testCtx(t, 10*time.Second), station.Job{Data: zplLabel(1, tt.size)})
			var se *station.SendError
			if !errors.Is(err, station.ErrUncertain) || !errors.As(err, &se) {
				t.Fatalf("Send = %v, want ErrUncertain", err)
			}
			if se.Written == 0 || se.Total != tt.size {
				t.Errorf("SendError = %+v", se)
			}
			if n := len(p.Labels()); n != 0 {
				t.Errorf("printer recorded %d labels from a dropped job", n)
			}
		})
	}
}

func TestTCPSendPrinterNeverCloses(t *testing.T) {
	tests := []struct {
		name  string
		size  int
		reads bool
		want  error // nil, or the kind of SendError
	}{
		// Reads everything but never closes: every byte acknowledged, so printed.
		{"reads, never closes", 300, true, nil},
		// Takes nothing: the job sits unacknowledged in our send queue.
		{"reads nothing", 16 << 20, false, station.ErrUncertain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			release := make(chan struct{})
			defer close(release)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				if tt.reads {
					io.Copy(io.Discard, c)
				}
				<-release
			}()
			to := fastTimeouts
			to.Write = 300 * time.Millisecond
			to.Finish = 200 * time.Millisecond
			tr := station.NewTCP(ln.Addr().String(), station.LanguageZPL, to)
			err = tr.Send(testCtx(t, 5*time.Second), station.Job{Data: zplLabel(1, tt.size)})
			if tt.want == nil && err != nil {
				t.Fatalf("Send = %v, want success", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Send = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestTCPStatus(t *testing.T) {
	p := startPrinter(t)
	tests := []struct {
		name  string
		lang  string
		fault func(on bool)
		state string
	}{
		{"zpl ready", station.LanguageZPL, nil, station.StateReady},
		{"zpl paper out", station.LanguageZPL, p.SetPaperOut, station.StatePaperOut},
		{"zpl head open", station.LanguageZPL, p.SetHeadOpen, station.StateHeadOpen},
		{"zpl paused", station.LanguageZPL, p.SetPaused, station.StatePaused},
		{"zpl ribbon out", station.LanguageZPL, p.SetRibbonOut, station.StateRibbonOut},
		{"zpl no reply", station.LanguageZPL, p.SetNoReply, station.StateFaulted},
		{"tspl ready", station.LanguageTSPL, nil, station.StateReady},
		{"tspl paper out", station.LanguageTSPL, p.SetPaperOut, station.StatePaperOut},
		{"tspl no reply", station.LanguageTSPL, p.SetNoReply, station.StateFaulted},
		{"pdf reachable", station.LanguagePDF, nil, station.StateReady},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fault != nil {
				tt.fault(true)
				defer tt.fault(false)
			}
			tr := station.NewTCP(p.Addr(), tt.lang, fastTimeouts)
			st, _ := tr.Status(testCtx(t, 5*time.Second))
			if st.State != tt.state || st.Message == "" || st.CheckedAt.IsZero() {
				t.Errorf("Status = %+v, want state %s", st, tt.state)
			}
		})
	}
	if n := len(p.Labels()); n != 0 {
		t.Errorf("status queries printed %d labels", n)
	}
}

func TestOpenTCPUnresolvable(t *testing.T) {
	cfg := station.PrinterConfig{Transport: "tcp", Address: "no-such-printer.invalid:9100"}
	cfg.Defaults()
	_, err := station.Open(cfg)
	if !errors.Is(err, station.ErrUnreachable) || !strings.Contains(err.Error(), "does not resolve") {
		t.Fatalf("Open = %v, want an unreachable error saying the address does not resolve", err)
	}
	if tr, err := station.New(cfg); err != nil || tr == nil {
		t.Fatalf("New = %v, %v; want a transport for later", tr, err)
	}
}
