package label

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"

	"serialbox/serializer"
)

// ptPerMM converts millimetres to PDF points.
const ptPerMM = 72 / 25.4

// pdfBaseline is where the text baseline sits in a text field, as a fraction of
// its height from the top: the rest is room for descenders.
const pdfBaseline = 0.8

// pdfEpoch dates PDFs whose labels carry no date, so that output stays reproducible.
var pdfEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Sheet is a page layout for printing many labels on office paper or pre-cut
// label sheets. Lengths are in mm.
type Sheet struct {
	// Paper is "A4" or "Letter"; empty means A4.
	Paper string `toml:"paper"`
	// Columns and Rows of labels per page; 0 fits as many as the margins allow.
	Columns int `toml:"columns"`
	Rows    int `toml:"rows"`
	// MarginTop and MarginLeft place the first label; the same margins are kept
	// free at the bottom and right when columns or rows are fitted.
	MarginTop  float64 `toml:"margin_top"`
	MarginLeft float64 `toml:"margin_left"`
	// ColumnGap and RowGap are the space between labels.
	ColumnGap float64 `toml:"column_gap"`
	RowGap    float64 `toml:"row_gap"`
	// Outline draws a thin grey cutting line around each label.
	Outline bool `toml:"outline"`
}

// papers are the sheet sizes in mm, portrait.
var papers = map[string]fpdf.SizeType{
	"a4":     {Wd: 210, Ht: 297},
	"letter": {Wd: 215.9, Ht: 279.4},
}

// sheetLayout is a Sheet resolved for one template.
type sheetLayout struct {
	paper      fpdf.SizeType
	cols, rows int
}

// layout checks the sheet against t and works out columns and rows.
func (s Sheet) layout(t Template) (sheetLayout, error) {
	errorf := func(format string, args ...any) error {
		return serializer.Errorf(serializer.EINVALID, "label sheet for template %q: %s", t.name(), fmt.Sprintf(format, args...))
	}
	name := s.Paper
	if name == "" {
		name = "A4"
	}
	paper, ok := papers[strings.ToLower(name)]
	if !ok {
		return sheetLayout{}, errorf("paper %q: must be A4 or Letter", s.Paper)
	}
	for _, v := range []struct {
		name string
		mm   float64
	}{{"margin_top", s.MarginTop}, {"margin_left", s.MarginLeft}, {"column_gap", s.ColumnGap}, {"row_gap", s.RowGap}} {
		if !(v.mm >= 0 && v.mm < 100) {
			return sheetLayout{}, errorf("%s %g mm: must be 0 to 100 mm", v.name, v.mm)
		}
	}
	if s.Columns < 0 || s.Rows < 0 || s.Columns > 100 || s.Rows > 100 {
		return sheetLayout{}, errorf("%d columns × %d rows: must be 0 to 100 each", s.Columns, s.Rows)
	}
	fit := func(count int, page, margin, size, gap float64) int {
		if count > 0 {
			return count
		}
		return int(math.Floor((page - 2*margin + gap) / (size + gap)))
	}
	l := sheetLayout{
		paper: paper,
		cols:  fit(s.Columns, paper.Wd, s.MarginLeft, t.Width, s.ColumnGap),
		rows:  fit(s.Rows, paper.Ht, s.MarginTop, t.Height, s.RowGap),
	}
	const eps = 1e-9
	if l.cols < 1 || s.MarginLeft+float64(l.cols)*t.Width+float64(l.cols-1)*s.ColumnGap > paper.Wd+eps {
		return sheetLayout{}, errorf("%d columns of %g mm labels do not fit across the %g mm %s page", max(l.cols, 1), t.Width, paper.Wd, name)
	}
	if l.rows < 1 || s.MarginTop+float64(l.rows)*t.Height+float64(l.rows-1)*s.RowGap > paper.Ht+eps {
		return sheetLayout{}, errorf("%d rows of %g mm labels do not fit down the %g mm %s page", max(l.rows, 1), t.Height, paper.Ht, name)
	}
	return l, nil
}

// PDF renders one label as a one-page PDF of the label's size: text in Helvetica
// and the QR code as vector modules of the printer's module size.
func PDF(t Template, d Data) ([]byte, error) {
	c, err := t.compile()
	if err != nil {
		return nil, err
	}
	r, err := c.resolve(FormatPDF, d, false)
	if err != nil {
		return nil, err
	}
	size := fpdf.SizeType{Wd: c.Width, Ht: c.Height}
	pdf := newPDF(size, d.Date)
	pdf.AddPage()
	if _, err := c.drawPDF(pdf, nil, 0, 0, size.Ht, r); err != nil {
		return nil, err
	}
	return outputPDF(pdf)
}

