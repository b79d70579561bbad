package label

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"

	"serialbox/serializer"
)

// Limits a template must respect.
const (
	// maxLabelMM is the longest label side accepted. At 600 dpi it is 7087 dots,
	// well inside the 32000 dots ZPL's ^PW and ^LL address.
	maxLabelMM  = 300
	minTextDots = 10   // smallest ZPL font height
	maxGapMM    = 25   // largest TSPL gap accepted, mm
	maxPayload  = 4096 // longest QR payload considered, bytes
)

// maxPrintWidthMM is the widest print head made at each resolution: 8.5 in at
// 203 and 300 dpi, 4.16 in at 600 dpi.
var maxPrintWidthMM = map[int]float64{203: 216, 300: 216, 600: 106}

// zplFontPattern is a printer-resident font: drive letter, name, extension. It
// keeps ^, ~ and commas out of the ^A@ command the name is written into.
var zplFontPattern = regexp.MustCompile(`^[REBAZ]:[A-Z0-9_-]{1,16}\.(TTF|TTE|FNT|OTF)$`)

// sampleData fills a template at validation time: realistic lengths, a 26-character
// product id (a ULID) and a seven-digit batch.
var sampleData = Data{
	UCI:       serializer.MustParse("04HMASW9NF6YY093"),
	Product:   serializer.Product{ID: "01HZX5V0K3Q7A2B9C4D6E8F0GH", Name: "Sample product", Model: "SP-1"},
	BatchID:   1234567,
	StationID: "station-1",
	Date:      time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC),
	Text:      "Sample text",
	Count:     9999,
}

// compiled is a validated template with its parsed payload and text boxes.
type compiled struct {
	Template
	payload *payloadTemplate
	boxes   []textBox // by field; zero for symbols
}

// resolved is a template filled with data and laid out: one text per field
// ("" = left off) with its lines, the payload and each symbol.
type resolved struct {
	texts   []string
	lines   [][]line
	payload string
	syms    []symbol
}

// Validate checks the template on its own: resolution, size, every field's kind,
// box and symbol, the geometry (every field inside the label's margin, quiet
// zones inside the label, no field over another) and the payload template, which
// must parse, name only known keys and fit its symbols when filled with sample
// data of realistic length.
func (t Template) Validate() error {
	_, err := t.compile()
	return err
}

// Check validates the template and checks that d can be printed with it in format
// f: the UCI is set when the label shows it, every text is printable in that
// format and laid out by its font's metrics, and the payload fits its symbols.
// A UCI field is also laid out with the widest UCIs (WorstUCIs), so a template
// that any UCI would not fit is refused. Running it at configuration load with
// each product and printer refuses what a printer cannot print before the
// first label.
func (t Template) Check(f Format, d Data) error {
	c, err := t.compile()
	if err != nil {
		return err
	}
	if _, err = c.resolve(f, d, false); err != nil {
		return err
	}
	if !c.showsUCIText() {
		return nil
	}
	for _, w := range WorstUCIs {
		d.UCI = serializer.MustParse(w)
		if _, err := c.resolve(f, d, false); err != nil {
			return err
		}
	}
	return nil
}

func (c *compiled) showsUCIText() bool {
	for _, f := range c.Fields {
		if f.Kind == KindUCI {
			return true
		}
	}
	return false
}

func (t Template) name() string {
	if t.Name == "" {
		return "(unnamed)"
	}
	return t.Name
}

func (t Template) errorf(format string, args ...any) error {
	return serializer.Errorf(serializer.EINVALID, "label template %q: %s", t.name(), fmt.Sprintf(format, args...))
}

func (t Template) fieldErrorf(i int, format string, args ...any) error {
	return t.errorf("field %d (%s): %s", i+1, t.Fields[i].Kind, fmt.Sprintf(format, args...))
}

// dots converts mm to printer dots at the template's resolution.
func (t Template) dots(mm float64) int { return int(math.Round(mm * float64(t.DPI) / 25.4)) }

// gap returns the TSPL gap in mm.
func (t Template) gap() float64 {
	if t.Gap == 0 {
		return DefaultGap
	}
	return t.Gap
}

