package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"serialbox/serializer"
)

// pregenChunk is how many devices one durable transaction of a pre-generation holds.
// Random UCIs land all over the uci index: small transactions would each rewrite most
// of its pages, so a chunk is large and its UCIs are inserted in sorted order.
const pregenChunk = 1_000_000

// pregenRows is how many devices one INSERT statement carries.
const pregenRows = 250

// Pregenerate issues count new UCIs into an open batch, for pre-printed label runs and
// unique-firmware builds. Uniqueness is still the database's: a drawn UCI that exists
// is drawn again. Every device gets its label job, as for a jig. The work is committed
// in chunks; on error the devices of the chunks already committed stay issued and
// the returned count says how many.
func (db *DB) Pregenerate(ctx context.Context, batchID int64, count int, labels serializer.PregenLabels, newUCI func() (serializer.UCI, error), actor string) (int, error) {
	if count < 1 || count > serializer.MaxBatchSize {
		return 0, serializer.Errorf(serializer.EINVALID, "count %d is out of range (1 to %d)", count, serializer.MaxBatchSize)
	}
	if labels != serializer.PregenQueue && labels != serializer.PregenOutside {
		return 0, serializer.Errorf(serializer.EINVALID, "labels %q: must be %q or %q", labels, serializer.PregenQueue, serializer.PregenOutside)
	}
	b, err := db.Batch(ctx, batchID)
	if err != nil {
		return 0, err
	}
	if b.State != serializer.BatchOpen {
		return 0, serializer.Errorf(serializer.ECONFLICT, "batch %d is closed: pre-generate into an open batch", batchID)
	}
	if b.Planned > 0 && b.Counts.Issued+count > b.Planned {
		return 0, serializer.Errorf(serializer.EBATCHFULL, "batch %d has room for %d more devices (%d of %d planned), not %d", batchID, b.Planned-b.Counts.Issued, b.Counts.Issued, b.Planned, count)
	}
	done := 0
	for done < count {
		n := min(pregenChunk, count-done)
		err := db.writeTx(ctx, "pre-generate UCIs", func(tx querier, now time.Time) error {
			return pregenChunkTx(ctx, tx, now, b, n, labels, newUCI)
		})
		if err != nil {
			return done, err
		}
		done += n
	}
	err = db.writeTx(ctx, "record pre-generation", func(tx querier, now time.Time) error {
		return addAudit(ctx, tx, now, serializer.AuditEntry{Actor: actor, Action: "batch.pregenerate", Subject: batchSubject(batchID),
			Detail: fmt.Sprintf("count=%d labels=%s", count, labels)})
	})
	return done, err
}

func pregenChunkTx(ctx context.Context, tx querier, now time.Time, b serializer.Batch, n int, labels serializer.PregenLabels, newUCI func() (serializer.UCI, error)) error {
	// The batch must still be open and have room: check inside the transaction.
	cur, err := batchByID(ctx, tx, b.ID)
	if err != nil {
		return err
	}
	if cur.State != serializer.BatchOpen {
		return serializer.Errorf(serializer.ECONFLICT, "batch %d was closed during the pre-generation", b.ID)
	}
	if cur.Planned > 0 && cur.Counts.Issued+n > cur.Planned {
		return serializer.Errorf(serializer.EBATCHFULL, "batch %d filled up during the pre-generation", b.ID)
	}
	var firstID int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM devices`).Scan(&firstID); err != nil {
		return err
	}
	ts := ms(now)
	args := make([]any, 0, pregenRows*6)
	for inserted := 0; inserted < n; {
		// Draw what is missing, sorted, so that the index pages are visited in order.
		ucis := make([]string, n-inserted)
		for i := range ucis {
			u, err := newUCI()
			if err != nil {
				return err
			}
			ucis[i] = u.String()
		}
		slices.Sort(ucis)
		for len(ucis) > 0 {
			rows := min(pregenRows, len(ucis))
			args = args[:0]
			for _, u := range ucis[:rows] {
				args = append(args, u, b.ID, b.ProductID, b.StationID, ts, ts)
			}
			ucis = ucis[rows:]
			q := qPregenInsert
			if rows != pregenRows {
				q = pregenInsert(rows)
			}
			res, err := tx.ExecContext(ctx, q, args...)
			if err != nil {
				return err
			}
			got, err := res.RowsAffected()
			if err != nil {
				return err
			}
			// A UCI that was already issued is skipped by ON CONFLICT; the outer loop
			// draws again for it.
			inserted += int(got)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE batches SET issued = issued + ? WHERE id = ?`, n, b.ID); err != nil {
		return err
	}
	state, reason := "queued", "pre-generated"
	if labels == serializer.PregenOutside {
		state, reason = "cancelled", "pre-generated: labels printed outside the appliance"
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO print_jobs (kind, uci, batch_id, station_id, state, reason, created_at, updated_at)
		SELECT 'device', uci, batch_id, station_id, ?, ?, ?, ? FROM devices WHERE id > ? ORDER BY id`, // inserted in UCI order
		state, reason, ts, ts, firstID)
	return err
}

// qPregenInsert inserts pregenRows devices; it is prepared once at Open.
var qPregenInsert = pregenInsert(pregenRows)

// pregenInsert returns the INSERT statement for rows devices.
func pregenInsert(rows int) string {
	var sb strings.Builder
	sb.WriteString(`INSERT INTO devices (uci, batch_id, product_id, station_id, state, created_at, updated_at) VALUES `)
	for i := range rows {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`(?, ?, ?, ?, 'issued', ?, ?)`)
	}
	sb.WriteString(` ON CONFLICT (uci) DO NOTHING`)
	return sb.String()
}
