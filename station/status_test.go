package station_test

import (
	"strings"
	"testing"

	"serialbox/station"
)

// hs builds a ~HS reply from its first two strings, as printers send it.
func hs(s1, s2 string) string {
	return "\x02" + s1 + "\x03\r\n\x02" + s2 + "\x03\r\n\x021234,0\x03\r\n"
}

// ~HS replies in the layout of the ZPL II programming guide, one per condition.
var hostStatusReplies = []struct {
	name      string
	reply     string
	state     string
	message   string // substring
	remaining int
}{
	{"ready", hs("030,0,0,1245,000,0,0,0,000,0,0,0", "001,0,0,0,1,2,4,0,00000000,1,000"), station.StateReady, "Ready", 0},
	{"printing", hs("030,0,0,1245,002,0,0,1,000,0,0,0", "001,0,0,0,1,2,4,0,00000003,1,000"), station.StateReady, "3 labels to go", 3},
	{"paper out", hs("030,1,0,1245,000,0,0,0,000,0,0,0", "001,0,0,0,1,2,4,0,00000000,1,000"), station.StatePaperOut, "Paper out: load labels", 0},
	{"paused", hs("030,0,1,1245,000,0,0,0,000,0,0,0", "001,0,0,0,1,2,4,0,00000000,1,000"), station.StatePaused, "Paused", 0},
	{"head open", hs("030,0,0,1245,000,0,0,0,000,0,0,0", "001,0,1,0,1,2,4,0,00000000,1,000"), station.StateHeadOpen, "Print head open", 0},
	{"ribbon out", hs("030,0,0,1245,000,0,0,0,000,0,0,0", "001,0,0,1,1,2,4,0,00000000,1,000"), station.StateRibbonOut, "Ribbon out", 0},
	{"buffer full", hs("030,0,0,1245,099,1,0,0,000,0,0,0", "001,0,0,0,1,2,4,0,00000000,1,000"), station.StateBufferFull, "buffer full", 0},
	{"over temperature", hs("030,0,0,1245,000,0,0,0,000,0,0,1", "001,0,0,0,1,2,4,0,00000000,1,000"), station.StateFaulted, "too hot", 0},
	{"head open wins over paper out", hs("030,1,1,1245,000,0,0,0,000,0,0,0", "001,0,1,0,1,2,4,0,00000000,1,000"), station.StateHeadOpen, "Print head open: close the print head; Paper out: load labels; Paused", 0},
	{"paper out while paused", hs("030,1,1,1245,000,0,0,0,000,0,0,0", "001,0,0,0,1,2,4,0,00000000,1,000"), station.StatePaperOut, "Paper out: load labels; Paused", 0},
	{"stale bytes before the reply", "\r\n\x03junk" + hs("030,0,0,1245,000,0,0,0,000,0,0,0", "001,0,0,0,1,2,4,0,00000000,1,000"), station.StateReady, "Ready", 0},
	{"spaces in fields", hs("030, 1, 0,1245,000,0,0,0,000,0,0,0", "001,0,0,0,1,2,4,0,00000000,1,000"), station.StatePaperOut, "Paper out", 0},
	{"third string missing", "\x02030,0,0,1245,000,0,0,0,000,0,0,0\x03\r\n\x02001,0,0,0,1,2,4,0,00000000,1,000\x03\r\n", station.StateReady, "Ready", 0},
}

func TestParseZPLHostStatus(t *testing.T) {
	for _, tt := range hostStatusReplies {
		t.Run(tt.name, func(t *testing.T) {
			got, err := station.ParseZPLHostStatus([]byte(tt.reply))
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tt.state || !strings.Contains(got.Message, tt.message) || got.LabelsRemaining != tt.remaining {
				t.Errorf("got %+v, want state %s, message containing %q, %d remaining", got, tt.state, tt.message, tt.remaining)
			}
		})
	}
}

