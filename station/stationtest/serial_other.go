//go:build !linux

package stationtest

import "errors"

// FakeSerialPrinter is the fake serial printer; it runs on Linux only.
type FakeSerialPrinter struct {
	printer
}

// StartFakeSerialPrinter fails outside Linux.
func StartFakeSerialPrinter(baud int) (*FakeSerialPrinter, error) {
	return nil, errors.New("the fake serial printer runs on Linux only")
}

// Path returns nothing outside Linux.
func (p *FakeSerialPrinter) Path() string { return "" }

// SetStalled does nothing outside Linux.
func (p *FakeSerialPrinter) SetStalled(bool) {}

// Close does nothing outside Linux.
func (p *FakeSerialPrinter) Close() error { return nil }
