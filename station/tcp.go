package station

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// TCP sends jobs to a network printer's raw port (JetDirect, 9100). Each job gets
// its own connection: connect, write, half-close, wait for the printer to close its
// side. No connection is held between jobs, because a held connection blocks every
// other client of the printer.
type TCP struct {
	addr     string
	language string
	to       Timeouts
	dialer   net.Dialer
	mu       sync.Mutex // one connection at a time
}

// NewTCP returns a transport for the printer at addr (host:port) speaking language.
func NewTCP(addr, language string, to Timeouts) *TCP {
	to = to.withDefaults()
	return &TCP{addr: addr, language: language, to: to, dialer: net.Dialer{Timeout: to.Connect}}
}

// Send connects, writes the whole job, half-closes and waits until the printer has
// read everything and closed its side, or, for a printer that never closes, until
// its network stack has acknowledged every byte. A reset, or unacknowledged bytes
// at the finish timeout, make the delivery uncertain.
func (t *TCP) Send(ctx context.Context, job Job) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	conn, err := t.dial(ctx)
	if err != nil {
		return unreachable(err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	conn.SetWriteDeadline(time.Now().Add(t.to.Write))
	n, err := conn.Write(job.Data)
	if err != nil {
		return broken(n, len(job.Data), ctxErr(ctx, err))
	}
	if err := conn.CloseWrite(); err != nil {
		return broken(n, len(job.Data), ctxErr(ctx, err))
	}
	// The printer closes its side once it has read up to our FIN. Anything it says
	// before that (status, backchannel) is read and dropped.
	conn.SetReadDeadline(time.Now().Add(t.to.Finish))
	if _, err := io.Copy(io.Discard, conn); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
			// Some printers never close. If their network stack acknowledged every
			// byte, the job is in the printer as surely as a close would say.
			if q, ok := unacked(conn); ok && q == 0 {
				return nil
			}
			err = fmt.Errorf("printer did not confirm the end of the job within %s", t.to.Finish)
		}
		return broken(n, len(job.Data), ctxErr(ctx, err))
	}
	return nil
}

// Status opens a short connection and asks the printer for its status (~HS for ZPL,
// ESC !? for TSPL). A PDF printer is only checked for reachability.
func (t *TCP) Status(ctx context.Context) (Status, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	conn, err := t.dial(ctx)
	if err != nil {
		s := offline("cannot connect to "+t.addr, dialCause(err))
		s.CheckedAt = now
		return s, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	q := statusQuery(t.language)
	if q == nil {
		conn.CloseWrite()
		return Status{State: StateReady, Message: "Reachable (this printer reports no status)", CheckedAt: now}, nil
	}
	conn.SetDeadline(time.Now().Add(t.to.Reply))
	if _, err := conn.Write(q); err != nil {
		return Status{State: StateFaulted, Message: msgNoReply, CheckedAt: now}, err
	}
	var buf []byte
	tmp := make([]byte, 256)
	for !replyComplete(t.language, buf) {
		n, err := conn.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			break
		}
	}
	conn.CloseWrite()
	s, err := parseReply(t.language, buf)
	s.CheckedAt = now
	return s, err
}

// Close does nothing: no connection outlives a job.
func (t *TCP) Close() error { return nil }

// probe checks that the address resolves.
func (t *TCP) probe(ctx context.Context) error {
	host, _, err := net.SplitHostPort(t.addr)
	if err != nil {
		return unreachable(fmt.Errorf("printer.address %q: %w", t.addr, err))
	}
	if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
		return unreachable(fmt.Errorf("printer.address %q does not resolve: %w", t.addr, err))
	}
	return nil
}

func (t *TCP) dial(ctx context.Context) (*net.TCPConn, error) {
	c, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// dialCause shortens a dial error to its cause for the operator's message.
func dialCause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// ctxErr prefers the context's reason over the deadline error it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", context.Cause(ctx), err)
	}
	return err
}
