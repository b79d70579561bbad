package label

import (
	"math"
	"sort"
	"sync"
	"unicode/utf8"

	"github.com/go-pdf/fpdf"
)

// A face is one size of a printer font: what one line of text is printed with.
type face struct {
	h    int    // line height in dots: the em of a scalable font, the cell of a bitmap font
	w    int    // ZPL: the character width parameter; TSPL: the cell width at multiplier 1
	font string // TSPL: the bitmap font name
	mul  int    // TSPL: the x and y multiplier
}

// metrics measures text in one printer language's font.
type metrics interface {
	// largest returns the largest face whose line height is at most h dots.
	largest(h int) (face, bool)
	// width returns the width of s printed in f, in dots, rounded up.
	width(f face, s string) int
	// name names the font in error messages.
	name() string
}

// zplMetrics measures ZPL font 0 (^A0), or a named printer font.
//
// Font 0 is a bold condensed sans serif (CG Triumvirate Bold Condensed on Zebra
// printers, Helvetica Bold Condensed in renderers). Its glyphs are measured as
// Helvetica Bold's, the same design not condensed: every font 0 glyph is at most
// as wide, so text measured to fit prints inside its box on any of them. A named
// font's metrics are unknown, so every character is taken as one em wide, as
// wide as the CJK ideographs such fonts are named for.
type zplMetrics struct{ named bool }

func (m zplMetrics) largest(h int) (face, bool) {
	if h < minTextDots {
		return face{}, false
	}
	return face{h: h, w: h}, true
}

func (m zplMetrics) width(f face, s string) int {
	if m.named {
		return utf8.RuneCountInString(s) * f.w
	}
	return emWidth(&coreWidths().helveticaBold, s, f.w)
}

func (m zplMetrics) name() string {
	if m.named {
		return "the named ZPL font (one em a character)"
	}
	return "ZPL font 0"
}

// pdfMetrics measures Helvetica, the PDF core font labels are set in. Sizes are
// in dots of the template's resolution, like every layout.
type pdfMetrics struct{}

func (pdfMetrics) largest(h int) (face, bool) {
	if h < 1 {
		return face{}, false
	}
	return face{h: h, w: h}, true
}

func (pdfMetrics) width(f face, s string) int { return emWidth(&coreWidths().helvetica, s, f.h) }

func (pdfMetrics) name() string { return "Helvetica" }

// emWidth sums the advance widths (thousandths of an em) of s's Windows-1252
// characters at an em of size dots. Characters outside the code page count as a
// full em; they are refused before printing.
func emWidth(widths *[256]uint16, s string, size int) int {
	units := 0
	for _, r := range s {
		if b, ok := cp1252(r); ok {
			units += int(widths[b])
		} else {
			units += 1000
		}
	}
	return (units*size + 999) / 1000
}

// fontWidths are the advance widths of the PDF core fonts in thousandths of an
// em, by Windows-1252 byte, as fpdf embeds them from Adobe's font metrics.
type fontWidths struct {
	helvetica, helveticaBold [256]uint16
}

var coreWidths = sync.OnceValue(func() *fontWidths {
	var fw fontWidths
	pdf := fpdf.New("P", "pt", "A4", "")
	for _, f := range []struct {
		style string
		dst   *[256]uint16
	}{{"", &fw.helvetica}, {"B", &fw.helveticaBold}} {
		pdf.SetFont("Helvetica", f.style, 1000)
		for b := 0x20; b < 0x100; b++ {
			f.dst[b] = uint16(math.Round(pdf.GetStringWidth(string([]byte{byte(b)}))))
		}
	}
	return &fw
})

// tsplFont is a TSPL bitmap font with its cell size in dots at 1 × 1.
type tsplFont struct {
	name string
	w, h int
}

// tsplFontTables are the cells of the bitmap fonts 1–5 every TSPL printer has
// (TSPL/TSPL2 programming manual): 203 dpi models, and 300 dpi models with their
// own table. 600 dpi models are taken as twice the 300 dpi cells. Fonts 6–8 are
// OCR faces, left for symbols' human-readable lines.
var tsplFontTables = map[int][]tsplFont{
	203: {{"1", 8, 12}, {"2", 12, 20}, {"3", 16, 24}, {"4", 24, 32}, {"5", 32, 48}},
	300: {{"1", 12, 20}, {"2", 16, 28}, {"3", 24, 32}, {"4", 32, 48}, {"5", 48, 64}},
	600: {{"1", 24, 40}, {"2", 32, 56}, {"3", 48, 64}, {"4", 64, 96}, {"5", 96, 128}},
}

// tsplFaces are every font and multiplier (1–10, the same across and down) of a
// resolution, tallest first; of two faces equally tall the narrower comes first,
// then the less multiplied.
var tsplFaces = sync.OnceValue(func() map[int][]face {
	m := make(map[int][]face)
	for dpi, fonts := range tsplFontTables {
		var fs []face
		for _, f := range fonts {
			for mul := 1; mul <= 10; mul++ {
				fs = append(fs, face{h: f.h * mul, w: f.w, font: f.name, mul: mul})
			}
		}
		sort.SliceStable(fs, func(i, j int) bool {
			if fs[i].h != fs[j].h {
				return fs[i].h > fs[j].h
			}
			if wi, wj := fs[i].w*fs[i].mul, fs[j].w*fs[j].mul; wi != wj {
				return wi < wj
			}
			return fs[i].mul < fs[j].mul // a native size prints sharper than a multiplied one
		})
		m[dpi] = fs
	}
	return m
})

// tsplMetrics measures the TSPL bitmap fonts of one resolution.
type tsplMetrics struct{ dpi int }

func (m tsplMetrics) largest(h int) (face, bool) {
	for _, f := range tsplFaces()[m.dpi] {
		if f.h <= h {
			return f, true
		}
	}
	return face{}, false
}

func (m tsplMetrics) width(f face, s string) int {
	return utf8.RuneCountInString(s) * f.w * f.mul
}

func (tsplMetrics) name() string { return "the TSPL bitmap fonts" }

// metricsFor returns the metrics of the printer language f. A PNG preview is laid
// out as the ZPL label it previews unless Preview names another language.
func (c *compiled) metricsFor(f Format) metrics {
	switch f {
	case FormatTSPL:
		return tsplMetrics{c.DPI}
	case FormatPDF:
		return pdfMetrics{}
	default:
		return zplMetrics{named: c.ZPLFont != ""}
	}
}
