package station

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"serialbox/serializer"
)

// Printer states reported in Status.State; the domain defines them, so that the
// operator page and the metrics name the same states without importing station.
const (
	StateReady      = serializer.PrinterReady      // can print
	StatePaperOut   = serializer.PrinterPaperOut   // out of labels
	StateHeadOpen   = serializer.PrinterHeadOpen   // print head or cover open
	StatePaused     = serializer.PrinterPaused     // paused by the operator
	StateRibbonOut  = serializer.PrinterRibbonOut  // out of ribbon
	StateBufferFull = serializer.PrinterBufferFull // receive buffer full
	StateOffline    = serializer.PrinterOffline    // cannot be reached
	StateFaulted    = serializer.PrinterFaulted    // reachable but not working (no reply, jam, error)
	StateUnknown    = serializer.PrinterUnknown    // not checked yet, or the printer reports nothing
)

// Status is what a printer says about itself, in the operator's words.
type Status struct {
	State           string    `json:"state"`            // one of the State constants
	Message         string    `json:"message"`          // e.g. "Paper out: load labels"
	LabelsRemaining int       `json:"labels_remaining"` // labels still to print in the current batch, when known
	CheckedAt       time.Time `json:"checked_at"`       // when the printer was asked; zero if never
}

// Held reports whether the printer said it cannot print now (paper or ribbon out,
// head open, paused, buffer full): jobs wait in the queue until it can.
func (s Status) Held() bool {
	switch s.State {
	case StatePaperOut, StateHeadOpen, StatePaused, StateRibbonOut, StateBufferFull:
		return true
	}
	return false
}

// Operator messages for each condition a printer can report.
const (
	msgReady      = "Ready"
	msgHeadOpen   = "Print head open: close the print head"
	msgCoverOpen  = "Cover open: close the printer cover"
	msgPaperOut   = "Paper out: load labels"
	msgRibbonOut  = "Ribbon out: load a ribbon"
	msgPaused     = "Paused: press PAUSE on the printer to resume"
	msgBufferFull = "Receive buffer full: wait for the printer to catch up"
	msgPaperJam   = "Paper jam: clear the jammed labels"
	msgTooHot     = "Print head too hot: let the printer cool down"
	msgTooCold    = "Print head too cold: warm up the printer"
	msgBadRAM     = "Printer memory corrupted: its settings were lost; check the printer setup"
	msgError      = "Printer error: see the printer's display"
	msgNoReply    = "No reply from the printer: check paper, print head and power"
	msgNotTaking  = "The printer is not taking data: check paper, print head and power"
	msgBadReply   = "Unreadable status reply from the printer: check the printer language setting"
	msgNoStatus   = "This printer reports no status"
	msgNotChecked = "Not checked yet"
)

// condition is one thing a printer reported, in order of importance.
type condition struct {
	state string
	msg   string
}

// summarize turns conditions (most important first) into a Status.
func summarize(conds []condition, ready string) Status {
	if len(conds) == 0 {
		return Status{State: StateReady, Message: ready}
	}
	msgs := make([]string, len(conds))
	for i, c := range conds {
		msgs[i] = c.msg
	}
	return Status{State: conds[0].state, Message: strings.Join(msgs, "; ")}
}

