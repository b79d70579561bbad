package station

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"serialbox/serializer"
	"serialbox/serializer/loop"
)

// Transport names accepted in PrinterConfig.Transport.
const (
	TransportTCP    = "tcp"
	TransportSerial = "serial"
	TransportUSB    = "usb"
	TransportFile   = "file"
	TransportNone   = "none"
)

// Printer languages accepted in PrinterConfig.Language.
const (
	LanguageZPL  = "zpl"
	LanguageTSPL = "tspl"
	LanguagePDF  = "pdf"
)

// Serial flow control modes accepted in PrinterConfig.Flow.
const (
	FlowRTSCTS  = "rtscts"
	FlowXONXOFF = "xonxoff"
	FlowNone    = "none"
)

// Default values filled in by PrinterConfig.Defaults.
const (
	DefaultPort           = "9100"
	DefaultBaud           = 9600
	DefaultDataBits       = 8
	DefaultStopBits       = 1
	DefaultParity         = "none"
	DefaultFlow           = FlowRTSCTS
	DefaultLanguage       = LanguageZPL
	DefaultDPI            = 203
	DefaultSpoolDir       = "labels"
	DefaultStatusInterval = 10 * time.Second
	// MinStatusInterval keeps status polling from slowing printing down.
	MinStatusInterval = time.Second
)

// PrinterConfig is one station's printer: how to reach it and what it speaks. It is
// the [stations.printer] table of the configuration file.
type PrinterConfig struct {
	Transport      string   `toml:"transport"`       // tcp, serial, usb, file or none
	Address        string   `toml:"address"`         // tcp: host:port (port 9100 when left out)
	Device         string   `toml:"device"`          // serial or usb: /dev/ttyUSB0, /dev/serial/by-id/..., /dev/usb/lp0
	Baud           int      `toml:"baud"`            // serial: bits per second
	DataBits       int      `toml:"data_bits"`       // serial: 5 to 8
	Parity         string   `toml:"parity"`          // serial: none, even or odd
	StopBits       int      `toml:"stop_bits"`       // serial: 1 or 2
	Flow           string   `toml:"flow"`            // serial: rtscts, xonxoff or none
	Language       string   `toml:"language"`        // zpl, tspl or pdf
	DPI            int      `toml:"dpi"`             // print head resolution in dots per inch
	Template       string   `toml:"template"`        // label template name
	Dir            string   `toml:"dir"`             // file: the spool folder
	StatusInterval Duration `toml:"status_interval"` // time between status polls
}

// Duration is a time.Duration written as a Go duration string ("10s", "1m30s") in
// configuration files; it is the one duration type of every configuration section.
type Duration = loop.Duration

// Defaults fills in every unset field: file transport into the "labels" folder, port
// 9100, 9600 baud 8N1 with RTS/CTS, ZPL at 203 dpi, status every 10 s.
func (c *PrinterConfig) Defaults() {
	c.Transport = strings.ToLower(strings.TrimSpace(c.Transport))
	c.Language = strings.ToLower(strings.TrimSpace(c.Language))
	c.Parity = strings.ToLower(strings.TrimSpace(c.Parity))
	c.Flow = strings.ToLower(strings.TrimSpace(c.Flow))
	if c.Transport == "" {
		c.Transport = TransportFile
	}
	if c.Transport == TransportTCP && c.Address != "" {
		if _, _, err := net.SplitHostPort(c.Address); err != nil && !strings.Contains(c.Address, ":") {
			c.Address = net.JoinHostPort(c.Address, DefaultPort)
		}
	}
	if c.Transport == TransportFile && c.Dir == "" {
		c.Dir = DefaultSpoolDir
	}
	if c.Baud == 0 {
		c.Baud = DefaultBaud
	}
	if c.DataBits == 0 {
		c.DataBits = DefaultDataBits
	}
	if c.Parity == "" {
		c.Parity = DefaultParity
	}
	if c.StopBits == 0 {
		c.StopBits = DefaultStopBits
	}
	if c.Flow == "" {
		c.Flow = DefaultFlow
	}
	if c.Language == "" {
		c.Language = DefaultLanguage
	}
	if c.DPI == 0 {
		c.DPI = DefaultDPI
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = Duration(DefaultStatusInterval)
	}
}

// Validate checks the configuration after Defaults and returns an EINVALID error
// naming the first bad key.
func (c *PrinterConfig) Validate() error {
	bad := func(key, format string, args ...any) error {
		return serializer.Errorf(serializer.EINVALID, "printer.%s: %s", key, fmt.Sprintf(format, args...))
	}
	switch c.Transport {
	case TransportTCP:
		if c.Address == "" {
			return bad("address", "required for transport %q (e.g. \"192.168.1.50:9100\")", c.Transport)
		}
		host, port, err := net.SplitHostPort(c.Address)
		if err != nil || host == "" {
			return bad("address", "%q is not host:port (e.g. \"192.168.1.50:9100\")", c.Address)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return bad("address", "port %q in %q is not a number from 1 to 65535", port, c.Address)
		}
	case TransportSerial, TransportUSB:
		if c.Device == "" {
			example := "/dev/ttyUSB0"
			if c.Transport == TransportUSB {
				example = "/dev/usb/lp0"
			}
			return bad("device", "required for transport %q (e.g. %q)", c.Transport, example)
		}
	case TransportFile:
		if c.Dir == "" {
			return bad("dir", "required for transport %q (the spool folder)", c.Transport)
		}
	case TransportNone:
	default:
		return bad("transport", "unknown transport %q (tcp, serial, usb, file, none)", c.Transport)
	}
	switch c.Language {
	case LanguageZPL, LanguageTSPL, LanguagePDF:
	default:
		return bad("language", "unknown language %q (zpl, tspl, pdf)", c.Language)
	}
	if c.Transport == TransportSerial {
		if c.Baud <= 0 || !knownBaud(c.Baud) {
			return bad("baud", "%d is not a standard rate (e.g. 9600, 19200, 38400, 57600, 115200)", c.Baud)
		}
		if c.DataBits < 5 || c.DataBits > 8 {
			return bad("data_bits", "%d is not 5, 6, 7 or 8", c.DataBits)
		}
		switch c.Parity {
		case "none", "even", "odd":
		default:
			return bad("parity", "unknown parity %q (none, even, odd)", c.Parity)
		}
		if c.StopBits != 1 && c.StopBits != 2 {
			return bad("stop_bits", "%d is not 1 or 2", c.StopBits)
		}
		switch c.Flow {
		case FlowRTSCTS, FlowXONXOFF, FlowNone:
		default:
			return bad("flow", "unknown flow control %q (rtscts, xonxoff, none)", c.Flow)
		}
	}
	if c.DPI < 100 || c.DPI > 1200 {
		return bad("dpi", "%d is not a print resolution (e.g. 203, 300, 600)", c.DPI)
	}
	if d := time.Duration(c.StatusInterval); d < MinStatusInterval {
		return bad("status_interval", "%s is shorter than %s", d, MinStatusInterval)
	}
	return nil
}

// standardBauds are the rates go.bug.st/serial can set on Linux.
var standardBauds = []int{50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600,
	19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000}

func knownBaud(b int) bool { return slices.Contains(standardBauds, b) }
