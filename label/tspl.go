package label

import (
	"strconv"
)

// tsplFonts are the bitmap fonts every TSPL printer has, with their cell height in
// dots at 203 dpi. Printers of higher resolution scale them to about the same size
// on paper, so fonts are picked by the text height at 203 dpi.
var tsplFonts = []struct {
	name   string
	height int
}{{"1", 12}, {"2", 20}, {"3", 24}, {"4", 32}, {"5", 48}}

// tsplFont returns the font and multiplier whose height comes closest to mm
// without exceeding it (font 1 for anything smaller).
func tsplFont(mm float64) (string, int) {
	target := int(mm*203/25.4 + 0.5)
	name, mult, best := "1", 1, 0
	for m := 1; m <= 10; m++ { // a native size beats a multiplied one
		for _, f := range tsplFonts {
			if h := f.height * m; h <= target && h > best {
				name, mult, best = f.name, m, h
			}
		}
	}
	return name, mult
}

// TSPL renders one label as a TSPL job: SIZE, GAP, DIRECTION, CLS, a model 2 QR
// code at level Q, text in the printer's bitmap fonts, and PRINT 1,1, each line
// ending in CR LF. Text is printable ASCII only; a double quote is written \["].
func TSPL(t Template, d Data) ([]byte, error) {
	c, err := t.compile()
	if err != nil {
		return nil, err
	}
	r, err := c.resolve(FormatTSPL, d)
	if err != nil {
		return nil, err
	}
	return c.appendTSPL(make([]byte, 0, 512), r), nil
}

func (c *compiled) appendTSPL(b []byte, r resolved) []byte {
	mm := func(b []byte, v float64) []byte {
		b = strconv.AppendFloat(b, v, 'f', -1, 64)
		return append(b, " mm"...)
	}
	b = append(b, "SIZE "...)
	b = mm(b, c.Width)
	b = append(b, ',')
	b = mm(b, c.Height)
	b = append(b, "\r\nGAP "...)
	b = mm(b, c.gap())
	b = append(b, ",0\r\nDIRECTION 1\r\nCLS\r\n"...)
	for i, f := range c.Fields {
		if f.Kind != KindQR && r.texts[i] == "" {
			continue
		}
		var data string
		if f.Kind == KindQR {
			b = append(b, "QRCODE "...)
			b = strconv.AppendInt(b, int64(c.dots(f.X)), 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(c.dots(f.Y)), 10)
			b = append(b, ",Q,"...)
			b = strconv.AppendInt(b, int64(f.Magnification), 10)
			b = append(b, ",A,0,M2,"...)
			data = r.payload
		} else {
			font, mult := tsplFont(f.Height)
			b = append(b, "TEXT "...)
			b = strconv.AppendInt(b, int64(c.dots(f.X)), 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(c.dots(f.Y)), 10)
			b = append(b, ",\""...)
			b = append(b, font...)
			b = append(b, "\",0,"...)
			b = strconv.AppendInt(b, int64(mult), 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(mult), 10)
			b = append(b, ',')
			data = r.texts[i]
		}
		b = appendTSPLString(b, data)
		b = append(b, "\r\n"...)
	}
	return append(b, "PRINT 1,1\r\n"...)
}

// appendTSPLString appends s as a quoted TSPL string. s has been checked to be
// printable ASCII, so a double quote is the only character to escape.
func appendTSPLString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, `\["]`...)
			continue
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}