func (t Template) compile() (*compiled, error) {
	switch t.DPI {
	case 203, 300, 600:
	default:
		return nil, t.errorf("dpi %d: must be 203, 300 or 600", t.DPI)
	}
	for _, side := range []struct {
		name string
		mm   float64
	}{{"width", t.Width}, {"height", t.Height}} {
		switch {
		case !(side.mm > 0):
			return nil, t.errorf("label %s %g mm: must be more than 0", side.name, side.mm)
		case side.mm > maxLabelMM:
			return nil, t.errorf("label %s %g mm: must be at most %d mm", side.name, side.mm, maxLabelMM)
		}
	}
	if w := maxPrintWidthMM[t.DPI]; t.Width > w {
		return nil, t.errorf("label width %g mm is wider than the widest %d dpi print head (%g mm)", t.Width, t.DPI, w)
	}
	if !(t.Gap >= 0 && t.Gap <= maxGapMM) {
		return nil, t.errorf("gap %g mm: must be 0 to %d mm", t.Gap, maxGapMM)
	}
	if !(t.Margin >= 0 && 2*t.Margin < min(t.Width, t.Height)) {
		return nil, t.errorf("margin %g mm: must be 0 or more and leave room inside the %g × %g mm label", t.Margin, t.Width, t.Height)
	}
	if t.ZPLFont != "" && !zplFontPattern.MatchString(t.ZPLFont) {
		return nil, t.errorf("zpl_font %q: must name a printer font such as E:ANMDJ.TTF", t.ZPLFont)
	}
	c := &compiled{Template: t, boxes: make([]textBox, len(t.Fields))}
	hasSymbol := false
	for i, f := range t.Fields {
		if !slices.Contains(kinds, f.Kind) {
			return nil, t.fieldErrorf(i, "unknown kind; known kinds are %s", kindList())
		}
		if !(f.X >= 0 && f.Y >= 0 && f.X < t.Width && f.Y < t.Height) {
			return nil, t.fieldErrorf(i, "position (%g, %g) mm is outside the %g × %g mm label", f.X, f.Y, t.Width, t.Height)
		}
		if f.Kind.symbol() {
			hasSymbol = true
			if f.Magnification < 0 || f.Magnification > 10 {
				return nil, t.fieldErrorf(i, "magnification %d: must be 1 to 10 dots of a 203 dpi printer per module", f.Magnification)
			}
			if !(f.Module == 0 || (f.Module >= MinModule && f.Module <= 5)) {
				return nil, t.fieldErrorf(i, "module %g mm: must be %g to 5 mm", f.Module, MinModule)
			}
			if t.dots(f.Y) < zplQRDrop {
				return nil, t.fieldErrorf(i, "y %g mm: a QR code must start at least %d dots (%.2g mm at %d dpi) below the top edge, "+
					"where ZPL printers put it anyway", f.Y, zplQRDrop, zplQRDrop*25.4/float64(t.DPI), t.DPI)
			}
			if !(f.Size >= 0 && f.Size <= maxLabelMM) {
				return nil, t.fieldErrorf(i, "size %g mm: must be 0 to %d mm", f.Size, maxLabelMM)
			}
			continue
		}
		if h := t.dots(f.Height); !(f.Height > 0) || h < minTextDots {
			return nil, t.fieldErrorf(i, "text height %g mm: must be at least %d dots (%.2g mm at %d dpi)",
				f.Height, minTextDots, minTextDots*25.4/float64(t.DPI), t.DPI)
		}
		if !(f.MinHeight >= 0 && f.MinHeight <= f.Height) {
			return nil, t.fieldErrorf(i, "min_height %g mm: must be 0 to its height, %g mm", f.MinHeight, f.Height)
		}
		if !(f.Width >= 0 && f.Width <= maxLabelMM) {
			return nil, t.fieldErrorf(i, "width %g mm: must be 0 to %d mm", f.Width, maxLabelMM)
		}
		if f.Lines < 0 || f.Lines > 20 {
			return nil, t.fieldErrorf(i, "lines %d: must be 0 to 20", f.Lines)
		}
		if err := checkPlain(f.Prefix); err != nil {
			return nil, t.fieldErrorf(i, "prefix %s", err)
		}
		c.boxes[i] = t.textBoxFor(i)
		if b := c.boxes[i].r; b.x1-b.x0 < c.boxes[i].lineH {
			return nil, t.fieldErrorf(i, "its box %s is narrower than one character", c.rectMM(b))
		}
	}

	src := t.Payload
	if src == "" {
		src = DefaultPayload
	}
	pt, err := parsePayload(src)
	if err != nil {
		return nil, t.errorf("payload %q does not parse: %v", src, err)
	}
	c.payload = pt
	p, err := pt.execute(sampleData)
	if err != nil {
		return nil, t.errorf("payload %q: %v", src, err)
	}
	syms := make([]symbol, len(t.Fields))
	if hasSymbol {
		if p == "" {
			return nil, t.errorf("payload %q is empty for sample data", src)
		}
		if err := c.layoutSymbols(p, syms); err != nil {
			return nil, err
		}
	}
	if err := c.checkGeometry(syms); err != nil {
		return nil, err
	}
	return c, nil
}

// layoutSymbols lays out every symbol field for payload into syms.
func (c *compiled) layoutSymbols(payload string, syms []symbol) error {
	for i, f := range c.Fields {
		if f.Kind == KindQR {
			s, err := c.qrSymbol(i, payload)
			if err != nil {
				return err
			}
			syms[i] = s
		}
	}
	return nil
}

