package label

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"serialbox/serializer"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var fixedDate = time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)

// deviceData fills a device label with fixed values.
func deviceData() Data {
	return Data{
		UCI:       serializer.MustParse("04HMASW9NF6YY093"),
		Product:   serializer.Product{ID: "01HZX5V0K3Q7A2B9C4D6E8F0GH", Name: "Widget Pro 3000", Model: "WP-3000"},
		BatchID:   42,
		StationID: "line-1",
		Date:      fixedDate,
	}
}

// batchData fills a batch label with fixed values.
func batchData() Data {
	d := deviceData()
	d.UCI = serializer.UCI{}
	d.Count = 250
	return d
}

// claimTemplate is a device label whose QR code carries a claim URL.
func claimTemplate() Template {
	return Template{
		Name:    "claim",
		Width:   60,
		Height:  40,
		DPI:     203,
		Payload: "https://manager.example.com/claim?id={{.UCI}}&product={{.Product | urlquery}}",
		Fields: []Field{
			{Kind: KindQR, X: 2, Y: 2, Magnification: 4, Size: 26},
			{Kind: KindProduct, X: 30, Y: 3, Height: 3.5},
			{Kind: KindModel, X: 30, Y: 8, Height: 2.5},
			{Kind: KindBatch, X: 30, Y: 12, Height: 2.5, Prefix: "Batch "},
			{Kind: KindUCI, X: 2, Y: 32, Height: 4},
		},
	}
}

