package label

import (
	"testing"
)

func BenchmarkZPL(b *testing.B) {
	tmpl, d := DefaultDevice(), deviceData()
	var n int
	for b.Loop() {
		out, err := ZPL(tmpl, d)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.ReportMetric(float64(n), "bytes/label")
}

func BenchmarkTSPL(b *testing.B) {
	tmpl, d := DefaultDevice(), deviceData()
	var n int
	for b.Loop() {
		out, err := TSPL(tmpl, d)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.ReportMetric(float64(n), "bytes/label")
}

func BenchmarkPNG(b *testing.B) {
	tmpl, d := DefaultDevice(), deviceData()
	var n int
	for b.Loop() {
		out, err := PNG(tmpl, d)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.ReportMetric(float64(n), "bytes/label")
}

func BenchmarkPDF(b *testing.B) {
	tmpl, d := DefaultDevice(), deviceData()
	for b.Loop() {
		if _, err := PDF(tmpl, d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPDFSheet1000(b *testing.B) {
	tmpl := DefaultDevice()
	labels := make([]Data, 1000)
	for i, u := range randomUCIs(b, len(labels)) {
		labels[i] = deviceData()
		labels[i].UCI = u
	}
	sheet := Sheet{Paper: "A4", MarginTop: 10, MarginLeft: 5, ColumnGap: 2, RowGap: 2}
	var n int
	for b.Loop() {
		out, err := PDFSheet(tmpl, sheet, labels)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.ReportMetric(float64(n), "bytes/sheet")
}
