package store

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"serialbox/serializer"
	"serialbox/serializer/events"
)

var _ events.Outbox = (*DB)(nil)

// KeepPublishedEvents is how many acknowledged events stay in the outbox, for
// looking back; older ones are deleted as newer ones are acknowledged.
const KeepPublishedEvents = 100_000

const qInsertEvent = `INSERT INTO events (at, station_id, kind, payload) VALUES (?, ?, ?, ?)`

// SetEventOutbox turns the event outbox on or off. While it is off nothing is
// written to it, neither by the issue committer nor by the triggers of 00009.
func (db *DB) SetEventOutbox(ctx context.Context, on bool) error {
	enabled := 0
	if on {
		enabled = 1
	}
	err := db.writeTx(ctx, "switch the event outbox", func(tx querier, _ time.Time) error {
		_, err := tx.ExecContext(ctx, `UPDATE event_outbox SET enabled = ? WHERE id = 1`, enabled)
		return err
	})
	if err == nil {
		db.events.Store(on)
	}
	return err
}

// insertIssuedEvent records a device.issued event in the issuing transaction. The
// payload is written by hand: this runs for every device, inside the group commit.
func insertIssuedEvent(ctx context.Context, tx querier, now time.Time, is serializer.Issued) error {
	d := is.Device
	buf := make([]byte, 0, 128+len(d.Attributes))
	buf = append(buf, `{"uci":"`...)
	buf = append(buf, d.UCI.String()...) // Crockford base32: nothing to escape
	buf = append(buf, `","batch":`...)
	buf = strconv.AppendInt(buf, d.BatchID, 10)
	buf = append(buf, `,"product":`...)
	buf = appendJSONString(buf, d.ProductID)
	if d.Identity != "" {
		buf = append(buf, `,"identity":`...)
		buf = appendJSONString(buf, d.Identity)
	}
	if len(d.Attributes) > 0 && json.Valid(d.Attributes) {
		buf = append(buf, `,"attributes":`...)
		buf = append(buf, d.Attributes...)
	}
	buf = append(buf, '}')
	_, err := tx.ExecContext(ctx, qInsertEvent, ms(now), d.StationID, events.DeviceIssued, string(buf))
	return err
}

// appendJSONString appends s as a JSON string.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s)
			return append(buf, q...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

// PublishedSeq returns the newest event the broker acknowledged.
func (db *DB) PublishedSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := db.read.QueryRowContext(ctx, `SELECT published_seq FROM event_outbox WHERE id = 1`).Scan(&seq)
	return seq, db.fault("read the event outbox", err)
}

// NewestSeq returns the newest event written to the outbox (0 when none ever was).
func (db *DB) NewestSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := db.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&seq)
	return seq, db.fault("read the event outbox", err)
}

// EventsAfter returns up to limit events after seq, oldest first.
func (db *DB) EventsAfter(ctx context.Context, seq int64, limit int) ([]events.Event, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT seq, at, station_id, kind, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, seq, limit)
	if err != nil {
		return nil, db.fault("read the event outbox", err)
	}
	defer rows.Close()
	var out []events.Event
	for rows.Next() {
		var (
			ev      events.Event
			at      int64
			payload string
		)
		if err := rows.Scan(&ev.Seq, &at, &ev.Station, &ev.Kind, &payload); err != nil {
			return nil, err
		}
		ev.At, ev.Payload = fromMS(at), json.RawMessage(payload)
		out = append(out, ev)
	}
	return out, db.fault("read the event outbox", rows.Err())
}

// MarkPublished records that every event up to seq was acknowledged by the broker,
// and deletes acknowledged events beyond the newest KeepPublishedEvents.
func (db *DB) MarkPublished(ctx context.Context, seq int64) error {
	return db.writeTx(ctx, "mark events published", func(tx querier, _ time.Time) error {
		if _, err := tx.ExecContext(ctx, `UPDATE event_outbox SET published_seq = ? WHERE id = 1 AND published_seq < ?`, seq, seq); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM events WHERE seq <= ?`, seq-KeepPublishedEvents)
		return err
	})
}
