package stationtest

import (
	"bytes"
	"testing"
)

func TestSplitter(t *testing.T) {
	zpl1 := "^XA^FO50,50^FDone^FS^XZ"
	zpl2 := "^XA^FO50,50^FDtwo^FS^XZ"
	tspl := "SIZE 50 mm,30 mm\r\nCLS\r\nTEXT 10,10,\"3\",0,1,1,\"x\"\r\nPRINT 1,1\r\n"
	tests := []struct {
		name    string
		chunks  []string
		labels  []string
		queries string
		rest    string
	}{
		{"one zpl", []string{zpl1}, []string{zpl1}, "", ""},
		{"two zpl with newlines", []string{zpl1 + "\r\n" + zpl2 + "\n"}, []string{zpl1, zpl2}, "", ""},
		{"zpl split in bytes", splitEvery(zpl1+zpl2, 1), []string{zpl1, zpl2}, "", ""},
		{"status after label", []string{zpl1 + "~HS"}, []string{zpl1}, "Z", ""},
		{"status split", []string{"~", "H", "S"}, nil, "Z", ""},
		{"status before label", []string{"~HS" + zpl1}, []string{zpl1}, "Z", ""},
		{"tspl", []string{tspl}, []string{tspl}, "", ""},
		{"tspl split", splitEvery(tspl, 3), []string{tspl}, "", ""},
		{"tspl status", []string{"\x1b!?"}, nil, "T", ""},
		{"partial", []string{"^XA^FDhalf"}, nil, "", "^XA^FDhalf"},
		{"print inside text is not a line", []string{"TEXT 1,1,\"3\",0,1,1,\"PRINT\"\r\n"}, nil, "", "TEXT 1,1,\"3\",0,1,1,\"PRINT\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sp splitter
			var labels []string
			var queries []byte
			for _, c := range tt.chunks {
				for _, ev := range sp.feed([]byte(c)) {
					if ev.label != nil {
						labels = append(labels, string(ev.label))
					} else {
						queries = append(queries, ev.query)
					}
				}
			}
			if len(labels) != len(tt.labels) {
				t.Fatalf("labels = %q, want %q", labels, tt.labels)
			}
			for i := range labels {
				if labels[i] != tt.labels[i] {
					t.Errorf("label %d = %q, want %q", i, labels[i], tt.labels[i])
				}
			}
			if string(queries) != tt.queries {
				t.Errorf("queries = %q, want %q", queries, tt.queries)
			}
			if got := string(sp.rest()); got != tt.rest {
				t.Errorf("rest = %q, want %q", got, tt.rest)
			}
		})
	}
}

func splitEvery(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func TestReplies(t *testing.T) {
	p := NewFakePrinter()
	p.SetPaperOut(true)
	p.SetHeadOpen(true)
	got := p.handle(3, []event{{query: queryZPL}, {query: queryTSPL}})
	want := "\x02030,1,0,1245,000,0,0,0,000,0,0,0\x03\r\n\x02001,0,1,0,1,2,4,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n\x05"
	if !bytes.Equal(got, []byte(want)) {
		t.Errorf("replies = %q, want %q", got, want)
	}
	p.SetNoReply(true)
	if got := p.handle(3, []event{{query: queryZPL}}); len(got) != 0 {
		t.Errorf("reply with no-reply fault = %q", got)
	}
}
