package store

import (
	"context"
	"time"

	"serialbox/serializer"
)

// RecentDevices returns a station's newest devices, newest first.
func (db *DB) RecentDevices(ctx context.Context, stationID string, limit int) ([]serializer.Device, error) {
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE station_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`, stationID, limit)
	if err != nil {
		return nil, db.fault("read recent devices", err)
	}
	defer rows.Close()
	out := []serializer.Device{}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// IssuedSince counts the UCIs a station issued since t, for its rate.
func (db *DB) IssuedSince(ctx context.Context, stationID string, t time.Time) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices WHERE station_id = ? AND created_at >= ?`, stationID, ms(t)).Scan(&n)
	return n, db.fault("count recent devices", err)
}
