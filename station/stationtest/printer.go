// Package stationtest holds fake label printers for tests, benchmarks and demos: a
// raw TCP (port 9100) network printer and a serial printer on a pseudo-terminal. Both
// cut the received bytes into labels, record them, and answer ZPL ~HS and TSPL ESC !?
// status queries with faults that can be switched on and off.
package stationtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Stats are a fake printer's counters.
type Stats struct {
	Connections   int   // connections accepted (TCP) or opens seen (serial: always 0)
	Labels        int   // whole labels received
	Partial       int   // connections that ended in the middle of a label
	Dropped       int   // connections dropped on purpose (DropAfter, Kill)
	StatusQueries int   // ~HS and ESC !? queries received
	Bytes         int64 // bytes received
}

// printer is the state both fakes share: the labels, counters and faults.
type printer struct {
	// OutDir, when set, receives each label as a numbered file (000001.zpl).
	OutDir string
	// Logf, when set, is told about each label and fault.
	Logf func(format string, args ...any)

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced whenever a label arrives
	labels   [][]byte
	stats    Stats
	paperOut bool
	headOpen bool
	paused   bool
	ribbon   bool
	noReply  bool
}

func (p *printer) init() {
	p.changed = make(chan struct{})
}

// Labels returns a copy of every label received so far, in order.
func (p *printer) Labels() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([][]byte, len(p.labels))
	for i, l := range p.labels {
		out[i] = bytes.Clone(l)
	}
	return out
}

// Stats returns the printer's counters.
func (p *printer) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// WaitLabels blocks until at least n labels have arrived or ctx ends.
func (p *printer) WaitLabels(ctx context.Context, n int) error {
	for {
		p.mu.Lock()
		got, ch := len(p.labels), p.changed
		p.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d labels arrived: %w", got, n, ctx.Err())
		}
	}
}

// SetPaperOut makes status replies say the printer is out of paper. Labels are
// still accepted, as a real printer buffers them.
func (p *printer) SetPaperOut(on bool) { p.set(&p.paperOut, on, "paper out") }

// SetHeadOpen makes status replies say the print head is open.
func (p *printer) SetHeadOpen(on bool) { p.set(&p.headOpen, on, "head open") }

// SetPaused makes status replies say the printer is paused.
func (p *printer) SetPaused(on bool) { p.set(&p.paused, on, "paused") }

// SetRibbonOut makes status replies say the ribbon is out.
func (p *printer) SetRibbonOut(on bool) { p.set(&p.ribbon, on, "ribbon out") }

// SetNoReply makes the printer ignore status queries, as many do while faulted.
func (p *printer) SetNoReply(on bool) { p.set(&p.noReply, on, "no status reply") }

// TogglePaperOut flips the paper-out fault and returns the new setting.
func (p *printer) TogglePaperOut() bool {
	p.mu.Lock()
	on := !p.paperOut
	p.mu.Unlock()
	p.SetPaperOut(on)
	return on
}

func (p *printer) set(f *bool, on bool, name string) {
	p.mu.Lock()
	*f = on
	p.mu.Unlock()
	if p.Logf != nil {
		p.Logf("fault %s: %v", name, on)
	}
}

// handle records the events found in received bytes and returns the replies owed.
func (p *printer) handle(n int, evs []event) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Bytes += int64(n)
	var reply []byte
	for _, ev := range evs {
		if ev.label != nil {
			p.labels = append(p.labels, ev.label)
			p.stats.Labels++
			p.save(len(p.labels), ev.label)
			close(p.changed)
			p.changed = make(chan struct{})
			continue
		}
		p.stats.StatusQueries++
		if p.noReply {
			continue
		}
		switch ev.query {
		case queryZPL:
			reply = append(reply, p.hostStatus()...)
		case queryTSPL:
			reply = append(reply, p.tsplStatus())
		}
	}
	return reply
}

// save writes label number n to OutDir, if set. Called with mu held.
func (p *printer) save(n int, label []byte) {
	ext := "zpl"
	if !bytes.HasSuffix(label, zplEnd) {
		ext = "tspl"
	}
	if p.Logf != nil {
		p.Logf("label %d (%d bytes)", n, len(label))
	}
	if p.OutDir == "" {
		return
	}
	name := filepath.Join(p.OutDir, fmt.Sprintf("%06d.%s", n, ext))
	if err := os.WriteFile(name, label, 0o644); err != nil && p.Logf != nil {
		p.Logf("saving label %d: %v", n, err)
	}
}

// hostStatus is the ~HS reply for the current faults. Called with mu held.
func (p *printer) hostStatus() []byte {
	b := func(on bool) int {
		if on {
			return 1
		}
		return 0
	}
	return fmt.Appendf(nil,
		"\x02030,%d,%d,1245,000,0,0,0,000,0,0,0\x03\r\n"+
			"\x02001,0,%d,%d,1,2,4,0,00000000,1,000\x03\r\n"+
			"\x021234,0\x03\r\n",
		b(p.paperOut), b(p.paused), b(p.headOpen), b(p.ribbon))
}

// tsplStatus is the ESC !? reply byte for the current faults. Called with mu held.
func (p *printer) tsplStatus() byte {
	var s byte
	if p.headOpen {
		s |= 0x01
	}
	if p.paperOut {
		s |= 0x04
	}
	if p.ribbon {
		s |= 0x08
	}
	if p.paused {
		s |= 0x10
	}
	return s
}
