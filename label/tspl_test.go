package label

import (
	"regexp"
	"strings"
	"testing"
)

// tsplLine matches one QRCODE or TEXT line of our TSPL output; group 1 is the
// quoted data without its quotes.
var tsplLine = regexp.MustCompile(`^(?:QRCODE \d+,\d+,Q,\d+,A,0,M2,|TEXT \d+,\d+,"[1-5]",0,\d+,\d+,)"(.*)"$`)

// tsplFields splits a TSPL label into the unescaped data of its fields, failing
// the test on anything our renderer does not write.
func tsplFields(t testing.TB, tspl []byte) []string {
	t.Helper()
	s := string(tspl)
	if !strings.HasSuffix(s, "\r\n") {
		t.Fatalf("does not end in CR LF: %q", s)
	}
	lines := strings.Split(strings.TrimSuffix(s, "\r\n"), "\r\n")
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			t.Fatalf("bare CR or LF in line %q", l)
		}
		for i := 0; i < len(l); i++ {
			if l[i] < 0x20 || l[i] == 0x7f {
				t.Fatalf("byte %#x in line %q", l[i], l)
			}
		}
	}
	if n := countPrefix(lines, "PRINT"); n != 1 || lines[len(lines)-1] != "PRINT 1,1" {
		t.Fatalf("want exactly one PRINT 1,1, as the last line:\n%s", s)
	}
	if !regexp.MustCompile(`^SIZE [\d.]+ mm,[\d.]+ mm$`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^GAP [\d.]+ mm,0$`).MatchString(lines[1]) ||
		lines[2] != "DIRECTION 1" || lines[3] != "CODEPAGE 1252" || lines[4] != "CLS" {
		t.Fatalf("bad header:\n%s", s)
	}
	var fields []string
	for _, l := range lines[5 : len(lines)-1] {
		m := tsplLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("unexpected line %q", l)
		}
		if strings.Contains(strings.ReplaceAll(m[1], `\["]`, ""), `"`) {
			t.Fatalf("unescaped quote in line %q", l)
		}
		fields = append(fields, strings.ReplaceAll(m[1], `\["]`, `"`))
	}
	return fields
}

func TestTSPLQuotes(t *testing.T) {
	d := deviceData()
	d.Product.Name = `Display 7" "Pro"`
	d.Product.Model = `"`
	b, err := TSPL(DefaultDevice(), d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"Display 7\["] \["]Pro\["]"`) || !strings.Contains(string(b), `,"\["]"`+"\r\n") {
		t.Errorf("quotes not escaped:\n%s", b)
	}
	got := tsplFields(t, b)
	if got[1] != d.Product.Name || got[2] != d.Product.Model {
		t.Errorf("round trip: %q", got)
	}
}

func TestTSPLInjection(t *testing.T) {
	for _, name := range []string{"x\r\nPRINT 100,1", "x\nCLS", "x\rPRINT 5", "\x1b!?"} {
		d := deviceData()
		d.Product.Name = name
		_, err := TSPL(DefaultDevice(), d)
		wantInvalid(t, err, "field 2 (product)", "control character")
	}
	d := deviceData()
	d.Product.Name = `x","3",0,1,1,"y`
	b, err := TSPL(DefaultDevice(), d)
	if err != nil {
		t.Fatal(err)
	}
	if got := tsplFields(t, b)[1]; got != d.Product.Name {
		t.Errorf("round trip %q", got)
	}
}

func TestTSPLFaces(t *testing.T) {
	tests := []struct {
		dpi, h int
		font   string
		mul    int
	}{
		{203, 10, "", 0},
		{203, 12, "1", 1},
		{203, 20, "2", 1},
		{203, 23, "2", 1},
		{203, 32, "4", 1},
		{203, 48, "5", 1},
		{203, 64, "4", 2},
		{203, 480, "5", 10},
		{300, 39, "3", 1}, // 300 dpi: "1" is 12 × 20, "3" 24 × 32, "4" 32 × 48
		{300, 40, "1", 2},
		{300, 48, "4", 1},
	}
	for _, tt := range tests {
		f, ok := tsplMetrics{tt.dpi}.largest(tt.h)
		if !ok {
			if tt.font != "" {
				t.Errorf("%d dpi, %d dots: no face", tt.dpi, tt.h)
			}
			continue
		}
		if f.font != tt.font || f.mul != tt.mul {
			t.Errorf("%d dpi, %d dots: font %s×%d, want %s×%d", tt.dpi, tt.h, f.font, f.mul, tt.font, tt.mul)
		}
	}
}

func TestTSPLStructure(t *testing.T) {
	tmpl := DefaultBatch()
	tmpl.Gap = 3.5
	b, err := TSPL(tmpl, batchData())
	if err != nil {
		t.Fatal(err)
	}
	got := tsplFields(t, b)
	want := []string{"42", "Widget Pro 3000", "WP-3000", "Batch 42", "Qty 250", "2026-03-14", "Station line-1"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("fields %q, want %q", got, want)
	}
	if !strings.HasPrefix(string(b), "SIZE 100 mm,50 mm\r\nGAP 3.5 mm,0\r\n") {
		t.Errorf("header:\n%s", b)
	}
	if !strings.Contains(string(b), "QRCODE 32,32,Q,6,A,0,M2,\"42\"\r\n") {
		t.Errorf("QR line:\n%s", b)
	}
}

// countPrefix counts the lines that start with prefix.
func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}
