package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"serialbox/serializer"
)

// A pre-generation is committed in many short transactions, so that the jigs of the
// line are issued in between: the committer runs one chunk, then the issue requests
// waiting behind it, then the next chunk (see commitLoop).
const (
	// pregenTarget is how long one chunk's transaction should hold the writer. The
	// chunk size follows the measured time of the chunks before it.
	pregenTarget = 10 * time.Millisecond
	// pregenMinChunk and pregenMaxChunk bound the devices of one chunk.
	pregenMinChunk = pregenRows
	pregenMaxChunk = 32 * pregenRows
	// pregenRound is the most UCIs drawn and sorted at once (10 bytes each). The chunks
	// of a round insert its UCIs in key order: each chunk touches only a narrow slice
	// of the uci indexes instead of pages all over them, so many small transactions
	// cost about what one large one did.
	pregenRound = 1 << 20
)

// pregenRows is how many devices one INSERT statement carries.
const pregenRows = 250

// PregenBytesPerDevice is what the free-disk check before a run counts per device:
// the measured growth of the database per pre-generated device with its label job,
// 312 bytes, rounded up (see BENCHMARKS.md).
const PregenBytesPerDevice = 350

// DiskReserve is the free space a pre-generation leaves on the data volume for the
// line's own issuance, the write-ahead log and backups.
const DiskReserve = 256 << 20

// Pregenerate issues count new UCIs into an open batch, for pre-printed label runs and
// unique-firmware builds. Uniqueness is still the database's: a drawn UCI that exists
// is drawn again. Every device gets its label job in the transaction that inserts it,
// as for a jig. The work is committed in short chunks through the issue committer, so
// the line keeps being served; on error or cancellation the devices of the chunks
// already committed stay issued and the returned count says how many.
//
// Before it starts, the free space of the data volume is checked against the
// expected growth; a volume that runs low during the run stops it.
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
	if err := db.checkDiskFor(count); err != nil {
		return 0, err
	}
	p := &pregenRun{db: db, batch: b, labels: labels, chunk: 4 * pregenRows}
	done, err := p.run(ctx, count, newUCI)
	detail := fmt.Sprintf("count=%d labels=%s", count, labels)
	if done != count {
		detail = fmt.Sprintf("count=%d of %d labels=%s stopped: %s", done, count, labels, serializer.ErrorMessage(err))
	}
	if done > 0 {
		// Recorded even when the caller went away: the devices are issued.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		aerr := db.writeTx(actx, "record pre-generation", func(tx querier, now time.Time) error {
			return addAudit(actx, tx, now, serializer.AuditEntry{Actor: actor, Action: "batch.pregenerate", Subject: batchSubject(batchID), Detail: detail})
		})
		if err == nil {
			err = aerr
		}
	}
	return done, err
}

// checkDiskFor refuses a run of n devices that the data volume has no room for.
func (db *DB) checkDiskFor(n int) error {
	free, err := db.freeDisk()
	if err != nil {
		db.Logger.Warn("free disk space unknown; pre-generating without the check", "err", err)
		return nil
	}
	need := uint64(n) * PregenBytesPerDevice
	if free < need+DiskReserve {
		return serializer.Errorf(serializer.EUNAVAILABLE,
			"not enough free disk for %d devices: they need about %d MB and %d MB must stay free for the line, but the data volume has %d MB free; nothing was issued",
			n, need>>20, DiskReserve>>20, free>>20)
	}
	return nil
}

// pregenRun is one pre-generation under way.
type pregenRun struct {
	db     *DB
	batch  serializer.Batch
	labels serializer.PregenLabels
	chunk  int // devices of the next chunk
}

