package upstream_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"serialbox/serializer"
	"serialbox/serializer/upstream"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// manifestDevices are devices whose values exercise quoting and the formula guard.
func manifestDevices(t testing.TB) ([]serializer.Device, serializer.Product) {
	p := serializer.Product{ID: "01H4R15D3478JD26YDYK408XE6", Name: "Sensor \"Mini\",\nrev 2", Model: "=HYPERLINK(\"http://x\")"}
	devs := makeDevices(t, 9, 12, 6)
	devs[0].Identity = "hwid:ABC123"
	devs[1].Identity = "serial:+49 30 1234"
	devs[1].Attributes = []byte("{\n  \"name\": \"line\\nbreak, comma\",\n  \"n\": 1\n}")
	devs[2].Identity = "-1+2"
	devs[2].StationID = "@station"
	devs[2].Attributes = nil
	devs[3].Identity = "'quoted"
	devs[3].State = serializer.DeviceVoided
	devs[3].Attributes = []byte(`{"note":"Gerät Ä, \"x\""}`)
	devs[4].Identity = "\tcell"
	devs[4].Attributes = []byte(`not json, "really"`)
	devs[5].Identity = ""
	devs[5].ProductID = ""
	return devs, p
}

func TestManifestGolden(t *testing.T) {
	devs, p := manifestDevices(t)
	for _, format := range []string{"csv", "jsonl"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			mw, err := upstream.NewManifestWriter(&buf, format)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range devs {
				if err := mw.Write(d, p); err != nil {
					t.Fatal(err)
				}
			}
			if err := mw.Flush(); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "manifest."+format)
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("manifest differs from %s:\n%s", golden, buf.Bytes())
			}
		})
	}
}

// TestManifestParsesBack reads both formats back and compares every value with the
// device it came from.
func TestManifestParsesBack(t *testing.T) {
	devs, p := manifestDevices(t)
	want := func(d serializer.Device) []string {
		product := d.ProductID
		if product == "" {
			product = p.ID
		}
		attrs := ""
		if len(d.Attributes) > 0 {
			var b bytes.Buffer
			if json.Compact(&b, d.Attributes) == nil {
				attrs = b.String()
			} else {
				attrs = string(d.Attributes)
			}
		}
		return []string{d.UCI.String(), d.UCI.Grouped(), strconv.FormatInt(d.BatchID, 10), product, p.Name, p.Model,
			d.StationID, d.Identity, string(d.State), d.CreatedAt.UTC().Format("2006-01-02T15:04:05Z07:00"), attrs}
	}

	var buf bytes.Buffer
	mw, _ := upstream.NewManifestWriter(&buf, "CSV")
	for _, d := range devs {
		mw.Write(d, p)
	}
	mw.Flush()
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows[0], upstream.ManifestColumns()) {
		t.Errorf("header = %v", rows[0])
	}
	if strings.Join(rows[0], ",") != "uci,display,batch,product,product_name,model,station,identity,state,created,attributes" {
		t.Errorf("the column order changed: %v", rows[0])
	}
	for i, row := range rows[1:] {
		for j := range row {
			if strings.HasPrefix(row[j], "=") || strings.HasPrefix(row[j], "+") || strings.HasPrefix(row[j], "-") || strings.HasPrefix(row[j], "@") || strings.HasPrefix(row[j], "\t") {
				t.Errorf("row %d column %s starts a formula: %q", i, rows[0][j], row[j])
			}
			row[j] = upstream.UnguardCSV(row[j])
		}
		if w := want(devs[i]); !slices.Equal(row, w) {
			t.Errorf("csv row %d =\n%q\nwant\n%q", i, row, w)
		}
	}

	buf.Reset()
	mw, _ = upstream.NewManifestWriter(&buf, "jsonl")
	for _, d := range devs {
		mw.Write(d, p)
	}
	mw.Flush()
	sc := bufio.NewScanner(&buf)
	i := 0
	for ; sc.Scan(); i++ {
		var line map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		w := want(devs[i])
		for j, col := range upstream.ManifestColumns() {
			raw, ok := line[col]
			if !ok {
				t.Errorf("line %d has no %q", i, col)
				continue
			}
			var got string
			switch {
			case col == "batch" || (col == "attributes" && raw[0] != '"'):
				got = string(raw)
				if got == "null" {
					got = ""
				}
			default:
				json.Unmarshal(raw, &got)
			}
			if got != w[j] {
				t.Errorf("line %d %s = %q, want %q", i, col, got, w[j])
			}
		}
	}
	if i != len(devs) {
		t.Errorf("%d lines, want %d", i, len(devs))
	}
}

