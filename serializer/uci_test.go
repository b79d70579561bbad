package serializer_test

import (
	"bytes"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"serialbox/serializer"
)

// Vectors from reference/crockford.md.
func TestUCIVectors(t *testing.T) {
	for _, tc := range []struct{ hex, symbols, check string }{
		{"0123456789ABCDEF0123", "04HMASW9NF6YY093", "B"},
		{"FFFFFFFFFFFFFFFFFFFF", "ZZZZZZZZZZZZZZZZ", "~"},
		{"00000000000000000000", "0000000000000000", "0"},
	} {
		raw, err := hex.DecodeString(tc.hex)
		if err != nil {
			t.Fatal(err)
		}
		var u serializer.UCI
		copy(u[:], raw)
		if got := u.String(); got != tc.symbols {
			t.Errorf("%s: String() = %s, want %s", tc.hex, got, tc.symbols)
		}
		if got := string(u.Check()); got != tc.check {
			t.Errorf("%s: Check() = %s, want %s", tc.hex, got, tc.check)
		}
		back, err := serializer.Parse(tc.symbols + tc.check)
		if err != nil || back != u {
			t.Errorf("Parse(%s%s) = %x, %v; want %s", tc.symbols, tc.check, back, err, tc.hex)
		}
	}
}

// The reference's small-integer vector: 1234 is "16J" with check "D". A UCI is
// that number padded to 16 symbols with leading zeros, and the check symbol is
// computed on the number, so the padding must not change it.
func TestUCICheckSmallInteger(t *testing.T) {
	var u serializer.UCI
	u[8], u[9] = 1234>>8, 1234&0xff
	if got := u.String(); got != "000000000000016J" {
		t.Fatalf("String() = %s", got)
	}
	if got := string(u.Check()); got != "D" {
		t.Fatalf("Check() = %s, want D", got)
	}
}

// The encoding is the standard library's base32 with Crockford's alphabet, and the
// check symbol is the number mod 37: two independent computations.
func TestUCIMatchesIndependentEncoding(t *testing.T) {
	enc := base32.NewEncoding(serializer.Alphabet).WithPadding(base32.NoPadding)
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var u serializer.UCI
		for i := range u {
			u[i] = byte(r.UintN(256))
		}
		if got, want := u.String(), enc.EncodeToString(u[:]); got != want {
			t.Fatalf("%x: String() = %s, base32 = %s", u[:], got, want)
		}
		mod := new(big.Int).Mod(new(big.Int).SetBytes(u[:]), big.NewInt(37)).Int64()
		if got, want := u.Check(), "0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U"[mod]; got != want {
			t.Fatalf("%x: Check() = %c, want %c", u[:], got, want)
		}
		back, err := serializer.Parse(u.Grouped())
		if err != nil || back != u {
			t.Fatalf("Parse(Grouped()) = %v, %v; want %v", back, err, u)
		}
	}
}

