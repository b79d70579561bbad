package label

import (
	"strconv"
)

// TSPL renders one label as a TSPL job: SIZE, GAP, DIRECTION, CODEPAGE 1252, CLS,
// a model 2 QR code at level Q with its cell width for the printer's dots, each
// laid-out line of text in the bitmap font and multiplier its box allows, and
// PRINT 1,1, each line ending in CR LF. Text is Windows-1252, written as its
// bytes; a double quote is written \["].
func TSPL(t Template, d Data) ([]byte, error) {
	c, err := t.compile()
	if err != nil {
		return nil, err
	}
	r, err := c.resolve(FormatTSPL, d, false)
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
	b = append(b, ",0\r\nDIRECTION 1\r\nCODEPAGE 1252\r\nCLS\r\n"...)
	xy := func(b []byte, x, y int) []byte {
		b = strconv.AppendInt(b, int64(x), 10)
		b = append(b, ',')
		return strconv.AppendInt(b, int64(y), 10)
	}
	for i, f := range c.Fields {
		if f.Kind == KindQR {
			s := r.syms[i]
			b = append(b, "QRCODE "...)
			b = xy(b, s.ink.x0, s.ink.y0)
			b = append(b, ",Q,"...)
			b = strconv.AppendInt(b, int64(s.module), 10)
			b = append(b, ",A,0,M2,"...)
			b = appendTSPLString(b, r.payload)
			b = append(b, "\r\n"...)
			continue
		}
		for _, l := range r.lines[i] {
			b = append(b, "TEXT "...)
			b = xy(b, l.x, l.y)
			b = append(b, ",\""...)
			b = append(b, l.face.font...)
			b = append(b, "\",0,"...)
			b = strconv.AppendInt(b, int64(l.face.mul), 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(l.face.mul), 10)
			b = append(b, ',')
			b = appendTSPLString(b, toCP1252(l.text))
			b = append(b, "\r\n"...)
		}
	}
	return append(b, "PRINT 1,1\r\n"...)
}

// appendTSPLString appends s as a quoted TSPL string. s has been checked to hold
// no \[ escape, so a double quote is the only character to escape.
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
