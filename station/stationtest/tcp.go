package stationtest

import (
	"errors"
	"net"
	"time"
)

// FakePrinter is a fake network label printer on a raw TCP port. It serves one
// connection at a time, as real printers do; others wait in the listen backlog.
type FakePrinter struct {
	printer
	addr      string
	ln        net.Listener
	conn      *net.TCPConn  // connection being served
	done      chan struct{} // closed when the accept loop has stopped
	dropAfter int           // drop the next connection after this many bytes; <0 off
	readDelay time.Duration // pause before each read, to simulate a slow printer
}

// NewFakePrinter returns a fake network printer; Start makes it listen.
func NewFakePrinter() *FakePrinter {
	p := &FakePrinter{dropAfter: -1}
	p.init()
	return p
}

// StartFakePrinter returns a fake network printer listening on addr
// ("127.0.0.1:0" picks a free port).
func StartFakePrinter(addr string) (*FakePrinter, error) {
	p := NewFakePrinter()
	if err := p.Start(addr); err != nil {
		return nil, err
	}
	return p, nil
}

// Start listens on addr and serves connections until Kill or Close.
func (p *FakePrinter) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		ln.Close()
		return errors.New("fake printer already running")
	}
	p.ln = ln
	p.addr = ln.Addr().String()
	p.done = make(chan struct{})
	go p.accept(ln, p.done)
	return nil
}

// Addr returns the address the printer listens on, host:port.
func (p *FakePrinter) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// Kill drops the printer off the network: it stops listening and resets the
// connection being served, as a printer that is switched off or unplugged.
func (p *FakePrinter) Kill() {
	p.mu.Lock()
	ln, conn, done := p.ln, p.conn, p.done
	p.ln, p.conn = nil, nil
	if conn != nil {
		p.stats.Dropped++
	}
	p.mu.Unlock()
	if ln == nil {
		return
	}
	ln.Close()
	if conn != nil {
		conn.SetLinger(0)
		conn.Close()
	}
	<-done
	if p.Logf != nil {
		p.Logf("killed")
	}
}

// Restart brings a killed printer back on the same address.
func (p *FakePrinter) Restart() error {
	p.Kill()
	err := p.Start(p.Addr())
	if err == nil && p.Logf != nil {
		p.Logf("restarted on %s", p.Addr())
	}
	return err
}

// Close stops the printer.
func (p *FakePrinter) Close() error {
	p.Kill()
	return nil
}

// DropAfter makes the printer reset the next connection after receiving n bytes, as
// a printer that loses power or network in the middle of a job. A connection that
// ends sooner (a status query) passes the fault on to the next one. n < 0 turns it
// off.
func (p *FakePrinter) DropAfter(n int) {
	p.mu.Lock()
	p.dropAfter = n
	p.mu.Unlock()
}

// SetReadDelay makes the printer pause before each read of its socket, as a slow
// printer whose buffer is full.
func (p *FakePrinter) SetReadDelay(d time.Duration) {
	p.mu.Lock()
	p.readDelay = d
	p.mu.Unlock()
}

func (p *FakePrinter) accept(ln net.Listener, done chan struct{}) {
	defer close(done)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.serve(c.(*net.TCPConn))
	}
}

// serve reads one connection to its end, recording labels and answering queries.
func (p *FakePrinter) serve(c *net.TCPConn) {
	p.mu.Lock()
	if p.ln == nil { // killed between accept and now
		p.mu.Unlock()
		c.SetLinger(0)
		c.Close()
		return
	}
	p.conn = c
	p.stats.Connections++
	limit := p.dropAfter
	p.dropAfter = -1
	p.mu.Unlock()

	var sp splitter
	buf := make([]byte, 32<<10)
	received := 0
	defer func() {
		// The fault did not strike: it waits for the next connection.
		p.mu.Lock()
		if limit >= 0 && p.dropAfter < 0 {
			p.dropAfter = limit
		}
		p.mu.Unlock()
	}()
	for {
		p.mu.Lock()
		delay := p.readDelay
		p.mu.Unlock()
		if delay > 0 {
			time.Sleep(delay)
		}
		n, err := c.Read(buf)
		if n > 0 {
			drop := limit >= 0 && received+n >= limit
			if drop {
				n = max(limit-received, 0)
			}
			received += n
			reply := p.handle(n, sp.feed(buf[:n]))
			if !p.serving(c) {
				return
			}
			if drop {
				p.mu.Lock()
				limit = -1
				p.stats.Dropped++
				p.conn = nil
				p.mu.Unlock()
				if p.Logf != nil {
					p.Logf("dropped connection after %d bytes", received)
				}
				c.SetLinger(0)
				c.Close()
				return
			}
			if len(reply) > 0 {
				c.Write(reply)
			}
		}
		if err != nil {
			break
		}
	}
	if len(sp.rest()) > 0 {
		p.mu.Lock()
		p.stats.Partial++
		p.mu.Unlock()
	}
	p.mu.Lock()
	if p.conn == c {
		p.conn = nil
	}
	p.mu.Unlock()
	c.Close()
}

// serving reports whether c is still the connection being served (not killed).
func (p *FakePrinter) serving(c *net.TCPConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conn == c
}