func TestParseNormalises(t *testing.T) {
	want := serializer.MustParse("04HMASW9NF6YY093")
	for _, in := range []string{
		"04HMASW9NF6YY093",
		"04hmasw9nf6yy093",
		"04HM-ASW9-NF6Y-Y093",
		"04HM ASW9 NF6Y Y093",
		" 04HM-ASW9 NF6Y-Y093 ",
		"O4HMASW9NF6YYO93",  // O read as 0
		"o4hmasw9nf6yyo93",  // o read as 0
		"04HMASW9NF6YY093B", // with check symbol
		"04HM-ASW9-NF6Y-Y093-B",
		"04hmasw9nf6yy093b",
	} {
		got, err := serializer.Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if got != want {
			t.Errorf("Parse(%q) = %s, want %s", in, got, want)
		}
	}
	// I and L read as 1.
	for _, in := range []string{"I000000000000000", "l000000000000000", "L000000000000000", "i000000000000000"} {
		if got, err := serializer.Parse(in); err != nil || got.String() != "1000000000000000" {
			t.Errorf("Parse(%q) = %s, %v; want 1000000000000000", in, got, err)
		}
	}
	// Check symbols beyond the alphabet, including U, in either case.
	for _, u := range []serializer.UCI{{}, serializer.MustParse("ZZZZZZZZZZZZZZZZ")} {
		s := u.WithCheck()
		if got, err := serializer.Parse(strings.ToLower(s)); err != nil || got != u {
			t.Errorf("Parse(%q) = %s, %v", strings.ToLower(s), got, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct{ in, why string }{
		{"", "too short"},
		{"04HMASW9NF6YY09", "too short"},
		{"04HMASW9NF6YY093BB", "too long"},
		{"04HMASW9NF6YY093C", "check symbol"},
		{"04HMASW9NF6YY09U", "not a claim ID character"}, // U is a check symbol only
		{"04HMASW9NF6YY09!", "not a claim ID character"},
		{"04HM_ASW9NF6YY093", "not a claim ID character"},
		{"04HMASW9NF6YY09é", "letters and digits"},
		{"04HMASW9NF6YY093é", "not a claim ID character"},
		{"04HMASW9NF6YY093\x00", "not a claim ID character"},
	} {
		_, err := serializer.Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q): no error", tc.in)
			continue
		}
		if serializer.ErrorCode(err) != serializer.EINVALID {
			t.Errorf("Parse(%q): code %s, want %s", tc.in, serializer.ErrorCode(err), serializer.EINVALID)
		}
		if !strings.Contains(err.Error(), tc.why) {
			t.Errorf("Parse(%q) = %v, want it to say %q", tc.in, err, tc.why)
		}
	}
}

func TestNewUCIIsRandomAndDistinct(t *testing.T) {
	seen := make(map[serializer.UCI]bool)
	for range 10000 {
		u, err := serializer.NewUCI()
		if err != nil {
			t.Fatal(err)
		}
		if seen[u] {
			t.Fatalf("NewUCI returned %s twice", u)
		}
		seen[u] = true
	}
	// ReadUCI takes exactly 10 bytes from its reader.
	u, err := serializer.ReadUCI(bytes.NewReader([]byte{1, 35, 69, 103, 137, 171, 205, 239, 1, 35}))
	if err != nil || u.String() != "04HMASW9NF6YY093" {
		t.Fatalf("ReadUCI = %s, %v", u, err)
	}
	if _, err := serializer.ReadUCI(bytes.NewReader([]byte{1, 2, 3})); err == nil {
		t.Fatal("ReadUCI of a short reader: no error")
	}
}

func TestUCIJSON(t *testing.T) {
	u := serializer.MustParse("04HMASW9NF6YY093")
	b, err := json.Marshal(map[string]serializer.UCI{"id": u})
	if err != nil || string(b) != `{"id":"04HMASW9NF6YY093"}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var back struct{ ID serializer.UCI }
	if err := json.Unmarshal([]byte(`{"id":"04hm-asw9-nf6y-y093"}`), &back); err != nil || back.ID != u {
		t.Fatalf("Unmarshal = %v, %v", back.ID, err)
	}
	if err := json.Unmarshal([]byte(`{"id":"nope"}`), &back); err == nil {
		t.Fatal("Unmarshal of a bad UCI: no error")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"04HMASW9NF6YY093", "04hm-asw9-nf6y-y093-b", "ZZZZZZZZZZZZZZZZ~", "", "IIII LLLL OOOO oooo", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := serializer.Parse(s)
		if err != nil {
			if serializer.ErrorCode(err) != serializer.EINVALID {
				t.Fatalf("Parse(%q): error code %s", s, serializer.ErrorCode(err))
			}
			return
		}
		// Whatever parses re-encodes to a canonical form that parses to the same UCI,
		// in every written form.
		for _, form := range []string{u.String(), u.Grouped(), u.WithCheck(), strings.ToLower(u.Grouped())} {
			back, err := serializer.Parse(form)
			if err != nil || back != u {
				t.Fatalf("Parse(%q) = %v, %v; from %q = %v", form, back, err, s, u)
			}
		}
		if len(u.String()) != serializer.UCILen {
			t.Fatalf("String() has %d symbols", len(u.String()))
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for b.Loop() {
		if _, err := serializer.Parse("04hm-asw9-nf6y-y093-b"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkString(b *testing.B) {
	u := serializer.MustParse("04HMASW9NF6YY093")
	for b.Loop() {
		_ = u.String()
	}
}