func kindList() string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// usesUCI reports whether the label shows the UCI, as text or in the QR payload.
func (c *compiled) usesUCI() bool {
	for _, f := range c.Fields {
		if f.Kind == KindUCI || (f.Kind.symbol() && c.payload.usesUCI) {
			return true
		}
	}
	return false
}

// resolve fills the template with d, checks that format f (and with preview, the
// PNG preview too) can print the result, and lays it out by f's metrics.
func (c *compiled) resolve(f Format, d Data, preview bool) (resolved, error) {
	if d.UCI.IsZero() && c.usesUCI() {
		return resolved{}, c.errorf("the label shows a UCI and the data has none")
	}
	n := len(c.Fields)
	r := resolved{texts: make([]string, n), lines: make([][]line, n)}
	m := c.metricsFor(f)
	hasSymbol := false
	for i, fl := range c.Fields {
		var v string
		switch fl.Kind {
		case KindQR:
			hasSymbol = true
			continue
		case KindUCI:
			v = d.UCI.Grouped()
		case KindProduct:
			v = d.Product.Name
		case KindModel:
			v = d.Product.Model
		case KindBatch:
			if d.BatchID != 0 {
				v = strconv.FormatInt(d.BatchID, 10)
			}
		case KindDate:
			if !d.Date.IsZero() {
				layout := fl.Layout
				if layout == "" {
					layout = time.DateOnly
				}
				v = d.Date.Format(layout)
			}
		case KindStation:
			v = d.StationID
		case KindText:
			v = d.Text
		case KindCount:
			if d.Count != 0 {
				v = strconv.Itoa(d.Count)
			}
		}
		if v == "" {
			continue // nothing to print: the field is left off
		}
		v = fl.Prefix + v
		if preview {
			if err := c.checkText(FormatPNG, v); err != nil {
				return resolved{}, c.fieldErrorf(i, "%s", err)
			}
		}
		if err := c.checkText(f, v); err != nil {
			return resolved{}, c.fieldErrorf(i, "%s", err)
		}
		ls, err := c.layoutText(m, i, v, fl.Kind == KindUCI)
		if err != nil {
			return resolved{}, err
		}
		r.texts[i], r.lines[i] = v, ls
	}
	if !hasSymbol {
		return r, nil
	}
	p, err := c.payload.execute(d)
	if err != nil {
		return resolved{}, c.errorf("payload: %v", err)
	}
	if p == "" {
		return resolved{}, c.errorf("QR payload is empty")
	}
	if err := checkPayload(f, p); err != nil {
		return resolved{}, c.errorf("QR payload %s", err)
	}
	r.syms = make([]symbol, n)
	if err := c.layoutSymbols(p, r.syms); err != nil {
		return resolved{}, err
	}
	if err := c.checkGeometry(r.syms); err != nil {
		return resolved{}, err
	}
	r.payload = p
	return r, nil
}

// checkPlain accepts text that is valid UTF-8 without control characters.
func checkPlain(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", quote(s))
	}
	for _, r := range s {
		if isControl(r) {
			return fmt.Errorf("%s contains the control character %U, which no label prints", quote(s), r)
		}
	}
	return nil
}

// checkText accepts text that format f prints as it is in the template's font:
// under a named ZPL font anything printable, as the operator vouches for it.
func (c *compiled) checkText(f Format, s string) error {
	if f == FormatZPL && c.ZPLFont != "" {
		return checkPlain(s)
	}
	return checkText(f, s)
}

// checkText accepts text that format f prints as it is in its built-in font.
func checkText(f Format, s string) error {
	if err := checkPlain(s); err != nil {
		return err
	}
	switch f {
	case FormatZPL:
		for _, r := range s {
			if _, ok := cp1252(r); !ok {
				return fmt.Errorf("%s needs %q (%U), which ZPL font 0 does not have; name a printer font that has it in zpl_font",
					quote(s), r, r)
			}
		}
	case FormatTSPL:
		return checkTSPLText(s)
	case FormatPDF, FormatPNG:
		for _, r := range s {
			if _, ok := cp1252(r); !ok {
				return fmt.Errorf("%s: %s labels print Western European (Windows-1252) text only, not %q; print it as ZPL",
					quote(s), strings.ToUpper(string(f)), r)
			}
		}
	}
	return nil
}

// checkPayload accepts a QR payload that format f encodes as it is. ZPL, PDF and
// PNG carry any UTF-8 in the QR code, control characters included.
func checkPayload(f Format, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", quote(s))
	}
	if f == FormatTSPL {
		return checkTSPL(s)
	}
	return nil
}

