package serializer

import (
	"crypto/rand"
	"fmt"
	"io"
	"strings"
)

// Alphabet is Crockford's base32 alphabet: value i is Alphabet[i].
const Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// checkAlphabet extends Alphabet with the five check-only symbols (values 32..36).
const checkAlphabet = Alphabet + "*~$=U"

// UCILen is the number of symbols in a UCI without its check symbol.
const UCILen = 16

// UCI is a unique claim ID: 80 random bits, written as 16 Crockford base32 symbols.
// The zero value is the all-zeros ID, which NewUCI never returns in practice.
type UCI [10]byte

// decodeTable maps an input byte to its symbol value, or -1 when it is not a symbol.
// It folds case and reads I/L as 1 and O as 0, as people type what they see.
var decodeTable = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(Alphabet); i++ {
		c := Alphabet[i]
		t[c] = int8(i)
		t[c|0x20] = int8(i) // lower case; digits are unchanged by |0x20
	}
	for _, c := range "IiLl" {
		t[c] = 1
	}
	for _, c := range "Oo" {
		t[c] = 0
	}
	return t
}()

// NewUCI draws a UCI from crypto/rand.
func NewUCI() (UCI, error) { return ReadUCI(rand.Reader) }

// ReadUCI draws a UCI from r; tests and benchmarks use it with a seeded reader.
func ReadUCI(r io.Reader) (UCI, error) {
	var u UCI
	if _, err := io.ReadFull(r, u[:]); err != nil {
		return UCI{}, fmt.Errorf("draw random bits for UCI: %w", err)
	}
	return u, nil
}

// String returns the 16-symbol canonical form, most significant symbol first.
func (u UCI) String() string {
	var b [UCILen]byte
	u.encode(&b)
	return string(b[:])
}

func (u UCI) encode(b *[UCILen]byte) {
	// 80 bits = two 40-bit halves, each exactly 8 symbols.
	for half := 0; half < 2; half++ {
		var v uint64
		for _, x := range u[half*5 : half*5+5] {
			v = v<<8 | uint64(x)
		}
		for i := 7; i >= 0; i-- {
			b[half*8+i] = Alphabet[v&31]
			v >>= 5
		}
	}
}

// Grouped returns the display form printed on labels: XXXX-XXXX-XXXX-XXXX.
func (u UCI) Grouped() string {
	s := u.String()
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// Check returns the mod-37 check symbol of the number the 16 symbols spell.
func (u UCI) Check() byte {
	rem := 0
	for _, x := range u {
		rem = (rem*256 + int(x)) % 37
	}
	return checkAlphabet[rem]
}

// WithCheck returns the canonical form followed by its check symbol.
func (u UCI) WithCheck() string { return u.String() + string(u.Check()) }

// IsZero reports whether u is the zero value.
func (u UCI) IsZero() bool { return u == UCI{} }

// MarshalText encodes u in canonical form, so JSON carries "04HMASW9NF6YY093".
func (u UCI) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText parses any form Parse accepts.
func (u *UCI) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*u = v
	return nil
}

// Parse reads a claim ID as a person may have typed or scanned it: case is ignored,
// I and L read as 1, O reads as 0, hyphens and spaces are skipped. A 17th symbol is
// taken as the mod-37 check symbol and must match. Anything else is an EINVALID error.
func Parse(s string) (UCI, error) {
	var syms [UCILen + 1]byte // values, not characters
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' || c == ' ' {
			continue
		}
		if n == UCILen {
			// Only a check symbol may follow the 16 data symbols, and only once.
			v := strings.IndexByte(checkAlphabet, upper(c))
			if v < 0 {
				if c >= 0x80 || decodeTable[c] < 0 {
					return UCI{}, invalidUCI(s, fmt.Sprintf("%q is not a claim ID character", rune(c)))
				}
				v = int(decodeTable[c])
			}
			syms[n] = byte(v)
			n++
			continue
		}
		if n > UCILen {
			return UCI{}, invalidUCI(s, "too long: a claim ID has 16 symbols and an optional check symbol")
		}
		v := decodeTable[c]
		if v < 0 {
			if c >= 0x80 {
				return UCI{}, invalidUCI(s, "only the letters and digits printed on the label are allowed")
			}
			return UCI{}, invalidUCI(s, fmt.Sprintf("%q is not a claim ID character", c))
		}
		syms[n] = byte(v)
		n++
	}
	if n < UCILen {
		return UCI{}, invalidUCI(s, fmt.Sprintf("too short: %d of 16 symbols", n))
	}
	var u UCI
	for half := 0; half < 2; half++ {
		var v uint64
		for _, x := range syms[half*8 : half*8+8] {
			v = v<<5 | uint64(x)
		}
		for i := 4; i >= 0; i-- {
			u[half*5+i] = byte(v)
			v >>= 8
		}
	}
	if n == UCILen+1 && checkAlphabet[syms[UCILen]] != u.Check() {
		return UCI{}, invalidUCI(s, "check symbol does not match: probably a typo")
	}
	return u, nil
}

// MustParse is Parse for constants in tests and examples; it panics on error.
func MustParse(s string) UCI {
	u, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 0x20
	}
	return c
}

func invalidUCI(s, why string) error {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return Errorf(EINVALID, "claim ID %q: %s", s, why)
}
