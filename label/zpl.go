package label

import (
	"strconv"
)

// ZPL renders one label as a ZPL II job: UTF-8 (^CI28), label width and length in
// dots, each laid-out line of text in font 0 (or the template's ZPLFont) at the
// height its box allows, a native QR code with the mandatory QA, data prefix
// (placed so that it prints where the template says) and its magnification for
// the printer's dots, and one copy. Every field's data follows ^FH and is
// hex-escaped, so nothing in it can act as a ZPL command.
func ZPL(t Template, d Data) ([]byte, error) {
	c, err := t.compile()
	if err != nil {
		return nil, err
	}
	r, err := c.resolve(FormatZPL, d, false)
	if err != nil {
		return nil, err
	}
	return c.appendZPL(make([]byte, 0, 512), r), nil
}

// zplQRDrop is how far below its ^FO origin a ZPL QR code prints, in dots: the
// ^BY bar code height, pinned to its minimum. QR fields start at least this far
// from the top edge.
const zplQRDrop = 10

func (c *compiled) appendZPL(b []byte, r resolved) []byte {
	b = append(b, "^XA^CI28^PW"...)
	b = strconv.AppendInt(b, int64(c.dots(c.Width)), 10)
	b = append(b, "^LL"...)
	b = strconv.AppendInt(b, int64(c.dots(c.Height)), 10)
	b = append(b, '\n')
	for i, f := range c.Fields {
		if f.Kind == KindQR {
			s := r.syms[i]
			// Zebra firmware prints a ^BQ symbol the ^BY bar code height below
			// its ^FO, and ^BY persists in the printer: pin it to its minimum
			// and move the origin up by as much.
			b = append(b, "^BY2,3,"...)
			b = strconv.AppendInt(b, zplQRDrop, 10)
			b = appendZPLOrigin(b, s.ink.x0, s.ink.y0-zplQRDrop)
			b = append(b, "^BQN,2,"...)
			b = strconv.AppendInt(b, int64(s.module), 10)
			b = append(b, "^FH^FDQA,"...)
			b = appendZPLData(b, r.payload)
			b = append(b, "^FS\n"...)
			continue
		}
		for _, l := range r.lines[i] {
			b = appendZPLOrigin(b, l.x, l.y)
			if c.ZPLFont != "" {
				b = append(b, "^A@N,"...)
			} else {
				b = append(b, "^A0N,"...)
			}
			b = strconv.AppendInt(b, int64(l.face.h), 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(l.face.w), 10)
			if c.ZPLFont != "" {
				b = append(b, ',')
				b = append(b, c.ZPLFont...)
			}
			b = append(b, "^FH^FD"...)
			b = appendZPLData(b, l.text)
			b = append(b, "^FS\n"...)
		}
	}
	return append(b, "^PQ1^XZ\n"...)
}

func appendZPLOrigin(b []byte, x, y int) []byte {
	b = append(b, "^FO"...)
	b = strconv.AppendInt(b, int64(x), 10)
	b = append(b, ',')
	return strconv.AppendInt(b, int64(y), 10)
}

// appendZPLData appends s as ^FH field data: ^, ~ and _ (the ^FH escape itself),
// control bytes and every byte of a non-ASCII character are written as _XX, so the
// data holds no command prefix and stays 7-bit; under ^CI28 the printer reassembles
// the UTF-8.
func appendZPLData(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '^' || c == '~' || c == '_' {
			b = append(b, '_', hex[c>>4], hex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}