// PDFSheet renders labels onto as many sheets of paper as they need, row by row.
func PDFSheet(t Template, s Sheet, labels []Data) ([]byte, error) {
	c, err := t.compile()
	if err != nil {
		return nil, err
	}
	l, err := s.layout(t)
	if err != nil {
		return nil, err
	}
	if len(labels) == 0 {
		return nil, serializer.Errorf(serializer.EINVALID, "label sheet for template %q: no labels", t.name())
	}
	pdf := newPDF(l.paper, labels[0].Date)
	if s.Outline {
		pdf.SetDrawColor(160, 160, 160)
		pdf.SetLineWidth(0.1)
	}
	perPage := l.cols * l.rows
	var buf []byte
	for i, d := range labels {
		r, err := c.resolve(FormatPDF, d, false)
		if err != nil {
			return nil, sheetLabelError(i, len(labels), err)
		}
		n := i % perPage
		if n == 0 {
			pdf.AddPage()
		}
		x := s.MarginLeft + float64(n%l.cols)*(t.Width+s.ColumnGap)
		y := s.MarginTop + float64(n/l.cols)*(t.Height+s.RowGap)
		if s.Outline {
			pdf.Rect(x, y, t.Width, t.Height, "D")
		}
		if buf, err = c.drawPDF(pdf, buf, x, y, l.paper.Ht, r); err != nil {
			return nil, sheetLabelError(i, len(labels), err)
		}
	}
	return outputPDF(pdf)
}

// sheetLabelError names label i of n in err, keeping a domain error's code.
func sheetLabelError(i, n int, err error) error {
	var e *serializer.Error
	if errors.As(err, &e) {
		return serializer.Errorf(e.Code, "label %d of %d: %s", i+1, n, e.Message)
	}
	return fmt.Errorf("label %d of %d: %w", i+1, n, err)
}

func newPDF(size fpdf.SizeType, date time.Time) *fpdf.Fpdf {
	pdf := fpdf.NewCustom(&fpdf.InitType{OrientationStr: "P", UnitStr: "mm", Size: size})
	pdf.SetMargins(0, 0, 0)
	pdf.SetAutoPageBreak(false, 0)
	pdf.SetCatalogSort(true)
	if date.IsZero() {
		date = pdfEpoch
	}
	pdf.SetCreationDate(date)
	pdf.SetModificationDate(date)
	pdf.SetProducer("serialbox", false)
	return pdf
}

func outputPDF(pdf *fpdf.Fpdf) ([]byte, error) {
	var out bytes.Buffer
	if err := pdf.Output(&out); err != nil {
		return nil, fmt.Errorf("write label PDF: %w", err)
	}
	return out.Bytes(), nil
}

// drawPDF draws the resolved label with its top-left corner at (ox, oy) mm on a
// page pageH mm high. buf is scratch space, returned for reuse.
func (c *compiled) drawPDF(pdf *fpdf.Fpdf, buf []byte, ox, oy, pageH float64, r resolved) ([]byte, error) {
	var qr [][]bool
	for i, f := range c.Fields {
		if f.Kind != KindQR {
			for _, l := range r.lines[i] {
				h := c.mm(l.face.h)
				pdf.SetFont("Helvetica", "", h*ptPerMM)
				pdf.Text(ox+c.mm(l.x), oy+c.mm(l.y)+pdfBaseline*h, toCP1252(l.text))
			}
			continue
		}
		sym := r.syms[i]
		x, y := ox+c.mm(sym.ink.x0), oy+c.mm(sym.ink.y0)
		if qr == nil {
			var err error
			if qr, err = qrBitmap(r.payload); err != nil {
				return buf, c.fieldErrorf(i, "QR code: %v", err)
			}
		}
		// One path of rectangles, one per run of dark modules, filled at once:
		// no seams between modules when the page is rasterised.
		m := c.mm(sym.module) * ptPerMM
		x0, top := x*ptPerMM, (pageH-y)*ptPerMM
		buf = append(buf[:0], "0 g\n"...)
		for row, line := range qr {
			for col := 0; col < len(line); {
				if !line[col] {
					col++
					continue
				}
				start := col
				for col < len(line) && line[col] {
					col++
				}
				buf = appendPt(buf, x0+float64(start)*m, ' ')
				buf = appendPt(buf, top-float64(row+1)*m, ' ')
				buf = appendPt(buf, float64(col-start)*m, ' ')
				buf = appendPt(buf, m, ' ')
				buf = append(buf, "re\n"...)
			}
		}
		buf = append(buf, 'f')
		pdf.RawWriteStr(string(buf))
	}
	return buf, pdf.Error()
}

// appendPt appends a coordinate in points with three decimals and a separator.
func appendPt(b []byte, v float64, sep byte) []byte {
	return append(strconv.AppendFloat(b, v, 'f', 3, 64), sep)
}
