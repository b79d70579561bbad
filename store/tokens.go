package store

import (
	"context"
	"time"

	"serialbox/serializer"
)

// StationTokens returns the SHA-256 (hex) of every rotated jig token, by station.
func (db *DB) StationTokens(ctx context.Context) (map[string]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT station_id, token_hash FROM station_tokens`)
	if err != nil {
		return nil, db.fault("read station tokens", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, hash string
		if err := rows.Scan(&id, &hash); err != nil {
			return nil, err
		}
		out[id] = hash
	}
	return out, rows.Err()
}

// SetStationToken records a station's new jig token by its SHA-256 and audits it.
func (db *DB) SetStationToken(ctx context.Context, stationID, hash, actor string) error {
	return db.writeTx(ctx, "rotate station token", func(tx querier, now time.Time) error {
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO station_tokens (station_id, token_hash, rotated_at, rotated_by) VALUES (?, ?, ?, ?)
			ON CONFLICT (station_id) DO UPDATE SET token_hash = excluded.token_hash, rotated_at = excluded.rotated_at, rotated_by = excluded.rotated_by`,
			stationID, hash, ms(now), actor); err != nil {
			return err
		}
		return addAudit(ctx, tx, now, serializer.AuditEntry{Actor: actor, Action: "station.token.rotate", Subject: "station:" + stationID,
			Detail: "new jig token issued; the previous one no longer works"})
	})
}