// wantInvalid fails unless err is an EINVALID error whose message contains every want.
func wantInvalid(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	if code := serializer.ErrorCode(err); code != serializer.EINVALID {
		t.Fatalf("error code %q, want %q: %v", code, serializer.EINVALID, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func TestDefaultTemplatesValid(t *testing.T) {
	for _, tmpl := range []Template{DefaultDevice(), DefaultBatch(), claimTemplate()} {
		if err := tmpl.Validate(); err != nil {
			t.Errorf("%s: %v", tmpl.Name, err)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Template)
		want []string
	}{
		{"dpi zero", func(t *Template) { t.DPI = 0 }, []string{"dpi 0", "203, 300 or 600"}},
		{"dpi 250", func(t *Template) { t.DPI = 250 }, []string{"dpi 250"}},
		{"width zero", func(t *Template) { t.Width = 0 }, []string{"label width 0 mm", "more than 0"}},
		{"height negative", func(t *Template) { t.Height = -30 }, []string{"label height -30 mm"}},
		{"width NaN", func(t *Template) { t.Width = math.NaN() }, []string{"label width NaN mm"}},
		{"height over 300 mm", func(t *Template) { t.Height = 301 }, []string{"label height 301 mm", "at most 300 mm"}},
		{"too wide for any 600 dpi printer", func(t *Template) { t.DPI = 600; t.Width = 150 },
			[]string{"label width 150 mm", "widest 600 dpi print head"}},
		{"gap negative", func(t *Template) { t.Gap = -1 }, []string{"gap -1 mm"}},
		{"gap too big", func(t *Template) { t.Gap = 30 }, []string{"gap 30 mm"}},
		{"zpl font with commands", func(t *Template) { t.ZPLFont = "E:X.TTF^XZ" }, []string{"zpl_font"}},
		{"unknown kind", func(t *Template) { t.Fields[1].Kind = "barcode" }, []string{"field 2 (barcode)", "unknown kind", "uci, qr, product"}},
		{"field left of the label", func(t *Template) { t.Fields[2].X = -1 }, []string{"field 3 (model)", "outside the 50 × 30 mm label"}},
		{"field right of the label", func(t *Template) { t.Fields[2].X = 50 }, []string{"field 3 (model)", "outside"}},
		{"field below the label", func(t *Template) { t.Fields[2].Y = 31 }, []string{"field 3 (model)", "outside"}},
		{"field at NaN", func(t *Template) { t.Fields[2].Y = math.NaN() }, []string{"field 3 (model)", "outside"}},
		{"text runs off the bottom", func(t *Template) { t.Fields[5].Y = 27 }, []string{"field 6 (uci)", "runs into the 1 mm margin"}},
		{"text box over another", func(t *Template) { t.Fields[2].Y = 5 }, []string{"field 2 (product) and field 3 (model) overlap"}},
		{"text box into the QR quiet zone", func(t *Template) { t.Fields[1].X = 14 }, []string{"field 1 (qr) and field 2 (product) overlap", "4-module quiet zone"}},
		{"QR quiet zone off the label", func(t *Template) { t.Fields[0].X = 1.5 }, []string{"field 1 (qr)", "quiet zone of 4 modules", "runs off the label"}},
		{"margin too large", func(t *Template) { t.Margin = 15 }, []string{"margin 15 mm"}},
		{"min height over height", func(t *Template) { t.Fields[1].MinHeight = 5 }, []string{"field 2 (product)", "min_height 5 mm"}},
		{"lines negative", func(t *Template) { t.Fields[1].Lines = -1 }, []string{"field 2 (product)", "lines -1"}},
		{"module below the scanners' minimum", func(t *Template) { t.Fields[0].Module = 0.2 }, []string{"field 1 (qr)", "module 0.2 mm"}},
		{"size too small for 0.25 mm modules", func(t *Template) { t.Fields[0].Module = 0; t.Fields[0].Size = 4 },
			[]string{"field 1 (qr)", "a scanner needs at least 0.25 mm"}},

		{"text height zero", func(t *Template) { t.Fields[1].Height = 0 }, []string{"field 2 (product)", "text height 0 mm"}},
		{"text too small for the printer", func(t *Template) { t.Fields[1].Height = 1 }, []string{"field 2 (product)", "at least 10 dots"}},
		{"prefix with a control character", func(t *Template) { t.Fields[3].Prefix = "Batch\x1b" },
			[]string{"field 4 (batch)", "prefix", "control character U+001B"}},
		{"prefix not UTF-8", func(t *Template) { t.Fields[3].Prefix = "\xff" }, []string{"field 4 (batch)", "not valid UTF-8"}},
		{"QR magnification 11", func(t *Template) { t.Fields[0].Magnification = 11 }, []string{"field 1 (qr)", "magnification 11"}},
		{"QR at the top edge", func(t *Template) { t.Fields[0].Y = 1 }, []string{"field 1 (qr)", "y 1 mm", "at least 10 dots"}},
		{"QR size negative", func(t *Template) { t.Fields[0].Size = -1 }, []string{"field 1 (qr)", "size -1 mm"}},
		{"QR size infinite", func(t *Template) { t.Fields[0].Size = math.Inf(1) }, []string{"field 1 (qr)", "size +Inf mm"}},
		{"payload does not parse", func(t *Template) { t.Payload = "{{.UCI" }, []string{"payload", "does not parse"}},
		{"payload names an unknown key", func(t *Template) { t.Payload = "{{.Serial}}" }, []string{"payload", `no entry for key "Serial"`}},
		{"payload calls an unknown function", func(t *Template) { t.Payload = "{{.UCI | shout}}" }, []string{"payload", "does not parse"}},
		{"payload empty", func(t *Template) { t.Payload = "{{if false}}x{{end}}" }, []string{"payload", "empty"}},
		{"payload over the QR size", func(t *Template) {
			t.Payload = "https://manager.example.com/claim?id={{.UCI}}&product={{.Product}}"
		}, []string{"field 1 (qr)", "needs a 49×49-module QR code", "24.5 mm at 4-dot (0.5 mm) modules", "larger than its 15 mm size"}},
		{"QR over the label edge", func(t *Template) {
			t.Fields = t.Fields[:1]
			t.Fields[0].Size = 0
			t.Fields[0].Y = 10
			t.Fields[0].Module = 1
		},
			[]string{"field 1 (qr)", "runs into the 1 mm margin"}},
		{"payload too long for any QR code", func(t *Template) { t.Payload = `{{printf "%3000s" .UCI}}` },
			[]string{"field 1 (qr)", "too long for any QR code"}},
		{"payload longer than the limit", func(t *Template) { t.Payload = `{{printf "%5000s" .UCI}}` },
			[]string{"payload", "longer than 4096 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := DefaultDevice()
			tt.edit(&tmpl)
			err := tmpl.Validate()
			wantInvalid(t, err, append([]string{`label template "device"`}, tt.want...)...)
			// Every renderer refuses the template the same way.
			for _, f := range Formats {
				if _, rerr := Render(string(f), tmpl, deviceData()); rerr == nil || rerr.Error() != err.Error() {
					t.Errorf("%s: error %v, want %v", f, rerr, err)
				}
			}
		})
	}
}

func TestValidateUnnamed(t *testing.T) {
	tmpl := DefaultDevice()
	tmpl.Name = ""
	tmpl.DPI = 1
	wantInvalid(t, tmpl.Validate(), `label template "(unnamed)"`)
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		tmpl   Template
		format Format
		edit   func(*Data)
		want   []string // nil: no error
	}{
		{"device label without UCI", DefaultDevice(), FormatZPL, func(d *Data) { d.UCI = serializer.UCI{} },
			[]string{"shows a UCI and the data has none"}},
		{"batch label without UCI", DefaultBatch(), FormatZPL, func(d *Data) { d.UCI = serializer.UCI{} }, nil},
		{"payload naming the UCI needs one", func() Template {
			t := DefaultBatch()
			t.Payload = "{{with .Batch}}{{$.UCI}}{{end}}"
			return t
		}(), FormatZPL, func(d *Data) { d.UCI = serializer.UCI{} }, []string{"has none"}},
		{"ZPL font 0 prints Windows-1252", DefaultDevice(), FormatZPL, func(d *Data) { d.Product.Name = "Größe Çà € “x”" }, nil},
		{"ZPL font 0 refuses 日本", DefaultDevice(), FormatZPL, func(d *Data) { d.Product.Name = "Größe 日本" },
			[]string{"field 2 (product)", `"Größe 日本"`, "'日' (U+65E5)", "ZPL font 0 does not have", "zpl_font"}},
		{"ZPL font 0 refuses emoji in a prefix", func() Template {
			t := DefaultDevice()
			t.Fields[3].Prefix = "🔧 "
			return t
		}(), FormatZPL, func(d *Data) {}, []string{"field 4 (batch)", "U+1F527"}},
		{"a named ZPL font prints any UTF-8", func() Template {
			t := DefaultDevice()
			t.ZPLFont = "E:ANMDJ.TTF"
			return t
		}(), FormatZPL, func(d *Data) { d.Product.Name = "日本 Дрель عربي" }, nil},
		{"ZPL refuses a newline in a name", DefaultDevice(), FormatZPL, func(d *Data) { d.Product.Name = "Widget\n^XA" },
			[]string{"field 2 (product)", "control character U+000A"}},
		{"ZPL refuses C1 controls", DefaultDevice(), FormatZPL, func(d *Data) { d.Product.Model = "WP\u0085" },
			[]string{"field 3 (model)", "control character U+0085"}},
		{"ZPL refuses invalid UTF-8", DefaultDevice(), FormatZPL, func(d *Data) { d.Product.Name = "Caf\xe9" },
			[]string{"field 2 (product)", "not valid UTF-8"}},
		{"ZPL payload carries control characters", func() Template {
			t := DefaultBatch()
			t.Payload = "{{.Batch}}\t{{.Text}}"
			return t
		}(), FormatZPL, func(d *Data) { d.Text = "a\x00b" }, nil},
		{"TSPL prints Windows-1252", DefaultDevice(), FormatTSPL, func(d *Data) { d.Product.Name = "Café Größe €" }, nil},
		{"TSPL refuses 日", DefaultDevice(), FormatTSPL, func(d *Data) { d.Product.Name = "Café 日" },
			[]string{"field 2 (product)", "Windows-1252", "'日'"}},
		{"TSPL refuses Cyrillic", DefaultDevice(), FormatTSPL, func(d *Data) { d.StationID = "x"; d.Product.Model = "Д-1" },
			[]string{"field 3 (model)", "'Д'"}},
		{"TSPL refuses its escape introducer", DefaultDevice(), FormatTSPL, func(d *Data) { d.Product.Name = `A\[R]B` },
			[]string{"field 2 (product)", `\[`}},
		{"TSPL takes quotes", DefaultDevice(), FormatTSPL, func(d *Data) { d.Product.Name = `12" "Pro"` }, nil},
		{"TSPL refuses a non-ASCII payload", func() Template {
			t := DefaultBatch()
			t.Payload = "{{.ProductName}}"
			t.Fields = t.Fields[:1]
			return t
		}(), FormatTSPL, func(d *Data) { d.Product.Name = "Größe" }, []string{"QR payload", "printable ASCII only"}},
		{"TSPL refuses a control character in the payload", func() Template {
			t := DefaultBatch()
			t.Payload = "{{.Batch}}\r\nPRINT 9"
			return t
		}(), FormatTSPL, func(d *Data) {}, []string{"QR payload", `'\r'`}},
		{"PDF prints Western European text", DefaultDevice(), FormatPDF, func(d *Data) { d.Product.Name = "Größe Çà € “x”" }, nil},
		{"PDF refuses 日本", DefaultDevice(), FormatPDF, func(d *Data) { d.Product.Name = "日本" },
			[]string{"field 2 (product)", "Windows-1252", "'日'", "print it as ZPL"}},
		{"PNG refuses Д", DefaultDevice(), FormatPNG, func(d *Data) { d.Product.Model = "Д" },
			[]string{"field 3 (model)", "PNG labels", "'Д'"}},
		{"PNG refuses a prefix plus value it cannot print", func() Template {
			t := DefaultDevice()
			t.Fields[3].Prefix = "Партия "
			return t
		}(), FormatPNG, func(d *Data) {}, []string{"field 4 (batch)", "'П'"}},
		{"PDF takes a non-ASCII payload", func() Template {
			t := DefaultBatch()
			t.Payload = "{{.ProductName}}"
			return t
		}(), FormatPDF, func(d *Data) { d.Product.Name = "Café" }, nil},
		{"real product id too long for the QR code", claimTemplate(), FormatZPL,
			func(d *Data) { d.Product.ID = strings.Repeat("P", 80) },
			[]string{`label template "claim"`, "field 1 (qr)", "needs a", "larger than its 26 mm size"}},
		{"empty payload", func() Template {
			t := DefaultBatch()
			t.Payload = "{{.Text}}"
			return t
		}(), FormatZPL, func(d *Data) { d.Text = "" }, []string{"QR payload is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := deviceData()
			tt.edit(&d)
			err := tt.tmpl.Check(tt.format, d)
			_, rerr := Render(string(tt.format), tt.tmpl, d)
			if tt.want == nil {
				if err != nil || rerr != nil {
					t.Fatalf("Check: %v; Render: %v", err, rerr)
				}
				return
			}
			wantInvalid(t, err, tt.want...)
			if rerr == nil || rerr.Error() != err.Error() {
				t.Errorf("Render error %v, want %v", rerr, err)
			}
		})
	}
}

// TestCheckWidestUCI: a UCI box that holds today's UCI but not the widest one is
// refused by Check, which configuration loading runs for every printer, naming
// the field; a renderer never clips a UCI that does not fit.
func TestCheckWidestUCI(t *testing.T) {
	for _, f := range []Format{FormatZPL, FormatPDF} { // proportional fonts
		tmpl := DefaultDevice()
		tmpl.Fields[5].Width = map[Format]float64{FormatZPL: 35, FormatPDF: 33}[f]
		d := deviceData()
		d.UCI = serializer.MustParse("1111111111111111")
		if _, err := Render(string(f), tmpl, d); err != nil {
			t.Fatalf("%s: a narrow UCI is refused: %v", f, err)
		}
		err := tmpl.Check(f, d)
		wantInvalid(t, err, `label template "device"`, "field 6 (uci)", "smallest legible height", "widen the box")
		d.UCI = serializer.MustParse(WorstUCIs[0])
		_, rerr := Render(string(f), tmpl, d)
		wantInvalid(t, rerr, "field 6 (uci)", "WWWW-WWWW-WWWW-WWWW")
	}
	// The TSPL bitmap fonts are fixed-pitch: every UCI is as wide as the widest.
	tmpl := DefaultDevice()
	tmpl.Fields[5].Width = 27
	wantInvalid(t, tmpl.Check(FormatTSPL, deviceData()), "field 6 (uci)", "needs 228 dots in the TSPL bitmap fonts", "216 dots (27 mm) wide")
	_, err := TSPL(tmpl, deviceData())
	wantInvalid(t, err, "field 6 (uci)", "04HM-ASW9-NF6Y-Y093", "228 dots")
	tmpl.Fields[5].Width = 29
	if err := tmpl.Check(FormatTSPL, deviceData()); err != nil {
		t.Errorf("a 29 mm box holds 19 cells of 12 dots: %v", err)
	}
}

func TestFieldsLeftOff(t *testing.T) {
	d := deviceData()
	d.Product.Model = ""
	d.BatchID = 0
	d.Date = time.Time{}
	b, err := ZPL(DefaultDevice(), d)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), "^FD"); got != 3 {
		t.Errorf("%d fields, want QR, product and UCI:\n%s", got, b)
	}
	if strings.Contains(string(b), "Batch") {
		t.Errorf("prefix printed without its value:\n%s", b)
	}
}

