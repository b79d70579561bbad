package label

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// zplField matches one field line of our ZPL output; group 1 is the command up to
// ^FD, group 2 the escaped data.
var zplField = regexp.MustCompile(`^((?:\^BY2,3,10)?\^FO\d+,\d+(?:\^BQN,2,\d+\^FH\^FDQA,|\^A(?:0N,\d+,\d+|@N,\d+,\d+,[A-Z]:[A-Z0-9_.-]+)\^FH\^FD))([^^~]*)\^FS$`)

// zplFields splits a ZPL label into the unescaped data of its fields (after the QA,
// prefix for QR codes), failing the test on anything our renderer does not write.
func zplFields(t testing.TB, zpl []byte) []string {
	t.Helper()
	s := string(zpl)
	if strings.Count(s, "^XA") != 1 || strings.Count(s, "^XZ") != 1 {
		t.Fatalf("want exactly one ^XA and one ^XZ:\n%q", s)
	}
	if strings.ContainsAny(s, "~\r") {
		t.Fatalf("tilde or CR in ZPL:\n%q", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x7f || (c < 0x20 && c != '\n') {
			t.Fatalf("byte %#x at %d: ZPL output must be printable ASCII", c, i)
		}
	}
	lines := strings.Split(s, "\n")
	if !regexp.MustCompile(`^\^XA\^CI28\^PW\d+\^LL\d+$`).MatchString(lines[0]) ||
		lines[len(lines)-2] != "^PQ1^XZ" || lines[len(lines)-1] != "" {
		t.Fatalf("bad header or trailer:\n%s", s)
	}
	var fields []string
	for _, line := range lines[1 : len(lines)-2] {
		m := zplField.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unexpected line %q", line)
		}
		v, err := unescapeZPL(m[2])
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		fields = append(fields, v)
	}
	return fields
}

// unescapeZPL undoes ^FH escaping: _XX is the byte 0xXX.
func unescapeZPL(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '_' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated escape at %d", i)
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape %q", s[i:i+3])
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

func TestZPLDefaultDeviceSize(t *testing.T) {
	b, err := ZPL(DefaultDevice(), deviceData())
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 400 {
		t.Errorf("default device label is %d bytes, want at most 400:\n%s", len(b), b)
	}
	t.Logf("default device label: %d bytes", len(b))
}

func TestZPLQRField(t *testing.T) {
	origin := map[string]string{"device": "^FO20,10", "claim": "^FO16,6"} // ^FO y is 10 dots above the QR code
	for _, tmpl := range []Template{DefaultDevice(), claimTemplate()} {
		d := deviceData()
		b, err := ZPL(tmpl, d)
		if err != nil {
			t.Fatal(err)
		}
		pt, _ := parsePayload(tmpl.Payload)
		payload, _ := pt.execute(d)
		want := fmt.Sprintf("^BY2,3,10%s^BQN,2,4^FH^FDQA,%s^FS", origin[tmpl.Name], payload) // 0.5 mm modules: 4 dots at 203 dpi
		if !strings.Contains(string(b), "^BQN,2,") || !strings.Contains(string(b), "^FDQA,"+payload) || !strings.Contains(string(b), want) {
			t.Errorf("%s: no %q in\n%s", tmpl.Name, want, b)
		}
		if strings.Contains(string(b), "^GF") {
			t.Errorf("%s: QR code sent as a graphic", tmpl.Name)
		}
		if got := zplFields(t, b)[0]; got != payload {
			t.Errorf("%s: QR payload %q, want %q", tmpl.Name, got, payload)
		}
	}
}

func TestZPLDimensions(t *testing.T) {
	tests := []struct {
		w, h   float64
		dpi    int
		pw, ll int
	}{
		{50, 30, 203, 400, 240},
		{100, 50, 203, 799, 400},
		{50, 30, 300, 591, 354},
		{101.6, 152.4, 203, 812, 1218},
		{101.6, 152.4, 300, 1200, 1800},
		{25, 10, 600, 591, 236},
		{104, 300, 600, 2457, 7087},
	}
	for _, tt := range tests {
		tmpl := Template{Name: "size", Width: tt.w, Height: tt.h, DPI: tt.dpi,
			Fields: []Field{{Kind: KindText, X: 1, Y: 1, Height: 2}}}
		d := deviceData()
		d.Text = "x"
		b, err := ZPL(tmpl, d)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("^PW%d^LL%d\n", tt.pw, tt.ll)
		if !strings.Contains(string(b), want) {
			t.Errorf("%g × %g mm at %d dpi: no %q in\n%s", tt.w, tt.h, tt.dpi, want, b)
		}
		if pw := int(math.Round(tt.w * float64(tt.dpi) / 25.4)); pw != tt.pw {
			t.Errorf("table: %g mm at %d dpi is %d dots, not %d", tt.w, tt.dpi, pw, tt.pw)
		}
	}
}

func TestZPLEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text 123", "plain text 123"},
		{"^XZ", "_5EXZ"},
		{"~JR", "_7EJR"},
		{"a_b", "a_5Fb"},
		{"_5E", "_5F5E"},
		{"\x03\x1f\x7f", "_03_1F_7F"},
		{"\r\n\t", "_0D_0A_09"},
		{"é", "_C3_A9"},
		{"ß", "_C3_9F"},
		{"日本", "_E6_97_A5_E6_9C_AC"},
		{"Д", "_D0_94"},
		{",;:\"'\\", ",;:\"'\\"},
	}
	for _, tt := range tests {
		got := string(appendZPLData(nil, tt.in))
		if got != tt.want {
			t.Errorf("escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if back, err := unescapeZPL(got); err != nil || back != tt.in {
			t.Errorf("unescape(%q) = %q, %v", got, back, err)
		}
	}
}