func (p *pregenRun) run(ctx context.Context, count int, newUCI func() (serializer.UCI, error)) (int, error) {
	done := 0
	for done < count {
		// Draw a round, sorted and without repeats; a UCI the database holds already is
		// skipped by the insert and drawn again in the next round.
		ucis := make([]serializer.UCI, min(pregenRound, count-done))
		for i := range ucis {
			u, err := newUCI()
			if err != nil {
				return done, err
			}
			ucis[i] = u
		}
		slices.SortFunc(ucis, func(a, b serializer.UCI) int { return bytes.Compare(a[:], b[:]) }) // byte order is text order
		ucis = slices.Compact(ucis)
		for len(ucis) > 0 {
			if err := ctx.Err(); err != nil {
				return done, err
			}
			if free, err := p.db.freeDisk(); err == nil && free < DiskReserve {
				return done, serializer.Errorf(serializer.EUNAVAILABLE,
					"the data volume has only %d MB free: the pre-generation stopped to leave room for the line", free>>20)
			}
			n := min(p.chunk, len(ucis))
			var got int
			start := time.Now()
			err := p.db.bulkTx(ctx, "pre-generate UCIs", func(tx querier, now time.Time) error {
				var err error
				got, err = pregenChunkTx(ctx, tx, now, p.batch, ucis[:n], p.labels)
				return err
			})
			if err != nil {
				return done, err
			}
			p.adapt(n, time.Since(start))
			done += got
			ucis = ucis[n:]
		}
	}
	return done, nil
}

// adapt sizes the next chunk so that its transaction takes about pregenTarget, in
// whole INSERT statements.
func (p *pregenRun) adapt(n int, took time.Duration) {
	if n < p.chunk || took <= 0 {
		return // the end of a round says nothing about the rate
	}
	next := int(float64(n) * float64(pregenTarget) / float64(took))
	next = min(max(next, p.chunk/2, pregenMinChunk), 2*p.chunk, pregenMaxChunk)
	p.chunk = max(next/pregenRows*pregenRows, pregenMinChunk)
}

// pregenChunkTx inserts the devices of sorted ucis with their label jobs and returns
// how many were new.
func pregenChunkTx(ctx context.Context, tx querier, now time.Time, b serializer.Batch, ucis []serializer.UCI, labels serializer.PregenLabels) (int, error) {
	// The batch must still be open and have room: check inside the transaction.
	cur, err := batchByID(ctx, tx, b.ID)
	if err != nil {
		return 0, err
	}
	if cur.State != serializer.BatchOpen {
		return 0, serializer.Errorf(serializer.ECONFLICT, "batch %d was closed during the pre-generation", b.ID)
	}
	if cur.Planned > 0 && cur.Counts.Issued+len(ucis) > cur.Planned {
		return 0, serializer.Errorf(serializer.EBATCHFULL, "batch %d filled up during the pre-generation", b.ID)
	}
	var firstID int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM devices`).Scan(&firstID); err != nil {
		return 0, err
	}
	ts := ms(now)
	args := make([]any, 0, pregenRows*6)
	inserted := 0
	for len(ucis) > 0 {
		rows := min(pregenRows, len(ucis))
		args = args[:0]
		for _, u := range ucis[:rows] {
			args = append(args, u.String(), b.ID, b.ProductID, b.StationID, ts, ts)
		}
		ucis = ucis[rows:]
		q := qPregenInsert
		if rows != pregenRows {
			q = pregenInsert(rows)
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return 0, err
		}
		got, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		// A UCI that was already issued is skipped by ON CONFLICT; the run draws again for it.
		inserted += int(got)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE batches SET issued = issued + ? WHERE id = ?`, inserted, b.ID); err != nil {
		return 0, err
	}
	state, reason := "queued", "pre-generated"
	if labels == serializer.PregenOutside {
		state, reason = "cancelled", "pre-generated: labels printed outside the appliance"
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO print_jobs (kind, uci, batch_id, station_id, state, reason, created_at, updated_at)
		SELECT 'device', uci, batch_id, station_id, ?, ?, ?, ? FROM devices WHERE id > ? ORDER BY id`, // inserted in UCI order
		state, reason, ts, ts, firstID)
	return inserted, err
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
