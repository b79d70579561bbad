//go:build linux

package stationtest

import (
	"os"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// FakeSerialPrinter is a fake serial label printer on a pseudo-terminal: open Path
// as the serial port and it reads what is written, cuts it into labels and answers
// status queries.
type FakeSerialPrinter struct {
	printer
	master *os.File
	tty    *os.File // kept open so the master never sees a hang-up between opens
	baud   int
	wg     sync.WaitGroup

	stallMu sync.Mutex
	stalled bool
	unstall chan struct{}
}

// SetStalled makes the printer stop reading its line, as a printer whose buffer is
// full or that holds the line with flow control.
func (p *FakeSerialPrinter) SetStalled(on bool) {
	p.stallMu.Lock()
	defer p.stallMu.Unlock()
	if on == p.stalled {
		return
	}
	p.stalled = on
	if on {
		p.unstall = make(chan struct{})
	} else {
		close(p.unstall)
	}
}

// waitUnstalled blocks while the printer is stalled.
func (p *FakeSerialPrinter) waitUnstalled() {
	p.stallMu.Lock()
	ch, on := p.unstall, p.stalled
	p.stallMu.Unlock()
	if on {
		<-ch
	}
}

// StartFakeSerialPrinter opens a pseudo-terminal pair and starts reading it. When
// baud is above zero the printer reads no faster than that line speed (8N1, ten
// bits a byte), to show the wire time of a real serial line; a pseudo-terminal
// itself has no speed.
func StartFakeSerialPrinter(baud int) (*FakeSerialPrinter, error) {
	master, tty, err := pty.Open()
	if err != nil {
		return nil, err
	}
	if err := makeRaw(int(tty.Fd())); err != nil {
		master.Close()
		tty.Close()
		return nil, err
	}
	// The master comes in blocking mode, where Close cannot stop a pending Read;
	// a non-blocking copy goes through Go's poller instead.
	if master, err = pollable(master); err != nil {
		tty.Close()
		return nil, err
	}
	p := &FakeSerialPrinter{master: master, tty: tty, baud: baud}
	p.init()
	p.wg.Add(1)
	go p.read()
	return p, nil
}

// Path returns the terminal device to open as the serial port, e.g. /dev/pts/3.
func (p *FakeSerialPrinter) Path() string { return p.tty.Name() }

// Close stops the printer and closes both ends of the pseudo-terminal.
func (p *FakeSerialPrinter) Close() error {
	p.SetStalled(false)
	err := p.master.Close()
	p.tty.Close()
	p.wg.Wait()
	return err
}

func (p *FakeSerialPrinter) read() {
	defer p.wg.Done()
	var sp splitter
	chunk := 4096
	var byteTime time.Duration
	if p.baud > 0 {
		byteTime = time.Second * 10 / time.Duration(p.baud)
		chunk = 16
	}
	buf := make([]byte, chunk)
	var lineFree time.Time // when the simulated line has sent everything read so far
	for {
		p.waitUnstalled()
		n, err := p.master.Read(buf)
		if n > 0 {
			if byteTime > 0 {
				lineFree = later(lineFree, time.Now()).Add(time.Duration(n) * byteTime)
				time.Sleep(time.Until(lineFree))
			}
			if reply := p.handle(n, sp.feed(buf[:n])); len(reply) > 0 {
				p.master.Write(reply)
			}
		}
		if err != nil {
			return
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// pollable replaces f by a non-blocking descriptor of the same file.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// makeRaw turns off every terminal translation so bytes pass unchanged.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
