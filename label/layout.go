package label

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Every text field is laid out once, by the metrics of the font it prints in,
// into its box: shrunk down to its minimum height while it does not fit on one
// line, then wrapped onto the box's lines, then cut short with an ellipsis.
// Nothing is ever clipped by the printer. The UCI is never shrunk below its
// legible minimum, wrapped or cut: a template that cannot hold the widest UCI is
// refused when it is loaded. Every renderer, the PNG preview included, draws the
// lines of the same layout.

// uciMinMM is the smallest UCI text height in mm: about 6 pt, what a person
// still reads off a label at arm's length.
const uciMinMM = 2.0

// minHeightShare is the share of a field's height that its text may be shrunk
// to when the template names no minimum.
const minHeightShare = 0.6

// ellipsis marks text cut short. Every label font has it: Windows-1252 0x85.
const ellipsis = "…"

// WorstUCIs are the UCIs of the widest glyphs, in grouped form the widest text a
// UCI field prints in every proportional font. Templates are checked with them.
var WorstUCIs = []string{"WWWWWWWWWWWWWWWW", "MMMMMMMMMMMMMMMM"}

// rect is a rectangle in printer dots: [x0, x1) × [y0, y1).
type rect struct{ x0, y0, x1, y1 int }

func (r rect) overlaps(o rect) bool {
	return r.x0 < o.x1 && o.x0 < r.x1 && r.y0 < o.y1 && o.y0 < r.y1
}

func (r rect) within(o rect) bool {
	return r.x0 >= o.x0 && r.y0 >= o.y0 && r.x1 <= o.x1 && r.y1 <= o.y1
}

func (r rect) grow(d int) rect { return rect{r.x0 - d, r.y0 - d, r.x1 + d, r.y1 + d} }

// textBox is where a text field may print: its rectangle, the height of one line
// (the largest face), the smallest face height it may shrink to, and its lines.
type textBox struct {
	r           rect
	lineH, minH int
	lines       int
}

// line is one laid-out line of text: its top-left corner, its measured width and
// the face it prints in.
type line struct {
	text string
	x, y int
	w    int
	face face
}

// textBoxFor derives text field i's box from the template.
func (t Template) textBoxFor(i int) textBox {
	f := t.Fields[i]
	x, y := t.dots(f.X), t.dots(f.Y)
	right := t.dots(t.Width - t.margin())
	if f.Width > 0 {
		right = t.dots(f.X + f.Width)
	}
	lines := max(f.Lines, 1)
	if f.Kind == KindUCI {
		lines = 1
	}
	lineH := t.dots(f.Height)
	minMM := f.MinHeight
	if minMM == 0 {
		minMM = minHeightShare * f.Height
	}
	if f.Kind == KindUCI {
		minMM = max(minMM, uciMinMM)
	}
	minH := min(t.dots(minMM), lineH)
	return textBox{r: rect{x, y, right, y + lineH*lines}, lineH: lineH, minH: minH, lines: lines}
}

// margin returns the template's margin in mm.
func (t Template) margin() float64 {
	if t.Margin == 0 {
		return DefaultMargin
	}
	return t.Margin
}

// layoutText lays s out in field i's box with metrics m. fixed text (the UCI) is
// never wrapped or cut: when it does not fit at its smallest face it is an error.
func (c *compiled) layoutText(m metrics, i int, s string, fixed bool) ([]line, error) {
	b := c.boxes[i]
	width := b.r.x1 - b.r.x0
	first, ok := m.largest(b.lineH)
	if !ok {
		return nil, c.fieldErrorf(i, "no face of %s is as small as its %d-dot (%.2g mm) line", m.name(), b.lineH, c.mm(b.lineH))
	}
	// faces yields the faces from the line height down to the minimum height,
	// or the one face that fits the line when none is that tall.
	smallest := first
	var faces []face
	for f, ok := first, true; ok && (f.h >= b.minH || f == first); f, ok = m.largest(f.h - 1) {
		faces = append(faces, f)
		smallest = f
	}
	for _, f := range faces {
		if w := m.width(f, s); w <= width {
			return []line{{text: s, x: b.r.x0, y: b.r.y0, w: w, face: f}}, nil
		}
	}
	if fixed {
		return nil, c.fieldErrorf(i, "%s needs %d dots in %s at its smallest legible height (%d dots, %.2g mm), "+
			"but its box is %d dots (%.3g mm) wide; widen the box or the label",
			quote(s), m.width(smallest, s), m.name(), smallest.h, c.mm(smallest.h), width, c.mm(width))
	}
	boxH := b.r.y1 - b.r.y0
	if b.lines > 1 {
		for _, f := range faces {
			if n := min(b.lines, boxH/f.h); n > 1 {
				if texts, ok := wrapText(m, f, s, width, n, false); ok {
					return c.placeLines(m, b, f, texts), nil
				}
			}
		}
	}
	n := max(1, min(b.lines, boxH/smallest.h))
	texts, _ := wrapText(m, smallest, s, width, n, true)
	return c.placeLines(m, b, smallest, texts), nil
}

