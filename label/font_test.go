package label

import (
	"image"
	"testing"
)

// TestFontCoversCP1252 checks that the preview font draws every character a PDF
// label prints, and nothing outside Windows-1252 passes the PDF/PNG check.
func TestFontCoversCP1252(t *testing.T) {
	for _, r := range cp1252Runes() {
		g, ok := font[r]
		if !ok {
			t.Errorf("no glyph for %q (%U)", r, r)
			continue
		}
		if g.width < 1 || g.width > 16 {
			t.Errorf("%q: width %d", r, g.width)
		}
		empty := true
		for _, row := range g.rows {
			if row>>g.width != 0 {
				t.Errorf("%q: dots outside its width", r)
			}
			empty = empty && row == 0
		}
		if empty != (r == ' ' || r == 0xA0) {
			t.Errorf("%q: empty glyph = %v", r, empty)
		}
		if err := checkText(FormatPNG, string(r)); err != nil {
			t.Errorf("%q refused: %v", r, err)
		}
	}
	for _, r := range []rune{'ı', 'Ł', 'ő', 'Д', '日', '🔧'} {
		if err := checkText(FormatPNG, string(r)); err == nil {
			t.Errorf("%q accepted but not in Windows-1252", r)
		}
	}
}

func TestCP1252(t *testing.T) {
	tests := []struct {
		r  rune
		b  byte
		ok bool
	}{
		{'A', 'A', true}, {'€', 0x80, true}, {'Ÿ', 0x9F, true}, {'é', 0xE9, true}, {'ÿ', 0xFF, true},
		{0x81, 0, false}, {'Ā', 0, false}, {'🔧', 0, false},
	}
	for _, tt := range tests {
		b, ok := cp1252(tt.r)
		if b != tt.b || ok != tt.ok {
			t.Errorf("cp1252(%q) = %#x, %v; want %#x, %v", tt.r, b, ok, tt.b, tt.ok)
		}
	}
	if got := toCP1252("Größe €"); got != "Gr\xf6\xdfe \x80" {
		t.Errorf("toCP1252 = %q", got)
	}
}

func TestDrawTextScales(t *testing.T) {
	for _, h := range []int{10, 24, 33, 96} {
		img := image.NewPaletted(image.Rect(0, 0, 400, 200), previewPalette)
		w := 2 * h
		drawText(img, 5, 5, w, h, "HÉg")
		var box image.Rectangle
		for y := 0; y < 200; y++ {
			for x := 0; x < 400; x++ {
				if img.ColorIndexAt(x, y) == 1 {
					box = box.Union(image.Rect(x, y, x+1, y+1))
				}
			}
		}
		if box.Min.Y < 5 || box.Max.Y > 5+h {
			t.Errorf("height %d: ink from y %d to %d, outside the %d-pixel cell", h, box.Min.Y, box.Max.Y, h)
		}
		if box.Min.X < 5 || box.Max.X > 5+w {
			t.Errorf("height %d: ink from x %d to %d, outside the %d-pixel line", h, box.Min.X, box.Max.X, w)
		}
		if box.Dy() < h*8/10 {
			t.Errorf("height %d: ink only %d pixels high", h, box.Dy())
		}
	}
}
