package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"

	_ "github.com/mattn/go-sqlite3"
)

// verifyChunk is how many UCIs are looked up per query.
const verifyChunk = 5000

// Verification is what the appliance's database says about the acknowledged UCIs.
type Verification struct {
	Checked       int      `json:"checked"`            // distinct UCIs looked up
	Missing       int      `json:"missing"`            // acknowledged but not in devices
	WrongIdentity int      `json:"wrong_identity"`     // present under another identity than the one sent
	Examples      []string `json:"examples,omitempty"` // a few of the problems, for the report
}

// maxExamples bounds the problems quoted in a report.
const maxExamples = 5

// Verify opens the appliance's SQLite file read-only and checks that every acknowledged
// UCI is a device and, when hwids were sent and checkIdentity is set, that it is
// recorded as "hwid:<hwid>".
func Verify(ctx context.Context, path string, acks []Ack, checkIdentity bool) (*Verification, error) {
	q := url.Values{"mode": {"ro"}, "_busy_timeout": {"5000"}}
	db, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'devices'`).Scan(&n); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("%s has no devices table", path)
	}

	type want struct {
		UCI      string `json:"u"`
		Identity string `json:"i,omitempty"`
	}
	seen := make(map[string]bool, len(acks))
	wants := make([]want, 0, len(acks))
	for _, a := range acks {
		if seen[a.UCI] {
			continue
		}
		seen[a.UCI] = true
		w := want{UCI: a.UCI}
		if checkIdentity && a.HWID != "" {
			w.Identity = "hwid:" + a.HWID
		}
		wants = append(wants, w)
	}

	// One query per chunk: the chunk goes in as a JSON array and only the rows
	// that are absent or differ come back.
	const query = `
		SELECT w.uci, w.identity, d.uci IS NOT NULL, coalesce(d.identity, '')
		FROM (SELECT json_extract(value, '$.u') AS uci, json_extract(value, '$.i') AS identity
		      FROM json_each(?)) AS w
		LEFT JOIN devices AS d ON d.uci = w.uci
		WHERE d.uci IS NULL OR (w.identity IS NOT NULL AND d.identity IS NOT w.identity)`
	v := &Verification{Checked: len(wants)}
	for chunk := range slices.Chunk(wants, verifyChunk) {
		arg, _ := json.Marshal(chunk)
		rows, err := db.QueryContext(ctx, query, string(arg))
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", path, err)
		}
		for rows.Next() {
			var uci, got string
			var ident sql.NullString
			var present bool
			if err := rows.Scan(&uci, &ident, &present, &got); err != nil {
				rows.Close()
				return nil, err
			}
			if !present {
				v.Missing++
				v.example(fmt.Sprintf("%s: acknowledged but not in the database", uci))
				continue
			}
			v.WrongIdentity++
			v.example(fmt.Sprintf("%s: recorded for %q, sent as %q", uci, got, ident.String))
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (v *Verification) example(s string) {
	if len(v.Examples) < maxExamples {
		v.Examples = append(v.Examples, s)
	}
}
