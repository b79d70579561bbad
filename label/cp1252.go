package label

import "golang.org/x/text/encoding/charmap"

// cp1252 returns the Windows-1252 byte of r, the encoding of the PDF core fonts. The
// five bytes the code page leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) encode no
// character: charmap passes them through as the C1 controls of the same number, which
// no font draws, so C1 controls are refused.
func cp1252(r rune) (byte, bool) {
	if r >= 0x80 && r <= 0x9F {
		return 0, false
	}
	if b, ok := charmap.Windows1252.EncodeRune(r); ok {
		return b, true
	}
	return 0, false
}

// toCP1252 encodes s, already checked by checkText, in Windows-1252.
func toCP1252(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		c, _ := cp1252(r)
		b = append(b, c)
	}
	return string(b)
}

// cp1252Runes returns every printable character of Windows-1252, in byte order.
func cp1252Runes() []rune {
	var rs []rune
	for b := 0x20; b <= 0xFF; b++ {
		if b == 0x7F {
			continue
		}
		r := charmap.Windows1252.DecodeByte(byte(b))
		if _, ok := cp1252(r); ok {
			rs = append(rs, r)
		}
	}
	return rs
}
