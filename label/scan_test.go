package label

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"serialbox/serializer"
)

// decodeQR reads the QR code in img with a real decoder.
func decodeQR(img image.Image) (string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{
		gozxing.DecodeHintType_TRY_HARDER: true,
	})
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

// randomUCIs returns n UCIs from a seeded generator.
func randomUCIs(t testing.TB, n int) []serializer.UCI {
	r := rand.NewChaCha8([32]byte{'l', 'a', 'b', 'e', 'l'})
	us := make([]serializer.UCI, n)
	for i := range us {
		u, err := serializer.ReadUCI(r)
		if err != nil {
			t.Fatal(err)
		}
		us[i] = u
	}
	return us
}

// claimURL is what claimTemplate puts in the QR code.
func claimURL(d Data) string {
	return "https://manager.example.com/claim?id=" + d.UCI.String() + "&product=" + d.Product.ID
}

// scanCase is one label whose QR code must read back as want.
type scanCase struct {
	tmpl Template
	data Data
	want string
}

// scanCases returns device labels for n random UCIs, the same as claim URLs, and
// a batch label.
func scanCases(t testing.TB, n int) []scanCase {
	var cases []scanCase
	for i, u := range randomUCIs(t, n) {
		d := deviceData()
		d.UCI = u
		d.Product.ID = fmt.Sprintf("01HZX5V0K3Q7A2B9C4D6E8F%03d", i)
		cases = append(cases,
			scanCase{DefaultDevice(), d, u.String()},
			scanCase{claimTemplate(), d, claimURL(d)})
	}
	batch := batchData()
	batch.BatchID = 1234567
	return append(cases, scanCase{DefaultBatch(), batch, "1234567"})
}

func TestPNGScans(t *testing.T) {
	for _, c := range scanCases(t, 50) {
		b, err := PNG(c.tmpl, c.data)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := img.Bounds().Size(), image.Pt(c.tmpl.dots(c.tmpl.Width), c.tmpl.dots(c.tmpl.Height)); got != want {
			t.Errorf("%s: preview is %v pixels, want %v", c.tmpl.Name, got, want)
		}
		got, err := decodeQR(img)
		if err != nil || got != c.want {
			t.Errorf("%s: decoded %q, %v; want %q", c.tmpl.Name, got, err, c.want)
		}
	}
}

func TestPNGResolutions(t *testing.T) {
	for _, dpi := range []int{203, 300, 600} {
		tmpl := claimTemplate()
		tmpl.DPI = dpi
		d := deviceData()
		b, err := PNG(tmpl, d)
		if err != nil {
			t.Fatalf("%d dpi: %v", dpi, err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := decodeQR(img); err != nil || got != claimURL(d) {
			t.Errorf("%d dpi: decoded %q, %v", dpi, got, err)
		}
	}
}

// TestPNGText checks that the preview draws text: ink in every text field's box.
func TestPNGText(t *testing.T) {
	tmpl := DefaultDevice()
	b, err := PNG(tmpl, deviceData())
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range tmpl.Fields {
		if f.Kind == KindQR {
			continue
		}
		x, y, h := tmpl.dots(f.X), tmpl.dots(f.Y), tmpl.dots(f.Height)
		ink := 0
		for py := y; py < y+h; py++ {
			for px := x; px < x+h*4; px++ {
				if r, _, _, _ := img.At(px, py).RGBA(); r == 0 {
					ink++
				}
			}
		}
		if ink < h {
			t.Errorf("field %d (%s): %d dark pixels, want text", i+1, f.Kind, ink)
		}
	}
}

// rasterize renders a PDF page with poppler's pdftoppm.
func rasterize(t *testing.T, pdf []byte, dpi int) image.Image {
	t.Helper()
	tool, err := exec.LookPath("pdftoppm")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("pdftoppm not found; install poppler-utils")
		}
		t.Skip("pdftoppm not found; install poppler-utils to check the PDF QR codes")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "label.pdf")
	if err := os.WriteFile(in, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "page")
	cmd := exec.Command(tool, "-r", fmt.Sprint(dpi), "-png", "-singlefile", in, out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v: %s", err, msg)
	}
	f, err := os.Open(out + ".png")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPDFScans(t *testing.T) {
	for _, c := range scanCases(t, 10) {
		b, err := PDF(c.tmpl, c.data)
		if err != nil {
			t.Fatal(err)
		}
		img := rasterize(t, b, 300)
		want := image.Pt(int(c.tmpl.Width/25.4*300+0.5), int(c.tmpl.Height/25.4*300+0.5))
		if got := img.Bounds().Size(); got.Sub(want).X*got.Sub(want).X > 4 || got.Sub(want).Y*got.Sub(want).Y > 4 {
			t.Errorf("%s: page is %v pixels at 300 dpi, want %v", c.tmpl.Name, got, want)
		}
		if got, err := decodeQR(img); err != nil || got != c.want {
			t.Errorf("%s: decoded %q, %v; want %q", c.tmpl.Name, got, err, c.want)
		}
	}
}

// TestPDFText checks the text layer with pdftotext: Windows-1252 names survive.
func TestPDFText(t *testing.T) {
	tool, err := exec.LookPath("pdftotext")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("pdftotext not found; install poppler-utils")
		}
		t.Skip("pdftotext not found")
	}
	d := deviceData()
	d.Product.Name = "Größe Çà € (x) \\ “q”"
	b, err := PDF(DefaultDevice(), d)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "label.pdf")
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "-enc", "UTF-8", in, "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{d.Product.Name, "WP-3000", "Batch 42", "2026-03-14", "04HM-ASW9-NF6Y-Y093"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("PDF text has no %q:\n%s", want, out)
		}
	}
}