// checkTSPLText accepts Windows-1252 text, which TSPL prints under CODEPAGE 1252,
// without the \[ escape introducer.
func checkTSPLText(s string) error {
	for _, r := range s {
		if _, ok := cp1252(r); !ok {
			return fmt.Errorf("%s: TSPL labels print Western European (Windows-1252) text only, not %q; print it as ZPL", quote(s), r)
		}
	}
	if strings.Contains(s, `\[`) {
		return fmt.Errorf(`%s contains \[, which TSPL printers read as an escape`, quote(s))
	}
	return nil
}

// checkTSPL accepts printable ASCII without the \[ escape introducer.
func checkTSPL(s string) error {
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return fmt.Errorf("%s: TSPL labels carry printable ASCII only, not %q; print it as ZPL", quote(s), r)
		}
	}
	if strings.Contains(s, `\[`) {
		return fmt.Errorf(`%s contains \[, which TSPL printers read as an escape`, quote(s))
	}
	return nil
}

// isControl reports C0 and C1 control characters and DEL.
func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }

// quote quotes s for an error message, shortened to 60 bytes.
func quote(s string) string {
	if len(s) > 60 {
		cut := 60
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

// payloadTemplate is a parsed QR payload template.
type payloadTemplate struct {
	tmpl    *template.Template
	usesUCI bool // names .UCI, so the label needs a UCI
}

// payloadCache holds parsed payload templates by source; configurations have few.
var payloadCache struct {
	sync.Mutex
	m map[string]*payloadTemplate
}

const payloadCacheMax = 256

func parsePayload(src string) (*payloadTemplate, error) {
	payloadCache.Lock()
	pt, ok := payloadCache.m[src]
	payloadCache.Unlock()
	if ok {
		return pt, nil
	}
	tmpl, err := template.New("payload").Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, err
	}
	pt = &payloadTemplate{tmpl: tmpl}
	for _, t := range tmpl.Templates() {
		if t.Tree != nil && namesUCI(t.Tree.Root) {
			pt.usesUCI = true
		}
	}
	payloadCache.Lock()
	if payloadCache.m == nil || len(payloadCache.m) >= payloadCacheMax {
		payloadCache.m = make(map[string]*payloadTemplate)
	}
	payloadCache.m[src] = pt
	payloadCache.Unlock()
	return pt, nil
}

// execute fills the payload with d's values, keyed as documented on Template.Payload.
func (pt *payloadTemplate) execute(d Data) (string, error) {
	var b limitedBuilder
	err := pt.tmpl.Execute(&b, map[string]string{
		"UCI":         d.UCI.String(),
		"Product":     d.Product.ID,
		"ProductName": d.Product.Name,
		"Model":       d.Product.Model,
		"Batch":       strconv.FormatInt(d.BatchID, 10),
		"Station":     d.StationID,
		"Date":        d.Date.Format(time.DateOnly),
		"Count":       strconv.Itoa(d.Count),
		"Text":        d.Text,
	})
	if err != nil {
		return "", err
	}
	return b.String(), nil
}

// limitedBuilder is a strings.Builder that refuses to grow past maxPayload.
type limitedBuilder struct{ strings.Builder }

func (b *limitedBuilder) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxPayload {
		return 0, fmt.Errorf("longer than %d bytes", maxPayload)
	}
	return b.Builder.Write(p)
}

// namesUCI reports whether the template tree may refer to the UCI key. It errs on
// the side of yes: a label that might show the UCI needs one.
func namesUCI(n parse.Node) bool {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return false
		}
		return slices.ContainsFunc(n.Nodes, namesUCI)
	case *parse.ActionNode:
		return namesUCI(n.Pipe)
	case *parse.PipeNode:
		if n == nil {
			return false
		}
		for _, cmd := range n.Cmds {
			if namesUCI(cmd) {
				return true
			}
		}
		return false
	case *parse.CommandNode:
		return slices.ContainsFunc(n.Args, namesUCI)
	case *parse.FieldNode:
		return len(n.Ident) > 0 && n.Ident[0] == "UCI"
	case *parse.VariableNode: // $.UCI, $x.UCI
		return slices.Contains(n.Ident[1:], "UCI")
	case *parse.StringNode: // index . "UCI"
		return n.Text == "UCI"
	case *parse.ChainNode:
		return namesUCI(n.Node) || slices.Contains(n.Field, "UCI")
	case *parse.IfNode:
		return namesUCI(n.Pipe) || namesUCI(n.List) || namesUCI(n.ElseList)
	case *parse.RangeNode:
		return namesUCI(n.Pipe) || namesUCI(n.List) || namesUCI(n.ElseList)
	case *parse.WithNode:
		return namesUCI(n.Pipe) || namesUCI(n.List) || namesUCI(n.ElseList)
	case *parse.TemplateNode:
		return namesUCI(n.Pipe)
	}
	return false
}
