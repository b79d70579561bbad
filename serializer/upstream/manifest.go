package upstream

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"serialbox/serializer"
)

// manifestColumns is the manifest's column order; it only ever grows at the end.
var manifestColumns = []string{
	"uci",          // canonical UCI, 16 symbols
	"display",      // the UCI as printed on the label, XXXX-XXXX-XXXX-XXXX
	"batch",        // batch id
	"product",      // product id
	"product_name", // product name
	"model",        // product model
	"station",      // station id
	"identity",     // e.g. "hwid:ABC123"; empty when the jig sent none
	"state",        // issued, labeled, verified or voided
	"created",      // RFC 3339, UTC
	"attributes",   // the jig's device object as compact JSON; empty (CSV) or null (JSON) when none
}

// ManifestColumns returns the manifest's columns in order: the CSV header and the
// keys of each JSON line.
func ManifestColumns() []string { return append([]string(nil), manifestColumns...) }

// ManifestWriter writes a batch manifest one device at a time, in constant memory.
type ManifestWriter interface {
	// Write adds one device of product p.
	Write(d serializer.Device, p serializer.Product) error
	// Flush writes out everything buffered; call it once at the end.
	Flush() error
}

// NewManifestWriter returns a writer of format csv or jsonl to w. A CSV manifest
// starts with the header row, written even when no device follows.
func NewManifestWriter(w io.Writer, format string) (ManifestWriter, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	switch strings.ToLower(strings.TrimSpace(format)) {
	case FormatCSV:
		cw := csv.NewWriter(bw) // reuses bw: it is a large enough *bufio.Writer
		if err := cw.Write(manifestColumns); err != nil {
			return nil, err
		}
		return &csvManifest{w: cw, rec: make([]string, len(manifestColumns))}, nil
	case FormatJSONL:
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		return &jsonlManifest{bw: bw, enc: enc}, nil
	}
	return nil, serializer.Errorf(serializer.EINVALID, "unknown manifest format %q (csv, jsonl)", format)
}

// ManifestContentType returns the media type of a manifest format.
func ManifestContentType(format string) string {
	if strings.EqualFold(strings.TrimSpace(format), FormatJSONL) {
		return "application/jsonl; charset=utf-8"
	}
	return "text/csv; charset=utf-8"
}

type csvManifest struct {
	w    *csv.Writer
	rec  []string
	attr bytes.Buffer
}

func (m *csvManifest) Write(d serializer.Device, p serializer.Product) error {
	m.attr.Reset()
	if raw := bytes.TrimSpace(d.Attributes); len(raw) > 0 {
		if json.Compact(&m.attr, raw) != nil {
			m.attr.Reset()
			m.attr.Write(raw)
		}
	}
	product := d.ProductID
	if product == "" {
		product = p.ID
	}
	uci := d.UCI.String()
	r := m.rec
	r[0] = uci
	r[1] = uci[0:4] + "-" + uci[4:8] + "-" + uci[8:12] + "-" + uci[12:16]
	r[2] = strconv.FormatInt(d.BatchID, 10)
	r[3] = GuardCSV(product)
	r[4] = GuardCSV(p.Name)
	r[5] = GuardCSV(p.Model)
	r[6] = GuardCSV(d.StationID)
	r[7] = GuardCSV(d.Identity)
	r[8] = GuardCSV(string(d.State))
	r[9] = formatTime(d.CreatedAt)
	r[10] = GuardCSV(m.attr.String())
	return m.w.Write(r)
}

func (m *csvManifest) Flush() error {
	m.w.Flush()
	return m.w.Error()
}

// GuardCSV protects a CSV value from being run as a formula by a spreadsheet: a value
// starting with = + - @, a tab, a carriage return or an apostrophe gets a leading
// apostrophe. UnguardCSV reverses it.
func GuardCSV(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r', '\'':
		return "'" + s
	}
	return s
}

// UnguardCSV returns the value GuardCSV was given: one leading apostrophe is removed.
func UnguardCSV(s string) string { return strings.TrimPrefix(s, "'") }

type jsonlManifest struct {
	bw  *bufio.Writer
	enc *json.Encoder
}

// manifestLine is one JSON line; the field order is manifestColumns.
type manifestLine struct {
	UCI         string          `json:"uci"`
	Display     string          `json:"display"`
	Batch       int64           `json:"batch"`
	Product     string          `json:"product"`
	ProductName string          `json:"product_name"`
	Model       string          `json:"model"`
	Station     string          `json:"station"`
	Identity    string          `json:"identity"`
	State       string          `json:"state"`
	Created     string          `json:"created"`
	Attributes  json.RawMessage `json:"attributes"`
}

func (m *jsonlManifest) Write(d serializer.Device, p serializer.Product) error {
	product := d.ProductID
	if product == "" {
		product = p.ID
	}
	uci := d.UCI.String()
	err := m.enc.Encode(manifestLine{
		UCI:         uci,
		Display:     uci[0:4] + "-" + uci[4:8] + "-" + uci[8:12] + "-" + uci[12:16],
		Batch:       d.BatchID,
		Product:     product,
		ProductName: p.Name,
		Model:       p.Model,
		Station:     d.StationID,
		Identity:    d.Identity,
		State:       string(d.State),
		Created:     formatTime(d.CreatedAt),
		Attributes:  attributesJSON(d.Attributes),
	})
	if err != nil {
		return fmt.Errorf("manifest line for %s: %w", uci, err)
	}
	return nil
}

func (m *jsonlManifest) Flush() error { return m.bw.Flush() }
