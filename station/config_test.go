package station_test

import (
	"strings"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/station"
)

func TestPrinterConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  station.PrinterConfig
		want string // substring of the error; "" = valid
	}{
		{"defaults are the file spool", station.PrinterConfig{}, ""},
		{"tcp", station.PrinterConfig{Transport: "tcp", Address: "10.0.0.5:9100"}, ""},
		{"tcp default port", station.PrinterConfig{Transport: "TCP", Address: "printer-3"}, ""},
		{"serial", station.PrinterConfig{Transport: "serial", Device: "/dev/ttyUSB0", Flow: "xonxoff", Parity: "even", StopBits: 2, DataBits: 7}, ""},
		{"usb", station.PrinterConfig{Transport: "usb", Device: "/dev/usb/lp0", Language: "tspl"}, ""},
		{"none", station.PrinterConfig{Transport: "none", Language: "pdf"}, ""},
		{"unknown transport", station.PrinterConfig{Transport: "x"}, `printer.transport: unknown transport "x" (tcp, serial, usb, file, none)`},
		{"tcp without address", station.PrinterConfig{Transport: "tcp"}, "printer.address: required"},
		{"tcp bad port", station.PrinterConfig{Transport: "tcp", Address: "10.0.0.5:printer"}, "printer.address: port"},
		{"tcp port out of range", station.PrinterConfig{Transport: "tcp", Address: "10.0.0.5:70000"}, "printer.address: port"},
		{"serial without device", station.PrinterConfig{Transport: "serial"}, "printer.device: required"},
		{"usb without device", station.PrinterConfig{Transport: "usb"}, `printer.device: required for transport "usb" (e.g. "/dev/usb/lp0")`},
		{"unknown language", station.PrinterConfig{Transport: "none", Language: "epl"}, `printer.language: unknown language "epl" (zpl, tspl, pdf)`},
		{"odd baud", station.PrinterConfig{Transport: "serial", Device: "/dev/ttyS0", Baud: 9601}, "printer.baud: 9601"},
		{"data bits", station.PrinterConfig{Transport: "serial", Device: "/dev/ttyS0", DataBits: 9}, "printer.data_bits: 9"},
		{"parity", station.PrinterConfig{Transport: "serial", Device: "/dev/ttyS0", Parity: "mark"}, `printer.parity: unknown parity "mark"`},
		{"stop bits", station.PrinterConfig{Transport: "serial", Device: "/dev/ttyS0", StopBits: 3}, "printer.stop_bits: 3"},
		{"flow", station.PrinterConfig{Transport: "serial", Device: "/dev/ttyS0", Flow: "dtrdsr"}, `printer.flow: unknown flow control "dtrdsr"`},
		{"dpi", station.PrinterConfig{Transport: "none", DPI: 72}, "printer.dpi: 72"},
		{"status interval", station.PrinterConfig{Transport: "none", StatusInterval: station.Duration(100 * time.Millisecond)}, "printer.status_interval: 100ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Defaults()
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate() = nil, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Validate() = %v, want it to contain %q", err, tt.want)
			case err != nil && serializer.ErrorCode(err) != serializer.EINVALID:
				t.Fatalf("error code = %q, want %q", serializer.ErrorCode(err), serializer.EINVALID)
			}
		})
	}
}

func TestPrinterConfigDefaults(t *testing.T) {
	cfg := station.PrinterConfig{Transport: "tcp", Address: "printer-3"}
	cfg.Defaults()
	want := station.PrinterConfig{
		Transport: "tcp", Address: "printer-3:9100", Baud: 9600, DataBits: 8, Parity: "none",
		StopBits: 1, Flow: "rtscts", Language: "zpl", DPI: 203, StatusInterval: station.Duration(10 * time.Second),
	}
	if cfg != want {
		t.Errorf("Defaults() =\n%+v, want\n%+v", cfg, want)
	}
	var file station.PrinterConfig
	file.Defaults()
	if file.Transport != "file" || file.Dir != "labels" {
		t.Errorf("empty config defaults to %q in %q, want file in labels", file.Transport, file.Dir)
	}
}
