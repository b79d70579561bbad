package store_test

import (
	"strings"
	"testing"
)

// The queries run for every lookup, label job and sync chunk must use an index: a
// full scan is unnoticeable in a test database and seconds long with a million devices.
func TestHotQueriesUseIndexes(t *testing.T) {
	path := t.TempDir() + "/serialbox.db"
	mustOpenAt(t, path)
	raw := rawDB(t, path)
	for _, q := range []string{
		`SELECT * FROM devices WHERE uci = 'X'`,
		`SELECT uci FROM device_identities WHERE product_id = 'P' AND identity = 'hwid:1'`,
		`SELECT * FROM print_jobs WHERE uci = 'X' ORDER BY id`,
		`SELECT * FROM print_jobs WHERE station_id = 'S' AND state IN ('queued', 'sending') ORDER BY id LIMIT 1`,
		`SELECT * FROM batches WHERE station_id = 'S' AND state = 'open'`,
		`SELECT * FROM devices WHERE batch_id = 1 ORDER BY id`,
		`SELECT * FROM sync_items WHERE chunk_key = 'K' ORDER BY id`,
		`SELECT * FROM sync_items WHERE uci = 'X'`,
		`SELECT batch_id FROM sync_items WHERE target = 'T' AND state = 'pending' ORDER BY batch_id, id LIMIT 1`,
		`SELECT * FROM audit WHERE subject = 'device:X' ORDER BY id DESC`,
	} {
		rows, err := raw.Query(`EXPLAIN QUERY PLAN ` + q)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			rows.Scan(&id, &parent, &notused, &detail)
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "; ")
		if strings.Contains(joined, "SCAN ") && !strings.Contains(joined, "USING") {
			t.Errorf("%s\n  scans a table: %s", q, joined)
		}
	}
}