func TestPDFSheetScans(t *testing.T) {
	tmpl := DefaultDevice()
	sheet := Sheet{Paper: "A4", MarginTop: 10, MarginLeft: 5, ColumnGap: 2, RowGap: 2, Outline: true}
	l, err := sheet.layout(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if l.cols != 3 || l.rows != 8 {
		t.Fatalf("A4 fits %d × %d labels of 50 × 30 mm, want 3 × 8", l.cols, l.rows)
	}
	perPage := l.cols * l.rows
	var labels []Data
	for _, u := range randomUCIs(t, perPage+5) {
		d := deviceData()
		d.UCI = u
		labels = append(labels, d)
	}
	b, err := PDFSheet(tmpl, sheet, labels)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("/Type /Page\n")); n != 2 {
		t.Errorf("%d pages, want 2", n)
	}
	const dpi = 200
	page := rasterize(t, b, dpi) // first page only
	px := func(mm float64) int { return int(mm / 25.4 * dpi) }
	for i := 0; i < perPage; i++ {
		x := sheet.MarginLeft + float64(i%l.cols)*(tmpl.Width+sheet.ColumnGap)
		y := sheet.MarginTop + float64(i/l.cols)*(tmpl.Height+sheet.RowGap)
		cell := page.(interface {
			SubImage(image.Rectangle) image.Image
		}).SubImage(image.Rect(px(x), px(y), px(x+tmpl.Width), px(y+tmpl.Height)))
		if got, err := decodeQR(cell); err != nil || got != labels[i].UCI.String() {
			t.Errorf("label %d: decoded %q, %v; want %s", i+1, got, err, labels[i].UCI)
		}
	}
}

func TestSheetLayout(t *testing.T) {
	tests := []struct {
		name       string
		sheet      Sheet
		cols, rows int
		err        string
	}{
		{"A4 fitted", Sheet{}, 4, 9, ""},
		{"Letter fitted with margins", Sheet{Paper: "letter", MarginTop: 10, MarginLeft: 8, ColumnGap: 3, RowGap: 3}, 3, 7, ""},
		{"explicit grid", Sheet{Columns: 2, Rows: 3}, 2, 3, ""},
		{"unknown paper", Sheet{Paper: "A3"}, 0, 0, `paper "A3"`},
		{"too many columns", Sheet{Columns: 5}, 0, 0, "5 columns of 50 mm labels do not fit across the 210 mm A4 page"},
		{"too many rows", Sheet{Rows: 10}, 0, 0, "10 rows of 30 mm labels do not fit down"},
		{"negative margin", Sheet{MarginTop: -1}, 0, 0, "margin_top -1 mm"},
		{"negative columns", Sheet{Columns: -1}, 0, 0, "-1 columns"},
		{"margins leave no room", Sheet{MarginLeft: 90}, 0, 0, "1 columns of 50 mm labels do not fit"},
	}
	for _, tt := range tests {
		l, err := tt.sheet.layout(DefaultDevice())
		if tt.err != "" {
			wantInvalid(t, err, `label sheet for template "device"`, tt.err)
			if _, rerr := PDFSheet(DefaultDevice(), tt.sheet, []Data{deviceData()}); rerr == nil || rerr.Error() != err.Error() {
				t.Errorf("%s: PDFSheet error %v", tt.name, rerr)
			}
			continue
		}
		if err != nil || l.cols != tt.cols || l.rows != tt.rows {
			t.Errorf("%s: %d × %d, %v; want %d × %d", tt.name, l.cols, l.rows, err, tt.cols, tt.rows)
		}
	}
}

func TestPDFSheetErrors(t *testing.T) {
	_, err := PDFSheet(DefaultDevice(), Sheet{}, nil)
	wantInvalid(t, err, "no labels")

	labels := []Data{deviceData(), deviceData(), deviceData()}
	labels[2].Product.Name = "日本"
	_, err = PDFSheet(DefaultDevice(), Sheet{}, labels)
	wantInvalid(t, err, "label 3 of 3", "field 2 (product)", "'日'")
}

func TestPDFReproducible(t *testing.T) {
	a, err := PDF(DefaultDevice(), deviceData())
	if err != nil {
		t.Fatal(err)
	}
	b, err := PDF(DefaultDevice(), deviceData())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("the same label renders to different PDFs")
	}
}