// ParseZPLHostStatus reads a ZPL printer's reply to ~HS: three STX...ETX CR LF
// strings, of which the first two carry the state. Bytes outside the frames are
// ignored.
func ParseZPLHostStatus(b []byte) (Status, error) {
	var frames [][]byte
	for len(frames) < 3 {
		i := bytes.IndexByte(b, 0x02)
		if i < 0 {
			break
		}
		b = b[i+1:]
		j := bytes.IndexByte(b, 0x03)
		if j < 0 {
			break
		}
		frames = append(frames, b[:j])
		b = b[j+1:]
	}
	if len(frames) < 2 {
		return Status{}, fmt.Errorf("~HS reply: %d of 3 STX/ETX strings", len(frames))
	}
	f1 := splitFields(frames[0])
	f2 := splitFields(frames[1])
	if len(f1) < 8 {
		return Status{}, fmt.Errorf("~HS reply: string 1 has %d fields, want 12", len(f1))
	}
	if len(f2) < 9 {
		return Status{}, fmt.Errorf("~HS reply: string 2 has %d fields, want 11", len(f2))
	}
	var err error
	flag := func(fields []string, i int, name string) bool {
		if i >= len(fields) {
			return false
		}
		switch fields[i] {
		case "0":
			return false
		case "1":
			return true
		}
		if err == nil {
			err = fmt.Errorf("~HS reply: %s flag is %q, want 0 or 1", name, fields[i])
		}
		return false
	}
	number := func(fields []string, i int, name string) int {
		n, e := strconv.Atoi(fields[i])
		if (e != nil || n < 0) && err == nil {
			err = fmt.Errorf("~HS reply: %s is %q, want a number", name, fields[i])
		}
		return max(n, 0)
	}
	paperOut := flag(f1, 1, "paper out")
	paused := flag(f1, 2, "pause")
	formats := number(f1, 4, "formats in buffer")
	bufferFull := flag(f1, 5, "buffer full")
	partial := flag(f1, 7, "partial format")
	badRAM := flag(f1, 9, "corrupt RAM")
	tooCold := flag(f1, 10, "under temperature")
	tooHot := flag(f1, 11, "over temperature")
	headUp := flag(f2, 2, "head up")
	ribbonOut := flag(f2, 3, "ribbon out")
	remaining := number(f2, 8, "labels remaining")
	if err != nil {
		return Status{}, err
	}
	var conds []condition
	add := func(on bool, state, msg string) {
		if on {
			conds = append(conds, condition{state, msg})
		}
	}
	add(headUp, StateHeadOpen, msgHeadOpen)
	add(paperOut, StatePaperOut, msgPaperOut)
	add(ribbonOut, StateRibbonOut, msgRibbonOut)
	add(tooHot, StateFaulted, msgTooHot)
	add(tooCold, StateFaulted, msgTooCold)
	add(badRAM, StateFaulted, msgBadRAM)
	add(paused, StatePaused, msgPaused)
	add(bufferFull, StateBufferFull, msgBufferFull)
	ready := msgReady
	if formats > 0 || partial || remaining > 0 {
		ready = "Ready, printing"
		if remaining > 0 {
			ready += fmt.Sprintf(" (%d labels to go)", remaining)
		}
	}
	s := summarize(conds, ready)
	s.LabelsRemaining = remaining
	return s, nil
}

func splitFields(b []byte) []string {
	fields := strings.Split(string(b), ",")
	for i, f := range fields {
		fields[i] = strings.TrimSpace(f)
	}
	return fields
}

// ParseTSPLStatus reads a TSPL printer's one-byte reply to ESC !?.
func ParseTSPLStatus(b byte) Status {
	var conds []condition
	add := func(bit byte, state, msg string) {
		if b&bit != 0 {
			conds = append(conds, condition{state, msg})
		}
	}
	add(0x01, StateHeadOpen, msgHeadOpen)
	add(0x40, StateHeadOpen, msgCoverOpen)
	add(0x02, StateFaulted, msgPaperJam)
	add(0x04, StatePaperOut, msgPaperOut)
	add(0x08, StateRibbonOut, msgRibbonOut)
	add(0x80, StateFaulted, msgError)
	add(0x10, StatePaused, msgPaused)
	ready := msgReady
	if b&0x20 != 0 {
		ready = "Ready, printing"
	}
	return summarize(conds, ready)
}

// statusQuery returns the bytes that ask a printer speaking language for its status,
// nil when the language has none.
func statusQuery(language string) []byte {
	switch language {
	case LanguageZPL:
		return []byte("~HS")
	case LanguageTSPL:
		return []byte("\x1b!?")
	}
	return nil
}

// replyComplete reports whether buf holds a whole status reply.
func replyComplete(language string, buf []byte) bool {
	switch language {
	case LanguageZPL:
		return bytes.Count(buf, []byte{0x03}) >= 3
	case LanguageTSPL:
		return len(buf) >= 1
	}
	return true
}

// parseReply turns what the printer answered (possibly nothing) into a Status.
func parseReply(language string, buf []byte) (Status, error) {
	if len(buf) == 0 {
		return Status{State: StateFaulted, Message: msgNoReply}, errNoReply
	}
	switch language {
	case LanguageZPL:
		s, err := ParseZPLHostStatus(buf)
		if err != nil {
			return Status{State: StateFaulted, Message: msgBadReply}, err
		}
		return s, nil
	case LanguageTSPL:
		return ParseTSPLStatus(buf[len(buf)-1]), nil
	}
	return Status{State: StateUnknown, Message: msgNoStatus}, nil
}

// errNoReply is returned with a faulted Status when the printer did not answer.
var errNoReply = errors.New("no status reply")

// offline describes a printer that cannot be reached.
func offline(what string, err error) Status {
	return Status{State: StateOffline, Message: fmt.Sprintf("Printer offline: %s (%v): check power and cable", what, err)}
}