func TestDateLayout(t *testing.T) {
	tmpl := DefaultDevice()
	tmpl.Fields[4].Layout = "02.01.2006"
	b, err := ZPL(tmpl, deviceData())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "^FD14.03.2026^FS") {
		t.Errorf("date not in layout 02.01.2006:\n%s", b)
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want Format
		ok   bool
	}{
		{"zpl", FormatZPL, true},
		{" TSPL ", FormatTSPL, true},
		{"Pdf", FormatPDF, true},
		{"png", FormatPNG, true},
		{"epl", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := ParseFormat(tt.in)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if !tt.ok {
			wantInvalid(t, err, "label format", "zpl, tspl, pdf or png")
		}
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	_, err := Render("epl", DefaultDevice(), deviceData())
	wantInvalid(t, err, `label format "epl"`)
}

func TestRenderDispatch(t *testing.T) {
	magic := map[Format][]byte{
		FormatZPL:  []byte("^XA"),
		FormatTSPL: []byte("SIZE "),
		FormatPDF:  []byte("%PDF-"),
		FormatPNG:  []byte("\x89PNG"),
	}
	for _, f := range Formats {
		b, err := Render(strings.ToUpper(string(f)), DefaultDevice(), deviceData())
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !bytes.HasPrefix(b, magic[f]) {
			t.Errorf("%s output starts %q", f, b[:min(len(b), 8)])
		}
		if f.ContentType() == "" || f.Ext() != "."+string(f) {
			t.Errorf("%s: content type %q, ext %q", f, f.ContentType(), f.Ext())
		}
	}
}

func TestTemplates(t *testing.T) {
	ts := Templates{"device": DefaultDevice(), "carton": DefaultBatch()}
	if err := ts.Validate(); err != nil {
		t.Fatal(err)
	}
	got, err := ts.Lookup("carton")
	if err != nil || got.Name != "carton" || got.Width != 100 {
		t.Fatalf("Lookup(carton) = %+v, %v", got, err)
	}
	_, err = ts.Lookup("pallet")
	if serializer.ErrorCode(err) != serializer.ENOTFOUND || !strings.Contains(err.Error(), `"pallet"`) {
		t.Errorf("Lookup(pallet): %v", err)
	}
	bad := DefaultBatch()
	bad.DPI = 100
	ts["reel"] = bad
	wantInvalid(t, ts.Validate(), `label template "reel"`, "dpi 100")
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestGolden(t *testing.T) {
	unicode := deviceData()
	unicode.Product.Name = "Größe ^~_ 日本"
	unicode.Product.Model = "Дрель-2"
	named := DefaultDevice()
	named.ZPLFont = "E:ANMDJ.TTF"
	tests := []struct {
		file string
		tmpl Template
		data Data
		fn   func(Template, Data) ([]byte, error)
	}{
		{"device.zpl", DefaultDevice(), deviceData(), ZPL},
		{"device.tspl", DefaultDevice(), deviceData(), TSPL},
		{"batch.zpl", DefaultBatch(), batchData(), ZPL},
		{"batch.tspl", DefaultBatch(), batchData(), TSPL},
		{"claim.zpl", claimTemplate(), deviceData(), ZPL},
		{"claim.tspl", claimTemplate(), deviceData(), TSPL},
		{"device-unicode.zpl", named, unicode, ZPL},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := tt.fn(tt.tmpl, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.file, got)
		})
	}
}

func TestErrorsAreDomainErrors(t *testing.T) {
	_, err := PNG(Template{Name: "x"}, Data{})
	var e *serializer.Error
	if !errors.As(err, &e) {
		t.Fatalf("%T is not a *serializer.Error", err)
	}
}

func TestRenderConcurrently(t *testing.T) {
	done := make(chan error)
	for g := 0; g < 8; g++ {
		go func() {
			var err error
			for i := 0; i < 20 && err == nil; i++ {
				for _, f := range Formats {
					if _, err = Render(string(f), DefaultDevice(), deviceData()); err != nil {
						break
					}
				}
			}
			done <- err
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
