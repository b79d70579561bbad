//go:build !linux

package station

import (
	"context"
	"errors"
)

// errLinuxOnly is returned by the serial and USB transports outside Linux.
var errLinuxOnly = errors.New("serial and USB printers are supported on Linux only")

// Serial is the serial transport; it works on Linux only.
type Serial struct{}

// NewSerial fails outside Linux.
func NewSerial(PrinterConfig, Timeouts) (*Serial, error) { return nil, errLinuxOnly }

// Send fails outside Linux.
func (*Serial) Send(context.Context, Job) error { return unreachable(errLinuxOnly) }

// Status fails outside Linux.
func (*Serial) Status(context.Context) (Status, error) {
	return Status{State: StateUnknown, Message: errLinuxOnly.Error()}, errLinuxOnly
}

// Close does nothing.
func (*Serial) Close() error { return nil }

// USB is the USB printer class transport; it works on Linux only.
type USB struct{}

// NewUSB returns a transport that fails outside Linux.
func NewUSB(string, string, Timeouts) *USB { return &USB{} }

// Send fails outside Linux.
func (*USB) Send(context.Context, Job) error { return unreachable(errLinuxOnly) }

// Status fails outside Linux.
func (*USB) Status(context.Context) (Status, error) {
	return Status{State: StateUnknown, Message: errLinuxOnly.Error()}, errLinuxOnly
}

// Close does nothing.
func (*USB) Close() error { return nil }
