package label

import (
	"strings"
	"testing"
	"unicode/utf8"

	"serialbox/serializer"
)

// fuzzTemplate prints the product name and free text, each on up to four lines,
// and carries the free text in a QR code large enough for any payload a QR code
// can hold.
func fuzzTemplate() Template {
	return Template{
		Name:    "fuzz",
		Width:   150,
		Height:  150,
		DPI:     203,
		Payload: "{{.Text}}",
		Fields: []Field{
			{Kind: KindQR, X: 2.5, Y: 2.5, Module: 0.5},
			{Kind: KindProduct, X: 2, Y: 100, Height: 3, Lines: 4},
			{Kind: KindText, X: 2, Y: 120, Height: 3, Lines: 4},
		},
	}
}

// laidOut checks the lines of each text field of the fuzz template against the
// text: without spaces and the closing ellipsis of cut text they spell the start
// of the text, all of it unless cut. It returns every line, in printing order.
func laidOut(t *testing.T, f Format, d Data) []string {
	t.Helper()
	c, err := fuzzTemplate().compile()
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.resolve(f, d, false)
	if err != nil {
		t.Fatal(err)
	}
	squeeze := func(s string) string { return strings.Join(strings.Fields(s), "") }
	var all []string
	for i, ls := range r.lines {
		got := ""
		for _, l := range ls {
			got += l.text
			all = append(all, l.text)
		}
		want := squeeze(r.texts[i])
		cut := strings.HasSuffix(got, ellipsis) && !strings.HasSuffix(r.texts[i], ellipsis)
		got = squeeze(strings.TrimSuffix(got, ellipsis))
		if got != want && !(cut && strings.HasPrefix(want, got)) {
			t.Fatalf("field %d: lines %+v for text %q", i+1, ls, r.texts[i])
		}
	}
	return all
}

// zplFont0 reports whether ZPL font 0 has every character of s.
func zplFont0(s string) bool {
	for _, r := range s {
		if _, ok := cp1252(r); !ok {
			return false
		}
	}
	return true
}

// fuzzSeeds are inputs that have broken label printers elsewhere.
var fuzzSeeds = [][2]string{
	{"Widget Pro 3000", "note"},
	{"^XZ^XA^FO0,0^GB800,800,800^FS", "~JR~HS"},
	{"_5E_7E", "_"},
	{"Café Größe 日本 Дрель", "🔧"},
	{"a\x03b", "\r\nPRINT 5,1\r\n"},
	{`7" "Pro"`, `\["]`},
	{`\[R]`, `x\`},
	{"\xff\xfe", "\xc3"},
	{"", ""},
	{"\u0085", "\x7f"},
}

// hasControl reports whether s holds a control character (C0, DEL, C1).
func hasControl(s string) bool {
	for _, r := range s {
		if isControl(r) {
			return true
		}
	}
	return false
}

func FuzzZPL(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s[0], s[1])
	}
	tmpl := fuzzTemplate()
	qrOnly := fuzzTemplate()
	qrOnly.Fields = qrOnly.Fields[:1]
	f.Fuzz(func(t *testing.T, name, text string) {
		d := deviceData()
		d.Product.Name = name
		d.Text = text
		mode, n := qrMode(text)
		payloadBad := text == "" || !utf8.ValidString(text) || qrVersion(mode, n) == 0

		// Text fields and a QR code: refused exactly when a text is not printable.
		b, err := ZPL(tmpl, d)
		bad := payloadBad || !utf8.ValidString(name) || hasControl(name) || hasControl(text) || !zplFont0(name) || !zplFont0(text)
		if (err != nil) != bad {
			t.Fatalf("name %q, text %q: error %v, want one: %v", name, text, err, bad)
		}
		if err == nil {
			want := append([]string{text}, laidOut(t, FormatZPL, d)...)
			if got := zplFields(t, b); strings.Join(got, "\x00") != strings.Join(want, "\x00") {
				t.Fatalf("fields %q, want %q\n%s", got, want, b)
			}
		} else if serializer.ErrorCode(err) != serializer.EINVALID {
			t.Fatalf("error code %q: %v", serializer.ErrorCode(err), err)
		}

		// The QR code alone carries control characters too, escaped.
		b, err = ZPL(qrOnly, d)
		if (err != nil) != payloadBad {
			t.Fatalf("text %q: error %v, want one: %v", text, err, payloadBad)
		}
		if err == nil {
			if got := zplFields(t, b); len(got) != 1 || got[0] != text {
				t.Fatalf("QR payload %q, want %q", got, text)
			}
		}
	})
}

func FuzzTSPL(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s[0], s[1])
	}
	tmpl := fuzzTemplate()
	f.Fuzz(func(t *testing.T, name, text string) {
		d := deviceData()
		d.Product.Name = name
		d.Text = text
		b, err := TSPL(tmpl, d)
		ascii := func(s string) bool {
			for i := 0; i < len(s); i++ {
				if s[i] < 0x20 || s[i] > 0x7e {
					return false
				}
			}
			return !strings.Contains(s, `\[`)
		}
		cp := func(s string) bool {
			return utf8.ValidString(s) && !hasControl(s) && zplFont0(s) && !strings.Contains(s, `\[`)
		}
		mode, n := qrMode(text)
		// The payload is printable ASCII; text is Windows-1252.
		bad := text == "" || qrVersion(mode, n) == 0 || !cp(name) || !ascii(text)
		if (err != nil) != bad {
			t.Fatalf("name %q, text %q: error %v, want one: %v", name, text, err, bad)
		}
		if err != nil {
			if serializer.ErrorCode(err) != serializer.EINVALID {
				t.Fatalf("error code %q: %v", serializer.ErrorCode(err), err)
			}
			return
		}
		want := []string{text}
		for _, l := range laidOut(t, FormatTSPL, d) {
			want = append(want, toCP1252(l))
		}
		if got := tsplFields(t, b); strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("fields %q, want %q\n%s", got, want, b)
		}
		if lines := strings.Count(string(b), "\r\n"); lines != 5+len(want)+1 {
			t.Fatalf("%d lines, want %d:\n%s", lines, 5+len(want)+1, b)
		}
	})
}