func (c *compiled) placeLines(m metrics, b textBox, f face, texts []string) []line {
	ls := make([]line, len(texts))
	for k, s := range texts {
		ls[k] = line{text: s, x: b.r.x0, y: b.r.y0 + k*f.h, w: m.width(f, s), face: f}
	}
	return ls
}

// wrapText breaks s into lines of at most width dots in face f, at spaces, and
// inside a word only when the word alone is too wide. With more than n lines it
// fails, or with cut it keeps n lines and ends the last with an ellipsis.
func wrapText(m metrics, f face, s string, width, n int, cut bool) ([]string, bool) {
	var lines []string
	cur := ""
	for _, word := range strings.Fields(s) {
		if cur != "" {
			if cand := cur + " " + word; m.width(f, cand) <= width {
				cur = cand
				continue
			}
			lines = append(lines, cur)
			cur = ""
		}
		for m.width(f, word) > width {
			k := fitPrefix(m, f, word, width)
			lines = append(lines, word[:k])
			word = word[k:]
		}
		cur = word
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	if len(lines) <= n {
		return lines, true
	}
	if !cut {
		return nil, false
	}
	lines = lines[:n]
	last := strings.TrimRight(lines[n-1], " ")
	for last != "" && m.width(f, last+ellipsis) > width {
		_, size := utf8.DecodeLastRuneInString(last)
		last = strings.TrimRight(last[:len(last)-size], " ")
	}
	lines[n-1] = last + ellipsis
	return lines, false
}

// fitPrefix returns the byte length of the longest prefix of s, at least one
// character, that is at most width dots wide in f.
func fitPrefix(m metrics, f face, s string, width int) int {
	_, k := utf8.DecodeRuneInString(s)
	for k < len(s) {
		_, size := utf8.DecodeRuneInString(s[k:])
		if m.width(f, s[:k+size]) > width {
			break
		}
		k += size
	}
	return k
}

// mm converts dots at the template's resolution to mm.
func (t Template) mm(dots int) float64 { return float64(dots) * 25.4 / float64(t.DPI) }

// moduleDots returns the module size in dots of symbol field i whose symbol is
// modules wide, or an error when it cannot be printed at least MinModule wide.
func (c *compiled) moduleDots(i, modules, maxDots int) (int, error) {
	f := c.Fields[i]
	dpmm := float64(c.DPI) / 25.4
	var m int
	switch {
	case f.Module > 0:
		m = int(math.Round(f.Module * dpmm))
	case f.Magnification > 0:
		m = int(math.Round(float64(f.Magnification) / 8 * dpmm))
	case f.Size > 0:
		m = c.dots(f.Size) / modules
	default:
		m = int(math.Round(DefaultModule * dpmm))
	}
	m = min(m, maxDots)
	least := int(math.Ceil(MinModule*dpmm - 1e-9))
	if m < least {
		return 0, c.fieldErrorf(i, "modules of %d dots (%.2g mm) at %d dpi: a scanner needs at least %g mm (%d dots)",
			m, c.mm(m), c.DPI, MinModule, least)
	}
	return m, nil
}

// String formats a rectangle in mm for error messages.
func (c *compiled) rectMM(r rect) string {
	return fmt.Sprintf("(%.3g, %.3g)–(%.3g, %.3g) mm", c.mm(r.x0), c.mm(r.y0), c.mm(r.x1), c.mm(r.y1))
}
