package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/serializer/upstream"
	"serialbox/store"
)

// A 100,000-device batch exported as CSV and as JSON lines parses back to exactly
// what the database holds, awkward identities and attributes included.
func TestExportParsesBackToTheDatabase(t *testing.T) {
	devices := 100_000
	if testing.Short() {
		devices = 5_000
	}
	ctx := context.Background()
	data := filepath.Join(t.TempDir(), "data")
	db, err := store.Open(ctx, filepath.Join(data, "serialbox.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := demoConfig()
	svc := serializer.NewService(db, nil)
	if err := svc.SetCatalog(ctx, cfg.Catalog()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ identity, attrs string }{
		{"key:=cmd|' /C calc'!A0", `{"note":"line one\nline \"two\", with comma"}`},
		{"hwid:+41 79 000", `{"name":"Müller, Jörg","weird":"@sum"}`},
		{"serial:-1", `{}`},
	} {
		if _, err := svc.Issue(ctx, serializer.IssueRequest{Identity: f.identity, Attributes: json.RawMessage(f.attrs)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Pregenerate(ctx, 1, devices-3, serializer.PregenOutside, "test"); err != nil {
		t.Fatal(err)
	}
	var want []serializer.Device
	db.EachDevice(ctx, 1, func(d serializer.Device) error { want = append(want, d); return nil })
	db.Close()
	if len(want) != devices {
		t.Fatalf("batch has %d devices", len(want))
	}

	for _, format := range []string{"csv", "jsonl"} {
		out := filepath.Join(t.TempDir(), "batch."+format)
		var stdout, stderr bytes.Buffer
		if code := run(ctx, []string{"export", "--batch", "1", "--format", format, "--out", out, "--data", data}, &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit %d: %s", format, code, stderr.String())
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		var got []map[string]string
		if format == "csv" {
			rows, err := csv.NewReader(f).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows[1:] {
				m := map[string]string{}
				for i, col := range rows[0] {
					m[col] = upstream.UnguardCSV(r[i])
				}
				got = append(got, m)
			}
		} else {
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var raw map[string]any
				if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
					t.Fatal(err)
				}
				m := map[string]string{}
				for k, v := range raw {
					switch v := v.(type) {
					case string:
						m[k] = v
					case float64:
						m[k] = strconv.FormatFloat(v, 'f', -1, 64)
					case nil:
						m[k] = ""
					default:
						b, _ := json.Marshal(v)
						m[k] = string(b)
					}
				}
				got = append(got, m)
			}
		}
		f.Close()
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows, want %d", format, len(got), len(want))
		}
		for i, d := range want {
			g := got[i]
			created, err := time.Parse(time.RFC3339Nano, g["created"])
			if g["uci"] != d.UCI.String() || g["display"] != d.UCI.Grouped() || g["batch"] != "1" ||
				g["product"] != d.ProductID || g["product_name"] != "Demo Widget" || g["station"] != d.StationID ||
				g["identity"] != d.Identity || g["state"] != string(d.State) || err != nil || !created.Equal(d.CreatedAt) {
				t.Fatalf("%s row %d = %v, database has %+v", format, i, g, d)
			}
			if len(d.Attributes) > 0 && !jsonEqual(g["attributes"], string(d.Attributes)) {
				t.Fatalf("%s row %d attributes %q, database has %s", format, i, g["attributes"], d.Attributes)
			}
		}
	}
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}
