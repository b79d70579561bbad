package station

import "time"

// WireTime is how long n bytes take on the serial line cfg describes: each byte is
// a start bit, the data bits, a parity bit if any and the stop bits.
func WireTime(cfg PrinterConfig, n int) time.Duration {
	baud := cfg.Baud
	if baud <= 0 {
		baud = DefaultBaud
	}
	data := cfg.DataBits
	if data <= 0 {
		data = DefaultDataBits
	}
	stop := max(cfg.StopBits, 1)
	bits := 1 + data + stop
	if cfg.Parity == "even" || cfg.Parity == "odd" {
		bits++
	}
	return time.Duration(n) * time.Duration(bits) * time.Second / time.Duration(baud)
}
