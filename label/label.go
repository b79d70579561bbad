// Package label renders device and batch labels as ZPL II, TSPL, PDF and PNG.
//
// A Template places fields (the UCI in grouped form, the QR code, product name,
// model, batch, date, station, count, free text) on a label of a given size and
// resolution; Data fills it. Every renderer works from the same template and is
// pure: bytes in, bytes out.
//
// What each format can print:
//   - ZPL: any UTF-8 text, sent under ^CI28 with every non-ASCII byte hex-escaped
//     (_XX) after ^FH, so the job itself is 7-bit clean. The printer font must have
//     the glyphs: font 0 is sure to have the Western European ones; for other
//     scripts name a Unicode font the printer holds in ZPLFont.
//   - TSPL: printable ASCII only. CODEPAGE UTF-8 needs TrueType fonts that the
//     cheap TSPL printers found on factory floors do not have, so other text is
//     refused rather than printed as garbage.
//   - PDF and PNG: Windows-1252 (Western European letters, €, typographic quotes),
//     the range of the PDF core fonts and of the preview font. Other text is refused.
//
// Text with control characters is refused by every format: none of them can print
// it on one line.
package label

import (
	"maps"
	"slices"
	"strings"
	"time"

	"serialbox/serializer"
)

// Kind says what a field on a label prints.
type Kind string

// Field kinds.
const (
	KindUCI     Kind = "uci"     // the UCI in grouped display form, XXXX-XXXX-XXXX-XXXX
	KindQR      Kind = "qr"      // the QR code carrying the template's payload
	KindProduct Kind = "product" // the product name
	KindModel   Kind = "model"   // the product model
	KindBatch   Kind = "batch"   // the batch id
	KindDate    Kind = "date"    // the production date
	KindStation Kind = "station" // the station id
	KindText    Kind = "text"    // the free text of the label's data
	KindCount   Kind = "count"   // the number of devices (batch and carton labels)
)

// symbol reports whether the kind is a symbol rather than text.
func (k Kind) symbol() bool { return k == KindQR }

// kinds lists the known field kinds in documentation order.
var kinds = []Kind{KindUCI, KindQR, KindProduct, KindModel, KindBatch, KindDate, KindStation, KindText, KindCount}

// Field is one item placed on a label. Positions and sizes are in millimetres from
// the label's top-left corner.
type Field struct {
	Kind Kind    `toml:"kind"`
	X    float64 `toml:"x"`
	Y    float64 `toml:"y"`
	// Height is the text height in mm (text fields): the largest the text is
	// printed at, and the height of one line of its box.
	Height float64 `toml:"height,omitempty"`
	// MinHeight is the smallest text height in mm that the text may be shrunk to
	// before it is wrapped or cut short with an ellipsis; 0 means 60 % of Height.
	// The UCI is never printed smaller than 2 mm.
	MinHeight float64 `toml:"min_height,omitempty"`
	// Width is the width of the text box in mm; 0 means up to the label's
	// right margin (text fields).
	Width float64 `toml:"width,omitempty"`
	// Lines is the most lines the text may be wrapped onto; 0 means 1. The box
	// is Lines × Height high. The UCI always takes one line.
	Lines int `toml:"lines,omitempty"`
	// Module is the size of one symbol module (QR, DataMatrix) or narrow bar
	// (Code 128) in mm; each printer gets the whole number of dots closest to it,
	// never less than 0.25 mm. 0 means 0.33 mm, or the largest module that keeps
	// the symbol within Size when Size is given.
	Module float64 `toml:"module,omitempty"`
	// Magnification is the older way to give Module: dots of a 203 dpi printer
	// (8 dots/mm), 1–10. It prints the same size at every resolution.
	Magnification int `toml:"magnification,omitempty"`
	// Size bounds the symbol to a square of this many mm; 0 lets it reach the
	// label's margin (symbol fields).
	Size float64 `toml:"size,omitempty"`
	// Prefix is printed before the value, e.g. "Batch " (text fields).
	Prefix string `toml:"prefix,omitempty"`
	// Layout is the Go time layout of a date field; empty means 2006-01-02.
	Layout string `toml:"layout,omitempty"`
}

// Template is a label layout: its size, the printer resolution, the fields and the
// QR payload. Templates are configured per product and picked by name.
type Template struct {
	// Name identifies the template in lookups and error messages.
	Name string `toml:"name"`
	// Width and Height are the label size in mm.
	Width  float64 `toml:"width"`
	Height float64 `toml:"height"`
	// DPI is the printer resolution: 203, 300 or 600.
	DPI int `toml:"dpi"`
	// Gap is the gap between labels on the roll in mm (TSPL GAP); 0 means 2 mm.
	Gap float64 `toml:"gap,omitempty"`
	// Margin is the border in mm that no field may print in, where printers
	// cannot place ink reliably; 0 means 1 mm. Symbol quiet zones may lie in it.
	Margin float64 `toml:"margin,omitempty"`
	// Payload is the QR content as a text/template over the keys UCI, Product,
	// ProductName, Model, Batch, Station, Date, Count and Text, e.g.
	// "https://manager.example.com/claim?id={{.UCI}}&product={{.Product | urlquery}}".
	// Empty means {{.UCI}}.
	Payload string `toml:"payload,omitempty"`
	// ZPLFont names a printer-resident font for ZPL text (^A@), e.g. "E:ANMDJ.TTF"
	// for scripts that font 0 lacks; empty means the built-in font 0.
	ZPLFont string `toml:"zpl_font,omitempty"`
	// Fields are drawn in order.
	Fields []Field `toml:"fields"`
}