func TestZPLNonASCIINames(t *testing.T) {
	tests := []struct{ name, escaped string }{
		{"Café", "Caf_C3_A9"},
		{"Straße", "Stra_C3_9Fe"},
		{"Ærø ØÅ", "_C3_86r_C3_B8 _C3_98_C3_85"},
		{"€ “q”", "_E2_82_AC _E2_80_9Cq_E2_80_9D"},
		{"日本", "_E6_97_A5_E6_9C_AC"},
		{"Дрель", "_D0_94_D1_80_D0_B5_D0_BB_D1_8C"},
		{"emoji 🔧", "emoji _F0_9F_94_A7"},
	}
	named := DefaultDevice()
	named.ZPLFont = "E:ANMDJ.TTF"
	for _, tt := range tests {
		d := deviceData()
		d.Product.Name = tt.name
		tmpl := DefaultDevice()
		if !zplFont0(tt.name) {
			// Font 0 lacks the glyphs: refused, unless a printer font is named.
			_, err := ZPL(tmpl, d)
			wantInvalid(t, err, "field 2 (product)", "ZPL font 0 does not have")
			tmpl = named
		}
		b, err := ZPL(tmpl, d)
		if err != nil {
			t.Fatalf("%q: %v", tt.name, err)
		}
		if !strings.Contains(string(b), "^CI28") {
			t.Errorf("%q: no ^CI28", tt.name)
		}
		if !strings.Contains(string(b), "^FH^FD"+tt.escaped+"^FS") {
			t.Errorf("%q: no escaped UTF-8 %q in\n%s", tt.name, tt.escaped, b)
		}
		if got := zplFields(t, b)[1]; got != tt.name {
			t.Errorf("%q: round trip gave %q", tt.name, got)
		}
	}
}

func TestZPLFont(t *testing.T) {
	tmpl := DefaultDevice()
	tmpl.ZPLFont = "E:ANMDJ.TTF"
	d := deviceData()
	d.Product.Name = "日本"
	b, err := ZPL(tmpl, d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "^FO144,20^A@N,28,28,E:ANMDJ.TTF^FH^FD_E6_97_A5_E6_9C_AC^FS") {
		t.Errorf("font not used:\n%s", b)
	}
	zplFields(t, b)
}

func TestZPLInjection(t *testing.T) {
	d := deviceData()
	d.Product.Name = "^XZ^XA^FO0,0^GB800,800,800^FS~JR~PS"
	d.Product.Model = "_5E_7E"
	d.StationID = "^PQ99"
	d.Text = "~HS"
	tmpl := DefaultBatch()
	tmpl.Fields[1].MinHeight = 2 // the long name fits on its line
	tmpl.Fields[5].Width = 30
	tmpl.Fields = append(tmpl.Fields, Field{Kind: KindText, X: 63, Y: 37, Height: 3})
	d.Count = 250
	b, err := ZPL(tmpl, d)
	if err != nil {
		t.Fatal(err)
	}
	got := zplFields(t, b)
	want := []string{"42", d.Product.Name, d.Product.Model, "Batch 42", "Qty 250", "2026-03-14", "Station ^PQ99", "~HS"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("fields %q, want %q", got, want)
	}
	if n := strings.Count(string(b), "^PQ"); n != 1 {
		t.Errorf("%d ^PQ commands", n)
	}
}