func TestParseZPLHostStatusErrors(t *testing.T) {
	tests := []struct{ name, reply string }{
		{"empty", ""},
		{"one string", "\x02030,0,0,1245,000,0,0,0,000,0,0,0\x03\r\n"},
		{"no frames", "030,0,0,1245,000,0,0,0,000,0,0,0\r\n"},
		{"unterminated", "\x02030,0,0,1245,000,0,0,0,000,0,0,0\x03\r\n\x02001,0,0"},
		{"short string 1", hs("030,0,0", "001,0,0,0,1,2,4,0,00000000,1,000")},
		{"short string 2", hs("030,0,0,1245,000,0,0,0,000,0,0,0", "001,0,0")},
		{"bad flag", hs("030,x,0,1245,000,0,0,0,000,0,0,0", "001,0,0,0,1,2,4,0,00000000,1,000")},
		{"bad count", hs("030,0,0,1245,000,0,0,0,000,0,0,0", "001,0,0,0,1,2,4,0,-0000001,1,000")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := station.ParseZPLHostStatus([]byte(tt.reply)); err == nil {
				t.Errorf("ParseZPLHostStatus(%q) = %+v, want an error", tt.reply, s)
			}
		})
	}
}

func TestParseTSPLStatus(t *testing.T) {
	tests := []struct {
		b       byte
		state   string
		message string
	}{
		{0x00, station.StateReady, "Ready"},
		{0x20, station.StateReady, "printing"},
		{0x01, station.StateHeadOpen, "Print head open"},
		{0x02, station.StateFaulted, "Paper jam"},
		{0x03, station.StateHeadOpen, "Print head open: close the print head; Paper jam"},
		{0x04, station.StatePaperOut, "Paper out: load labels"},
		{0x05, station.StateHeadOpen, "Paper out"},
		{0x08, station.StateRibbonOut, "Ribbon out"},
		{0x0c, station.StatePaperOut, "Paper out: load labels; Ribbon out"},
		{0x10, station.StatePaused, "Paused"},
		{0x14, station.StatePaperOut, "Paused"},
		{0x40, station.StateHeadOpen, "Cover open"},
		{0x80, station.StateFaulted, "Printer error"},
	}
	for _, tt := range tests {
		got := station.ParseTSPLStatus(tt.b)
		if got.State != tt.state || !strings.Contains(got.Message, tt.message) {
			t.Errorf("ParseTSPLStatus(%#02x) = %+v, want %s containing %q", tt.b, got, tt.state, tt.message)
		}
	}
}

func TestStatusHeld(t *testing.T) {
	for state, held := range map[string]bool{
		station.StateReady: false, station.StatePaperOut: true, station.StateHeadOpen: true,
		station.StatePaused: true, station.StateRibbonOut: true, station.StateBufferFull: true,
		station.StateOffline: false, station.StateFaulted: false, station.StateUnknown: false,
	} {
		if got := (station.Status{State: state}).Held(); got != held {
			t.Errorf("Status{%s}.Held() = %v, want %v", state, got, held)
		}
	}
}

var knownStates = map[string]bool{
	station.StateReady: true, station.StatePaperOut: true, station.StateHeadOpen: true,
	station.StatePaused: true, station.StateRibbonOut: true, station.StateBufferFull: true,
	station.StateFaulted: true,
}

func FuzzParseZPLHostStatus(f *testing.F) {
	for _, r := range hostStatusReplies {
		f.Add([]byte(r.reply))
	}
	f.Add([]byte("\x02\x03\x02\x03\x02\x03"))
	f.Add([]byte("\x02,,,,,,,,,,,\x03\x02,,,,,,,,,,\x03"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := station.ParseZPLHostStatus(b)
		if err != nil {
			return
		}
		if !knownStates[s.State] || s.Message == "" || s.LabelsRemaining < 0 {
			t.Errorf("ParseZPLHostStatus(%q) = %+v", b, s)
		}
	})
}
