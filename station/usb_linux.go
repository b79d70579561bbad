package station

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// lpGetStatus is the Linux printer ioctl LPGETSTATUS: the IEEE 1284 port status
// byte, which usblp fetches with the USB printer class GET_PORT_STATUS request.
const lpGetStatus = 0x060b

// IEEE 1284 status bits in the LPGETSTATUS reply.
const (
	lpPaperOut = 0x20 // paper empty
	lpSelected = 0x10 // printer on line
	lpNoError  = 0x08 // low when the printer has an error
)

// USB sends jobs to a USB printer class device (/dev/usb/lp0 or a udev symlink).
// The device admits one opener at a time, so one descriptor, opened non-blocking,
// serves printing and status reads and is kept until Close or a fault. The driver
// has no write timeout: every write waits with poll up to a deadline. A job counts
// as delivered only when the device reports writable again (POLLOUT: usblp's last
// transfer has completed), so closing afterwards cannot cut off its tail.
type USB struct {
	dev      string
	language string
	to       Timeouts

	mu sync.Mutex
	fd int // -1 while closed
}

// NewUSB returns a transport for the USB printer device dev speaking language.
func NewUSB(dev, language string, to Timeouts) *USB {
	return &USB{dev: dev, language: language, to: to.withDefaults(), fd: -1}
}

// Send writes the whole job and waits until the driver has passed it on.
func (u *USB) Send(ctx context.Context, job Job) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.open(); err != nil {
		return unreachable(err)
	}
	deadline := earliest(ctx, time.Now().Add(u.to.Write))
	n, err := writeFD(ctx, u.fd, job.Data, deadline)
	if err == nil {
		err = waitFD(ctx, u.fd, unix.POLLOUT, deadline)
	}
	if err != nil {
		// A device that failed mid-job is reopened for the next one; usblp discards
		// what it still holds.
		u.close()
		return broken(n, len(job.Data), err)
	}
	return nil
}

// Status asks the printer (~HS for ZPL, ESC !? for TSPL) on the shared descriptor.
// A printer that does not answer (not bidirectional) is judged by the USB port
// status instead: paper out, off line, error.
func (u *USB) Status(ctx context.Context) (Status, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := time.Now()
	if err := u.open(); err != nil {
		st := offline("cannot open "+u.dev, err)
		st.CheckedAt = now
		return st, err
	}
	var (
		st  Status
		err error
	)
	if q := statusQuery(u.language); q != nil {
		discardInput(u.fd)
		deadline := earliest(ctx, now.Add(u.to.Reply))
		var buf []byte
		if _, err = writeFD(ctx, u.fd, q, deadline); err == nil {
			buf, err = readFD(ctx, u.fd, deadline, func(b []byte) bool { return replyComplete(u.language, b) })
		}
		if err != nil {
			st = Status{State: StateFaulted, Message: msgNotTaking, CheckedAt: now}
			if !errors.Is(err, errNotTaking) && ctx.Err() == nil {
				u.close()
				st = offline("lost "+u.dev, err)
				st.CheckedAt = now
			}
			return st, err
		}
		st, err = parseReply(u.language, buf)
		if err == nil {
			st.CheckedAt = now
			return st, nil
		}
	}
	if ps, ok := u.portStatus(); ok {
		ps.CheckedAt = now
		return ps, nil
	}
	if err == nil {
		st = Status{State: StateUnknown, Message: msgNoStatus}
	}
	st.CheckedAt = now
	return st, err
}

// portStatus reads the IEEE 1284 status byte; ok is false where the device has none.
func (u *USB) portStatus() (Status, bool) {
	b, err := unix.IoctlGetInt(u.fd, lpGetStatus)
	if err != nil {
		return Status{}, false
	}
	var conds []condition
	if b&lpPaperOut != 0 {
		conds = append(conds, condition{StatePaperOut, msgPaperOut})
	}
	if b&lpNoError == 0 {
		conds = append(conds, condition{StateFaulted, msgError})
	}
	if b&lpSelected == 0 {
		conds = append(conds, condition{StatePaused, "Printer off line: press its on-line or PAUSE button"})
	}
	return summarize(conds, msgReady), true
}

// Close waits up to the finish timeout for the last job's transfer, then closes
// the device.
func (u *USB) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.fd < 0 {
		return nil
	}
	waitFD(context.Background(), u.fd, unix.POLLOUT, time.Now().Add(u.to.Finish))
	return u.close()
}

// probe opens the device, which stays open: a second open would fail.
func (u *USB) probe(context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.open(); err != nil {
		return unreachable(err)
	}
	return nil
}

// open opens the device unless it is open. Called with mu held.
func (u *USB) open() error {
	if u.fd >= 0 {
		return nil
	}
	fd, err := unix.Open(u.dev, unix.O_RDWR|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return deviceError(u.dev, err)
	}
	u.fd = fd
	return nil
}

// close closes the device. Called with mu held.
func (u *USB) close() error {
	if u.fd < 0 {
		return nil
	}
	err := unix.Close(u.fd)
	u.fd = -1
	if err != nil {
		return fmt.Errorf("closing %s: %w", u.dev, err)
	}
	return nil
}
