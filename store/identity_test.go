package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pressly/goose/v3"

	"serialbox/serializer"
)

func issueAs(t *testing.T, svc *serializer.Service, ids ...string) (serializer.Issued, error) {
	t.Helper()
	req := serializer.IssueRequest{}
	if len(ids) > 0 {
		req.Identity, req.OtherIdentities = ids[0], ids[1:]
	}
	return svc.Issue(context.Background(), req)
}

func TestEveryIdentityOfADeviceFindsIt(t *testing.T) {
	db := MustOpenDB(t)
	svc := newService(t, db, autoStation)
	a, err := issueAs(t, svc, "hwid:H1", "serial:S1", "mac:aa:bb:cc:dd:ee:01")
	if err != nil {
		t.Fatal(err)
	}
	for _, ids := range [][]string{{"hwid:H1"}, {"serial:S1"}, {"mac:aa:bb:cc:dd:ee:01"}, {"serial:S1", "hwid:H1"}} {
		got, err := issueAs(t, svc, ids...)
		if err != nil || got.Device.UCI != a.Device.UCI || !got.Existing {
			t.Fatalf("%v = %v existing %v, %v; want %v", ids, got.Device.UCI, got.Existing, err, a.Device.UCI)
		}
	}
	// A device first known by its hwid alone learns its serial when a request names both.
	b, _ := issueAs(t, svc, "hwid:H2")
	if got, err := issueAs(t, svc, "hwid:H2", "serial:S2"); err != nil || got.Device.UCI != b.Device.UCI {
		t.Fatalf("hwid+serial = %v, %v; want %v", got.Device.UCI, err, b.Device.UCI)
	}
	if got, err := issueAs(t, svc, "serial:S2"); err != nil || got.Device.UCI != b.Device.UCI {
		t.Fatalf("learnt serial = %v, %v; want %v", got.Device.UCI, err, b.Device.UCI)
	}
	if n, _ := db.DeviceCount(context.Background()); n != 2 {
		t.Fatalf("devices = %d, want 2", n)
	}
	jobs, _ := db.PrintJobs(context.Background(), a.Device.UCI)
	if len(jobs) != 1 {
		t.Fatalf("device asked for five times has %d label jobs", len(jobs))
	}
}

// A key shared by every unit (one URL configured on all agents) must never hand one
// unit another's UCI.
func TestConflictingIdentitiesAreRefused(t *testing.T) {
	db := MustOpenDB(t)
	svc := newService(t, db, autoStation)
	a, err := issueAs(t, svc, "key:line1", "hwid:UNIT-A")
	if err != nil {
		t.Fatal(err)
	}
	b, err := issueAs(t, svc, "hwid:UNIT-B")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ids  []string
		want []string // words the message must name
	}{
		// The shared key names unit A, the body says it is another unit.
		{[]string{"key:line1", "hwid:UNIT-C"}, []string{`"key:line1"`, a.Device.UCI.Grouped(), `"UNIT-A"`, `"UNIT-C"`}},
		// The key names unit A and the hwid names unit B.
		{[]string{"key:line1", "hwid:UNIT-B"}, []string{`"key:line1"`, `"hwid:UNIT-B"`, a.Device.UCI.Grouped(), b.Device.UCI.Grouped()}},
		// Two body identities of two devices.
		{[]string{"hwid:UNIT-B", "serial:X", "mac:aa:bb:cc:dd:ee:ff"}, nil},
	} {
		if tc.want == nil {
			// Make the third case a real two-device request: give A that MAC first.
			if _, err := issueAs(t, svc, "hwid:UNIT-A", "mac:aa:bb:cc:dd:ee:ff"); err != nil {
				t.Fatal(err)
			}
			tc.want = []string{`"hwid:UNIT-B"`, `"mac:aa:bb:cc:dd:ee:ff"`}
		}
		got, err := issueAs(t, svc, tc.ids...)
		if serializer.ErrorCode(err) != serializer.ECONFLICT {
			t.Fatalf("%v = %v, %v; want conflict", tc.ids, got.Device.UCI, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: message %q does not name %s", tc.ids, err, w)
			}
		}
	}
	// Nothing was issued or learnt by the refused requests.
	if n, _ := db.DeviceCount(context.Background()); n != 2 {
		t.Fatalf("devices = %d, want 2", n)
	}
	if got, err := issueAs(t, svc, "hwid:UNIT-C"); err != nil || got.Existing {
		t.Fatalf("UNIT-C was attached to a device by a refused request: %+v, %v", got, err)
	}
}