// DefaultPayload is the QR payload of templates that name none: the bare UCI.
const DefaultPayload = "{{.UCI}}"

// DefaultGap is the TSPL gap between labels in mm when a template names none.
const DefaultGap = 2.0

// DefaultMargin is the border of a label in mm that fields keep clear of when a
// template names none.
const DefaultMargin = 1.0

// DefaultModule is the module size of a symbol in mm when a template names
// neither a module nor a size: 0.33 mm, what handheld scanners read reliably.
const DefaultModule = 0.33

// MinModule is the smallest module size in mm accepted on any printer.
const MinModule = 0.25

// Data is what fills one label. A text field whose value is empty or zero (no
// model, batch 0, no date, count 0) is left off the label.
type Data struct {
	UCI       serializer.UCI     // device labels
	Product   serializer.Product // name, model and id
	BatchID   int64
	StationID string
	Date      time.Time // production date; printed in the date field's layout
	Text      string    // free text
	Count     int       // devices in the batch or carton
}

// DefaultDevice returns the device label: 50 × 30 mm at 203 dpi, the QR code of the
// UCI on the left, product name, model, batch and date beside it, and the UCI in
// grouped form across the bottom.
func DefaultDevice() Template {
	return Template{
		Name:    "device",
		Width:   50,
		Height:  30,
		DPI:     203,
		Payload: DefaultPayload,
		Fields: []Field{
			{Kind: KindQR, X: 2.5, Y: 2.5, Module: 0.5, Size: 15},
			{Kind: KindProduct, X: 18, Y: 2.5, Height: 3.5},
			{Kind: KindModel, X: 18, Y: 7, Height: 2.5},
			{Kind: KindBatch, X: 18, Y: 10.5, Height: 2.5, Prefix: "Batch "},
			{Kind: KindDate, X: 18, Y: 14, Height: 2.5},
			{Kind: KindUCI, X: 2, Y: 20.5, Height: 4},
		},
	}
}

// DefaultBatch returns the batch (carton) label: 100 × 50 mm at 203 dpi, the batch
// id as QR code, and product, model, batch, count, date and station as text.
func DefaultBatch() Template {
	return Template{
		Name:    "batch",
		Width:   100,
		Height:  50,
		DPI:     203,
		Payload: "{{.Batch}}",
		Fields: []Field{
			{Kind: KindQR, X: 4, Y: 4, Module: 0.75, Size: 26},
			{Kind: KindProduct, X: 32, Y: 4, Height: 6},
			{Kind: KindModel, X: 32, Y: 12, Height: 4},
			{Kind: KindBatch, X: 32, Y: 19, Height: 6, Prefix: "Batch "},
			{Kind: KindCount, X: 32, Y: 28, Height: 6, Prefix: "Qty "},
			{Kind: KindDate, X: 32, Y: 37, Height: 4},
			{Kind: KindStation, X: 32, Y: 43, Height: 4, Prefix: "Station "},
		},
	}
}

// Templates are named label templates, as configured; the key is the name.
type Templates map[string]Template

// Lookup returns the template called name with its Name set, or an ENOTFOUND error.
func (ts Templates) Lookup(name string) (Template, error) {
	t, ok := ts[name]
	if !ok {
		return Template{}, serializer.Errorf(serializer.ENOTFOUND, "no label template %q", name)
	}
	t.Name = name
	return t, nil
}

// Validate validates every template, naming the bad one.
func (ts Templates) Validate() error {
	for _, name := range slices.Sorted(maps.Keys(ts)) {
		t := ts[name]
		t.Name = name
		if err := t.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Format is a label output format.
type Format string

// Output formats.
const (
	FormatZPL  Format = "zpl"  // ZPL II for Zebra and compatible printers
	FormatTSPL Format = "tspl" // TSPL for TSC and compatible printers
	FormatPDF  Format = "pdf"  // one label per page at its real size
	FormatPNG  Format = "png"  // preview at the label's resolution
)

// Formats lists the output formats.
var Formats = []Format{FormatZPL, FormatTSPL, FormatPDF, FormatPNG}

// ParseFormat reads a format name such as "zpl"; case and surrounding space are ignored.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	for _, known := range Formats {
		if f == known {
			return f, nil
		}
	}
	return "", serializer.Errorf(serializer.EINVALID, "label format %q: must be zpl, tspl, pdf or png", s)
}

// ContentType returns the MIME type of the format.
func (f Format) ContentType() string {
	switch f {
	case FormatZPL:
		return "application/vnd.zebra-zpl"
	case FormatTSPL:
		return "text/plain; charset=windows-1252"
	case FormatPDF:
		return "application/pdf"
	case FormatPNG:
		return "image/png"
	}
	return "application/octet-stream"
}

// Ext returns the file name extension of the format, with its dot.
func (f Format) Ext() string { return "." + string(f) }

// Render renders one label in the named format: "zpl", "tspl", "pdf" or "png".
func Render(format string, t Template, d Data) ([]byte, error) {
	f, err := ParseFormat(format)
	if err != nil {
		return nil, err
	}
	switch f {
	case FormatZPL:
		return ZPL(t, d)
	case FormatTSPL:
		return TSPL(t, d)
	case FormatPDF:
		return PDF(t, d)
	default:
		return PNG(t, d)
	}
}
