package label

import (
	"strings"

	"github.com/skip2/go-qrcode"
)

// qrLevel is the error correction level of every QR code on a label: Q (25 %),
// the level the ZPL data prefix QA, names. Labels get scratched.
const qrLevel = qrcode.High // skip2 calls level Q "High"

// qrEncoding is the QR data mode a printer picks for a whole payload.
type qrEncoding int

// QR data modes, densest first.
const (
	qrNumeric qrEncoding = iota
	qrAlphanumeric
	qrByte
)

func (m qrEncoding) String() string {
	return [...]string{"digits", "QR alphanumeric characters", "bytes"}[m]
}

// qrAlphanumericSet is the QR alphanumeric character set; UCIs are within it.
const qrAlphanumericSet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

// qrCapacity is how many characters a version 1–40 QR code holds at level Q,
// per mode (ISO/IEC 18004 table 7).
var qrCapacity = [3][40]int{
	qrNumeric: {27, 48, 77, 111, 144, 178, 207, 259, 312, 364, 427, 489, 580, 621, 703, 775, 876, 948, 1063, 1159,
		1224, 1358, 1468, 1588, 1718, 1804, 1933, 2085, 2181, 2358, 2473, 2670, 2805, 2949, 3081, 3244, 3417, 3599, 3791, 3993},
	qrAlphanumeric: {16, 29, 47, 67, 87, 108, 125, 157, 189, 221, 259, 296, 352, 376, 426, 470, 531, 574, 644, 702,
		742, 823, 890, 963, 1041, 1094, 1172, 1263, 1322, 1429, 1499, 1618, 1700, 1787, 1867, 1966, 2071, 2181, 2298, 2420},
	qrByte: {11, 20, 32, 46, 60, 74, 86, 108, 130, 151, 177, 203, 241, 258, 292, 322, 364, 394, 442, 482,
		509, 565, 611, 661, 715, 751, 805, 868, 908, 982, 1030, 1112, 1168, 1228, 1283, 1351, 1423, 1499, 1579, 1663},
}

// qrMode returns the single mode that holds all of s and the number of characters
// in that mode. Printers in automatic mode pick one mode for the whole payload;
// mixed-mode encoders (skip2) never need a larger symbol than this.
func qrMode(s string) (qrEncoding, int) {
	mode := qrNumeric
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case strings.IndexByte(qrAlphanumericSet, c) >= 0:
			mode = max(mode, qrAlphanumeric)
		default:
			return qrByte, len(s)
		}
	}
	return mode, len(s)
}

// qrVersion returns the smallest version that holds n characters in mode m, or 0.
func qrVersion(m qrEncoding, n int) int {
	for v, c := range qrCapacity[m] {
		if n <= c {
			return v + 1
		}
	}
	return 0
}

// qrModules returns the side of a version v symbol in modules, without quiet zone.
func qrModules(v int) int { return 17 + 4*v }

// qrVersionFor returns the largest version whose side is at most modules, or 0.
func qrVersionFor(modules int) int {
	v := (modules - 17) / 4
	if modules < 21 {
		return 0
	}
	return min(v, 40)
}

// qrBitmap returns the modules of payload's QR code, without quiet zone;
// bitmap[y][x] is true for a dark module.
func qrBitmap(payload string) ([][]bool, error) {
	q, err := qrcode.New(payload, qrLevel)
	if err != nil {
		return nil, err
	}
	q.DisableBorder = true
	return q.Bitmap(), nil
}
