package label

import (
	"strings"
	"testing"

	"github.com/skip2/go-qrcode"
)

// TestQRCapacity checks the capacity table against skip2's encoder: a payload of
// exactly the capacity fits version v, one more character needs version v+1.
func TestQRCapacity(t *testing.T) {
	chars := map[qrEncoding]string{qrNumeric: "7", qrAlphanumeric: "K", qrByte: "k"}
	for mode, c := range chars {
		for v := 1; v <= 40; v++ {
			n := qrCapacity[mode][v-1]
			if m, got := qrMode(strings.Repeat(c, n)); m != mode || got != n {
				t.Fatalf("qrMode: %v %d", m, got)
			}
			if got := qrVersion(mode, n); got != v {
				t.Errorf("%v: qrVersion(%d) = %d, want %d", mode, n, got, v)
			}
			q, err := qrcode.New(strings.Repeat(c, n), qrLevel)
			if err != nil || q.VersionNumber != v {
				t.Errorf("%v: %d characters: skip2 picks version %v (%v), table says %d", mode, n, q, err, v)
				continue
			}
			if v == 40 {
				if qrVersion(mode, n+1) != 0 {
					t.Errorf("%v: %d characters should not fit", mode, n+1)
				}
				continue
			}
			if q, err := qrcode.New(strings.Repeat(c, n+1), qrLevel); err != nil || q.VersionNumber != v+1 {
				t.Errorf("%v: %d characters: skip2 picks %v (%v), table says %d", mode, n+1, q, err, v+1)
			}
		}
	}
}

func TestQRMode(t *testing.T) {
	tests := []struct {
		in   string
		mode qrEncoding
	}{
		{"0123", qrNumeric},
		{"04HMASW9NF6YY093", qrAlphanumeric},
		{"HTTPS://X.EXAMPLE/C?ID=1", qrByte},
		{"HTTP://X.EXAMPLE/C/04HM", qrAlphanumeric},
		{"https://x", qrByte},
		{"é", qrByte},
	}
	for _, tt := range tests {
		if m, _ := qrMode(tt.in); m != tt.mode {
			t.Errorf("qrMode(%q) = %v, want %v", tt.in, m, tt.mode)
		}
	}
}

func TestQRVersionFor(t *testing.T) {
	tests := []struct{ modules, v int }{{0, 0}, {20, 0}, {21, 1}, {24, 1}, {25, 2}, {177, 40}, {500, 40}}
	for _, tt := range tests {
		if got := qrVersionFor(tt.modules); got != tt.v {
			t.Errorf("qrVersionFor(%d) = %d, want %d", tt.modules, got, tt.v)
		}
	}
}
