package station

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.bug.st/serial"
	"golang.org/x/sys/unix"
)

// Serial sends jobs over an RS-232 or USB-serial line. go.bug.st/serial opens and
// configures the port (speed, data bits, parity, stop bits, exclusive access) and
// reads status replies. The library has no flow control setting, so the transport
// opens its own non-blocking descriptor of the same terminal just before the library
// does: it sets RTS/CTS or XON/XOFF in the terminal's settings, and writes through
// it, so that a printer holding the line (CTS low, XOFF) cannot block a write
// forever.
type Serial struct {
	cfg  PrinterConfig
	to   Timeouts
	mode *serial.Mode

	mu   sync.Mutex
	port serial.Port // nil while closed
	fd   int         // the transport's own descriptor; -1 while closed
}

// NewSerial returns a transport for the serial printer cfg describes. The port is
// opened on first use and again after a fault.
func NewSerial(cfg PrinterConfig, to Timeouts) (*Serial, error) {
	mode := &serial.Mode{BaudRate: cfg.Baud, DataBits: cfg.DataBits, StopBits: serial.OneStopBit}
	switch cfg.Parity {
	case "even":
		mode.Parity = serial.EvenParity
	case "odd":
		mode.Parity = serial.OddParity
	}
	if cfg.StopBits == 2 {
		mode.StopBits = serial.TwoStopBits
	}
	return &Serial{cfg: cfg, to: to.withDefaults(), mode: mode, fd: -1}, nil
}

// Send writes the whole job, waits until the line has sent it, and drains the port.
// The deadline grows with the job's wire time at the configured speed.
func (s *Serial) Send(ctx context.Context, job Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.open(); err != nil {
		return unreachable(err)
	}
	deadline := earliest(ctx, time.Now().Add(s.to.Write+2*WireTime(s.cfg, len(job.Data))))
	n, err := writeFD(ctx, s.fd, job.Data, deadline)
	if err == nil {
		err = s.drain(ctx, deadline)
		if err == nil {
			return nil
		}
	}
	// Bytes still queued in the driver never reached the printer: count only the rest.
	if q, qerr := unix.IoctlGetInt(s.fd, unix.TIOCOUTQ); qerr == nil {
		n = max(n-q, 0)
	}
	s.port.ResetOutputBuffer()
	s.close()
	if errors.Is(err, errNotTaking) {
		err = fmt.Errorf("%w; check the cable and printer.flow (now %q)", err, s.cfg.Flow)
	}
	return broken(n, len(job.Data), err)
}

// drain waits until the driver's output queue is empty, then lets the port drain
// the last bytes from the hardware.
func (s *Serial) drain(ctx context.Context, deadline time.Time) error {
	byteTime := WireTime(s.cfg, 1)
	for {
		q, err := unix.IoctlGetInt(s.fd, unix.TIOCOUTQ)
		if err != nil {
			return err
		}
		if q == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %d bytes still waiting to go out", errNotTaking, q)
		}
		wait := min(time.Duration(q)*byteTime, pollSlice)
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(max(wait, time.Millisecond)):
		}
	}
	// The driver's queue is empty; Drain waits for the UART's own buffer, a few bytes.
	// It cannot be interrupted, so it runs aside and is given up on at the deadline.
	done := make(chan error, 1)
	port := s.port
	go func() {
		for {
			// The drain ioctl returns EINTR when a signal (the Go runtime's
			// preemption included) arrives while it waits.
			if err := port.Drain(); !errors.Is(err, unix.EINTR) {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(time.Until(deadline)):
		return fmt.Errorf("%w: the port did not drain", errNotTaking)
	}
}

// Status asks the printer for its status over the line (~HS for ZPL, ESC !? for
// TSPL) and waits for the reply up to the reply timeout.
func (s *Serial) Status(ctx context.Context) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if err := s.open(); err != nil {
		st := offline("cannot open "+s.cfg.Device, errors.Unwrap(err))
		st.CheckedAt = now
		return st, err
	}
	q := statusQuery(s.cfg.Language)
	if q == nil {
		return Status{State: StateUnknown, Message: msgNoStatus, CheckedAt: now}, nil
	}
	s.port.ResetInputBuffer()
	deadline := earliest(ctx, now.Add(s.to.Reply))
	if _, err := writeFD(ctx, s.fd, q, deadline); err != nil {
		s.port.ResetOutputBuffer()
		if errors.Is(err, errNotTaking) || ctx.Err() != nil {
			return Status{State: StateFaulted, Message: msgNotTaking, CheckedAt: now}, err
		}
		s.close()
		st := offline("lost "+s.cfg.Device, err)
		st.CheckedAt = now
		return st, err
	}
	var buf []byte
	tmp := make([]byte, 256)
	for !replyComplete(s.cfg.Language, buf) && ctx.Err() == nil {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		if err := s.port.SetReadTimeout(min(left, pollSlice)); err != nil {
			return Status{State: StateFaulted, Message: msgNoReply, CheckedAt: now}, err
		}
		n, err := s.port.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			s.close()
			st := offline("lost "+s.cfg.Device, err)
			st.CheckedAt = now
			return st, err
		}
	}
	st, err := parseReply(s.cfg.Language, buf)
	st.CheckedAt = now
	return st, err
}

// Close closes the port.
func (s *Serial) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.close()
}

// probe opens the port, which stays open for the first job.
func (s *Serial) probe(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.open(); err != nil {
		return unreachable(err)
	}
	return nil
}

// open opens and configures the port unless it is open. Called with mu held.
func (s *Serial) open() error {
	if s.port != nil {
		return nil
	}
	dev := s.cfg.Device
	// Our descriptor must exist before the library's: the library asks for
	// exclusive access (TIOCEXCL), after which a second open fails.
	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return deviceError(dev, err)
	}
	port, err := serial.Open(dev, s.mode)
	if err != nil {
		unix.Close(fd)
		return fmt.Errorf("serial port %s: %w", dev, err)
	}
	if err := setFlowControl(fd, s.cfg.Flow); err != nil {
		port.Close()
		unix.Close(fd)
		return fmt.Errorf("serial port %s: %w", dev, err)
	}
	s.port, s.fd = port, fd
	return nil
}

// close closes both descriptors. Called with mu held.
func (s *Serial) close() error {
	if s.port == nil {
		return nil
	}
	err := s.port.Close()
	unix.Close(s.fd)
	s.port, s.fd = nil, -1
	return err
}

// setFlowControl switches the terminal to RTS/CTS, XON/XOFF or no flow control and
// reads the setting back, because some drivers silently refuse RTS/CTS.
func setFlowControl(fd int, flow string) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("reading terminal settings: %w", err)
	}
	t.Cflag &^= unix.CRTSCTS
	t.Iflag &^= unix.IXON | unix.IXOFF | unix.IXANY
	switch flow {
	case FlowRTSCTS:
		t.Cflag |= unix.CRTSCTS
	case FlowXONXOFF:
		// XON/XOFF also swallows 0x11 and 0x13 in the printer's replies, which is why
		// RTS/CTS is the default.
		t.Iflag |= unix.IXON | unix.IXOFF
		t.Cc[unix.VSTART] = 0x11
		t.Cc[unix.VSTOP] = 0x13
	}
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("setting flow control %q: %w", flow, err)
	}
	got, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("reading terminal settings: %w", err)
	}
	if got.Cflag&unix.CRTSCTS != t.Cflag&unix.CRTSCTS || got.Iflag&(unix.IXON|unix.IXOFF) != t.Iflag&(unix.IXON|unix.IXOFF) {
		return fmt.Errorf("the port does not support flow control %q", flow)
	}
	return nil
}
