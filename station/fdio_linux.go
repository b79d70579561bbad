package station

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// pollSlice bounds each poll so that a cancelled context is noticed quickly.
const pollSlice = 50 * time.Millisecond

// writeFD writes all of data to a non-blocking descriptor, waiting for room until
// deadline. It returns how many bytes the driver took.
func writeFD(ctx context.Context, fd int, data []byte, deadline time.Time) (int, error) {
	off := 0
	for off < len(data) {
		n, err := unix.Write(fd, data[off:])
		if n > 0 {
			off += n
		}
		switch {
		case err == nil && n > 0, err == unix.EINTR:
		case err == nil, err == unix.EAGAIN:
			if err := waitFD(ctx, fd, unix.POLLOUT, deadline); err != nil {
				return off, err
			}
		default:
			return off, err
		}
	}
	return off, nil
}

// errNotTaking is returned when a device accepts no more data before the deadline.
var errNotTaking = errors.New("the printer did not take the data in time")

// waitFD waits until fd is ready for events, the deadline passes or ctx ends.
func waitFD(ctx context.Context, fd int, events int16, deadline time.Time) error {
	for {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%w (%w)", errNotTaking, os.ErrDeadlineExceeded)
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(pfd, int(min(left, pollSlice)/time.Millisecond)+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		switch re := pfd[0].Revents; {
		case re&events != 0:
			return nil
		case re&unix.POLLNVAL != 0:
			return unix.EBADF
		case re&(unix.POLLERR|unix.POLLHUP) != 0:
			return fmt.Errorf("device error or hang-up: %w", unix.EIO)
		}
	}
}

// readFD reads from a non-blocking descriptor into buf until complete says the
// reply is whole, the deadline passes or ctx ends. A timeout is not an error: the
// bytes read so far are returned.
func readFD(ctx context.Context, fd int, deadline time.Time, complete func([]byte) bool) ([]byte, error) {
	var buf []byte
	tmp := make([]byte, 256)
	for !complete(buf) {
		n, err := unix.Read(fd, tmp)
		if n > 0 {
			buf = append(buf, tmp[:n]...)
			continue
		}
		switch {
		case err == unix.EINTR:
		case err == nil: // end of file: nothing more will come
			return buf, nil
		case err == unix.EAGAIN:
			if err := waitFD(ctx, fd, unix.POLLIN, deadline); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					return buf, nil
				}
				return buf, err
			}
		default:
			return buf, err
		}
	}
	return buf, nil
}

// discardInput reads and drops whatever is waiting on a non-blocking descriptor.
func discardInput(fd int) {
	tmp := make([]byte, 256)
	for range 64 {
		n, err := unix.Read(fd, tmp)
		if n <= 0 || err != nil {
			return
		}
	}
}

// deviceError names what is wrong with a device path in the operator's words.
func deviceError(dev string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV):
		return fmt.Errorf("printer.device %s does not exist: is the printer plugged in and switched on? (%w)", dev, err)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("no permission to open %s: give the service user access (groups dialout or lp) (%w)", dev, err)
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("%s is in use by another program (%w)", dev, err)
	}
	return fmt.Errorf("cannot open %s: %w", dev, err)
}

// earliest returns the sooner of a deadline and ctx's deadline.
func earliest(ctx context.Context, d time.Time) time.Time {
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}
