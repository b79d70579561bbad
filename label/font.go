package label

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// The preview font is a 5 × 7 dot matrix font drawn for this package. It covers
// Windows-1252, the same characters as the PDF core fonts, so a PNG preview shows
// every text a PDF label can print. Accented letters are composed from a base
// letter and a mark.
//
// A glyph's rows run from -2 (accents over capitals) through 0–6 (capital height,
// baseline below row 6) to 7–8 (descenders): fontRows rows in all.

//go:embed font.txt
var fontSource string

const (
	fontRows   = 11 // rows -2 … 8
	fontTop    = 2  // index of row 0
	fontAdvMin = 1  // columns between glyphs
)

// glyph is one character of the preview font: width in columns and one bit mask
// per row, bit 0 the leftmost column.
type glyph struct {
	width int
	rows  [fontRows]uint16
}

// fontMarks are the diacritical marks, two rows each, drawn above a base letter
// (below for the cedilla).
var fontMarks = map[string][2]string{
	"grave":      {".#...", "..#.."},
	"acute":      {"...#.", "..#.."},
	"circumflex": {"..#..", ".#.#."},
	"tilde":      {".#..#", "#.##."},
	"diaeresis":  {".#.#.", "....."},
	"ring":       {"..#..", ".#.#."},
	"caron":      {".#.#.", "..#.."},
	"cedilla":    {"..#..", ".##.."},
}

// fontComposed lists the accented letters of Windows-1252 as base letter and mark.
var fontComposed = map[rune]struct {
	base rune
	mark string
}{
	'À': {'A', "grave"}, 'Á': {'A', "acute"}, 'Â': {'A', "circumflex"}, 'Ã': {'A', "tilde"}, 'Ä': {'A', "diaeresis"}, 'Å': {'A', "ring"},
	'Ç': {'C', "cedilla"}, 'È': {'E', "grave"}, 'É': {'E', "acute"}, 'Ê': {'E', "circumflex"}, 'Ë': {'E', "diaeresis"},
	'Ì': {'I', "grave"}, 'Í': {'I', "acute"}, 'Î': {'I', "circumflex"}, 'Ï': {'I', "diaeresis"}, 'Ñ': {'N', "tilde"},
	'Ò': {'O', "grave"}, 'Ó': {'O', "acute"}, 'Ô': {'O', "circumflex"}, 'Õ': {'O', "tilde"}, 'Ö': {'O', "diaeresis"},
	'Ù': {'U', "grave"}, 'Ú': {'U', "acute"}, 'Û': {'U', "circumflex"}, 'Ü': {'U', "diaeresis"}, 'Ý': {'Y', "acute"},
	'Š': {'S', "caron"}, 'Ž': {'Z', "caron"}, 'Ÿ': {'Y', "diaeresis"},
	'à': {'a', "grave"}, 'á': {'a', "acute"}, 'â': {'a', "circumflex"}, 'ã': {'a', "tilde"}, 'ä': {'a', "diaeresis"}, 'å': {'a', "ring"},
	'ç': {'c', "cedilla"}, 'è': {'e', "grave"}, 'é': {'e', "acute"}, 'ê': {'e', "circumflex"}, 'ë': {'e', "diaeresis"},
	'ì': {'ı', "grave"}, 'í': {'ı', "acute"}, 'î': {'ı', "circumflex"}, 'ï': {'ı', "diaeresis"}, 'ñ': {'n', "tilde"},
	'ò': {'o', "grave"}, 'ó': {'o', "acute"}, 'ô': {'o', "circumflex"}, 'õ': {'o', "tilde"}, 'ö': {'o', "diaeresis"},
	'ù': {'u', "grave"}, 'ú': {'u', "acute"}, 'û': {'u', "circumflex"}, 'ü': {'u', "diaeresis"}, 'ý': {'y', "acute"},
	'ÿ': {'y', "diaeresis"}, 'š': {'s', "caron"}, 'ž': {'z', "caron"},
}

// font maps each character to its glyph.
var font = buildFont()

func buildFont() map[rune]*glyph {
	m := make(map[rune]*glyph)
	for _, block := range strings.Split(strings.TrimSpace(fontSource), "\n\n") {
		lines := strings.Split(block, "\n")
		r := parseGlyphName(lines[0])
		g := &glyph{width: len(lines[1])}
		for i, row := range lines[1:] {
			g.rows[fontTop+i] = rowBits(row)
		}
		m[r] = g
	}
	for r, c := range fontComposed {
		base := *m[c.base]
		mark := fontMarks[c.mark]
		at := fontTop - 2 // above a capital
		switch {
		case c.mark == "cedilla":
			at = fontTop + 7
		case !unicode.IsUpper(c.base):
			at = fontTop // above a lower-case letter, in the ascender rows
		}
		base.rows[at] |= rowBits(mark[0])
		base.rows[at+1] |= rowBits(mark[1])
		m[r] = &base
	}
	return m
}

func parseGlyphName(s string) rune {
	if len(s) > 2 && strings.HasPrefix(s, "U+") {
		n, err := strconv.ParseUint(s[2:], 16, 32)
		if err != nil {
			panic(fmt.Sprintf("label font: bad glyph name %q", s))
		}
		return rune(n)
	}
	rs := []rune(s)
	if len(rs) != 1 {
		panic(fmt.Sprintf("label font: bad glyph name %q", s))
	}
	return rs[0]
}

func rowBits(row string) uint16 {
	var bits uint16
	for i := 0; i < len(row); i++ {
		if row[i] == '#' {
			bits |= 1 << i
		}
	}
	return bits
}