func TestStationRequiringIdentityRefusesAnonymousJigs(t *testing.T) {
	db := MustOpenDB(t)
	strict := autoStation
	strict.RequireIdentity = true
	svc := newService(t, db, strict)
	_, err := issueAs(t, svc)
	if serializer.ErrorCode(err) != serializer.EIDENTITYREQUIRED {
		t.Fatalf("anonymous request = %v; want identity_required", err)
	}
	for _, field := range []string{`"hwid"`, `"serial"`, `"mac"`} {
		if !strings.Contains(serializer.ErrorMessage(err), field) {
			t.Errorf("message %q does not name the accepted field %s", serializer.ErrorMessage(err), field)
		}
	}
	if n, _ := db.DeviceCount(context.Background()); n != 0 {
		t.Fatalf("a refused request left %d devices", n)
	}
	if _, err := issueAs(t, svc, "serial:S1"); err != nil {
		t.Fatalf("request with an identity: %v", err)
	}
}

func TestBatchCountsAnonymousUCIs(t *testing.T) {
	db := MustOpenDB(t)
	svc := newService(t, db, autoStation)
	issueAs(t, svc)
	issueAs(t, svc, "hwid:H1")
	issueAs(t, svc, "hwid:H1") // the same device again
	last, err := issueAs(t, svc)
	if err != nil {
		t.Fatal(err)
	}
	if last.Batch.Counts.Anonymous != 2 || last.Batch.Counts.Issued != 3 {
		t.Fatalf("answer's counts = %+v; want 3 issued, 2 anonymous", last.Batch.Counts)
	}
	b, err := db.Batch(context.Background(), last.Batch.ID)
	if err != nil || b.Counts.Anonymous != 2 {
		t.Fatalf("stored counts = %+v, %v; want 2 anonymous", b.Counts, err)
	}
}

// A database made by the previous release keeps its identities and gets its
// anonymous counts: jig devices without identity count, pre-generated ones do not.
func TestUpgradeKeepsIdentitiesAndCountsAnonymous(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serialbox.db")
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, raw, os.DirFS("migrations"), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(context.Background(), 6); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO products (id, name, model, updated_at) VALUES ('` + productID + `', 'Demo', 'D', 0)`,
		`INSERT INTO stations (id, name, updated_at) VALUES ('demo', 'Demo', 0)`,
		`INSERT INTO batches (id, product_id, station_id, planned, state, opened_at, issued) VALUES (1, '` + productID + `', 'demo', 0, 'open', 0, 3)`,
		`INSERT INTO devices (uci, batch_id, product_id, station_id, identity, attributes, state, created_at, updated_at) VALUES
			('04HMASW9NF6YY093', 1, '` + productID + `', 'demo', 'hwid:OLD', '{"hwid":"OLD"}', 'issued', 0, 0),
			('58KPP23VZ4Y298SM', 1, '` + productID + `', 'demo', NULL, '{"product":"x"}', 'issued', 0, 0),
			('CVAN1VBT9TRYJV5F', 1, '` + productID + `', 'demo', NULL, NULL, 'issued', 0, 0)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()

	db := mustOpenAt(t, path)
	svc := newService(t, db, autoStation)
	got, err := issueAs(t, svc, "hwid:OLD")
	if err != nil || got.Device.UCI.String() != "04HMASW9NF6YY093" {
		t.Fatalf("old identity after the upgrade = %v, %v", got.Device.UCI, err)
	}
	if got.Batch.Counts.Anonymous != 1 {
		t.Fatalf("anonymous after the upgrade = %d, want 1 (the pre-generated device does not count)", got.Batch.Counts.Anonymous)
	}
}

// BenchmarkIssueIdentities compares durable issuance of new devices without an
// identity, with one, and with three (each looked up and recorded), 64 callers.
func BenchmarkIssueIdentities(b *testing.B) {
	for _, tc := range []struct {
		name string
		ids  func(n int64) []string
	}{
		{"none", func(int64) []string { return nil }},
		{"hwid", func(n int64) []string { return []string{fmt.Sprintf("hwid:H%d", n)} }},
		{"hwid+serial+mac", func(n int64) []string {
			return []string{fmt.Sprintf("hwid:H%d", n), fmt.Sprintf("serial:S%d", n), fmt.Sprintf("mac:02:00:%02x:%02x:%02x:%02x", byte(n>>24), byte(n>>16), byte(n>>8), byte(n))}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			db := MustOpenDB(b)
			svc := newService(b, db, autoStation)
			var next atomic.Int64
			b.SetParallelism(32) // 64 goroutines on two cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := serializer.IssueRequest{}
					if ids := tc.ids(next.Add(1)); len(ids) > 0 {
						req.Identity, req.OtherIdentities = ids[0], ids[1:]
					}
					if _, err := svc.Issue(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ucis/s")
		})
	}
}