func TestManifestFormats(t *testing.T) {
	if _, err := upstream.NewManifestWriter(io.Discard, "xlsx"); serializer.ErrorCode(err) != serializer.EINVALID {
		t.Errorf("NewManifestWriter(xlsx) = %v, want EINVALID", err)
	}
	var buf bytes.Buffer
	mw, _ := upstream.NewManifestWriter(&buf, "csv")
	mw.Flush()
	if buf.String() != "uci,display,batch,product,product_name,model,station,identity,state,created,attributes\n" {
		t.Errorf("empty CSV manifest = %q, want the header", buf.String())
	}
	if got := upstream.ManifestContentType("jsonl"); got != "application/jsonl; charset=utf-8" {
		t.Errorf("ManifestContentType(jsonl) = %q", got)
	}
	if got := upstream.ManifestContentType("csv"); got != "text/csv; charset=utf-8" {
		t.Errorf("ManifestContentType(csv) = %q", got)
	}
}

func TestGuardCSV(t *testing.T) {
	for _, s := range []string{"", "a", "=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "'", "'=1", "''", "x=1"} {
		g := upstream.GuardCSV(s)
		if s != "" && strings.ContainsRune("=+-@\t\r", rune(g[0])) {
			t.Errorf("GuardCSV(%q) = %q starts a formula", s, g)
		}
		if back := upstream.UnguardCSV(g); back != s {
			t.Errorf("UnguardCSV(GuardCSV(%q)) = %q", s, back)
		}
	}
}

// countWriter counts bytes and lines written to it.
type countWriter struct{ bytes, lines int }

func (w *countWriter) Write(p []byte) (int, error) {
	w.bytes += len(p)
	w.lines += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

// TestManifestStreams writes 100,000 devices and checks that memory does not grow
// with the number of devices.
func TestManifestStreams(t *testing.T) {
	const n = 100_000
	base := makeDevices(t, 5, 3, 1)[0]
	for _, format := range []string{"csv", "jsonl"} {
		t.Run(format, func(t *testing.T) {
			w := &countWriter{}
			mw, err := upstream.NewManifestWriter(w, format)
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			d := base
			for i := range n {
				d.UCI[9], d.UCI[8] = byte(i), byte(i>>8)
				if err := mw.Write(d, testProduct); err != nil {
					t.Fatal(err)
				}
			}
			if err := mw.Flush(); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			lines := n
			if format == "csv" {
				lines++
			}
			if w.lines != lines {
				t.Errorf("%d lines, want %d", w.lines, lines)
			}
			live := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			perDevice := float64(after.Mallocs-before.Mallocs) / n
			t.Logf("%s: %d bytes, %.1f allocations per device, heap grew by %d KiB", format, w.bytes, perDevice, live/1024)
			if live > 16<<20 {
				t.Errorf("heap grew by %d MiB while streaming; it should not depend on the number of devices", live>>20)
			}
		})
	}
}

func BenchmarkManifest(b *testing.B) {
	d := makeDevices(b, 5, 3, 1)[0]
	for _, format := range []string{"csv", "jsonl"} {
		b.Run(format, func(b *testing.B) {
			w := &countWriter{}
			mw, _ := upstream.NewManifestWriter(w, format)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				d.UCI[9] = byte(i)
				if err := mw.Write(d, testProduct); err != nil {
					b.Fatal(err)
				}
			}
			mw.Flush()
			b.SetBytes(int64(w.bytes / max(b.N, 1)))
		})
	}
}
