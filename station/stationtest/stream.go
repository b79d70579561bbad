package stationtest

import (
	"bytes"
)

// Status queries a fake printer answers.
const (
	queryZPL  = 'Z' // ~HS
	queryTSPL = 'T' // ESC !?
)

var (
	zplHostStatus = []byte("~HS")
	tsplStatus    = []byte("\x1b!?")
	zplEnd        = []byte("^XZ")
	tsplPrint     = []byte("PRINT")
)

// event is one thing found in a printer's input: a whole label or a status query.
type event struct {
	label []byte
	query byte
}

// splitter cuts a printer's byte stream into labels (ending in ^XZ for ZPL or a
// PRINT line for TSPL) and status queries (~HS, ESC !?), in the order received.
type splitter struct {
	buf []byte
}

// feed adds received bytes and returns the events they complete.
func (s *splitter) feed(p []byte) []event {
	s.buf = append(s.buf, p...)
	var evs []event
	for {
		kind, at, end := s.next()
		if kind == 0 {
			return evs
		}
		switch kind {
		case 'L':
			label := bytes.TrimLeft(s.buf[:end], " \t\r\n")
			evs = append(evs, event{label: bytes.Clone(label)})
			s.buf = s.buf[end:]
		default:
			evs = append(evs, event{query: kind})
			s.buf = append(s.buf[:at], s.buf[end:]...)
		}
		if len(s.buf) == 0 {
			s.buf = nil
		}
	}
}

// rest returns the bytes of an unfinished label, blank space left out.
func (s *splitter) rest() []byte { return bytes.TrimSpace(s.buf) }

// next finds the earliest complete event in the buffer: its kind ('L' label,
// queryZPL, queryTSPL, 0 none), where it starts and where it ends.
func (s *splitter) next() (kind byte, at, end int) {
	best := -1
	consider := func(k byte, a, e int) {
		if a >= 0 && (best < 0 || a < best) {
			kind, at, end, best = k, a, e, a
		}
	}
	if i := bytes.Index(s.buf, zplHostStatus); i >= 0 {
		consider(queryZPL, i, i+len(zplHostStatus))
	}
	if i := bytes.Index(s.buf, tsplStatus); i >= 0 {
		consider(queryTSPL, i, i+len(tsplStatus))
	}
	if i := bytes.Index(s.buf, zplEnd); i >= 0 {
		// A label is an event at its end: queries inside it come first.
		consider('L', i, i+len(zplEnd))
	}
	if a, e := printLine(s.buf); a >= 0 {
		consider('L', a, e)
	}
	return kind, at, end
}

// printLine finds the first complete TSPL PRINT line: its start and the end of its
// line feed, or -1.
func printLine(b []byte) (at, end int) {
	off := 0
	for {
		i := bytes.Index(b[off:], tsplPrint)
		if i < 0 {
			return -1, -1
		}
		i += off
		if i == 0 || b[i-1] == '\n' {
			nl := bytes.IndexByte(b[i:], '\n')
			if nl < 0 {
				return -1, -1
			}
			return i, i + nl + 1
		}
		off = i + 1
	}
}
