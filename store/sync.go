package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"serialbox/serializer"
	"serialbox/serializer/upstream"
)

var _ upstream.Outbox = (*DB)(nil)

// syncedIn counts the devices of batch ?1 with ids in (?2, ?3] that every target
// they were queued for has accepted.
const syncedIn = `
	SELECT COUNT(*) FROM devices d
	WHERE d.batch_id = ?1 AND d.id > ?2 AND d.id <= ?3
	  AND EXISTS (SELECT 1 FROM sync_items s WHERE s.uci = d.uci)
	  AND NOT EXISTS (SELECT 1 FROM sync_items s WHERE s.uci = d.uci AND s.state NOT IN ('ok', 'exists'))`

// expandChunk is the most devices one transaction puts into the outbox.
const expandChunk = 2000

// EnqueueSync queues a batch's devices for each target. Voided devices are left out;
// devices a target already accepted are not queued for it again, devices it refused
// are. The requests are recorded first, in one transaction; the devices follow in
// short transactions that take turns with issuance. It returns how many devices were
// queued per target.
func (db *DB) EnqueueSync(ctx context.Context, batchID int64, targets []string, actor, reason string) (map[string]int, error) {
	err := db.writeTx(ctx, "queue batch for upstream", func(tx querier, now time.Time) error {
		if _, err := batchByID(ctx, tx, batchID); err != nil {
			return err
		}
		for _, target := range targets {
			if err := requestSync(ctx, tx, now, batchID, target, actor, reason); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	queued := map[string]int{}
	for _, target := range targets {
		if err := db.expandSync(ctx, batchID, target); err != nil {
			return nil, err
		}
		var n int
		if err := db.read.QueryRowContext(ctx, `SELECT queued FROM sync_batches WHERE batch_id = ? AND target = ?`,
			batchID, target).Scan(&n); err != nil {
			return nil, db.fault("read queued devices", err)
		}
		queued[target] = n
	}
	return queued, nil
}

// requestSync records that a batch goes to a target: one row, whatever the size of the
// batch. expandSync puts its devices into the outbox afterwards.
func requestSync(ctx context.Context, tx querier, now time.Time, batchID int64, target, actor, reason string) error {
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO sync_batches (batch_id, target, state, requested_at, requested_by, expand_upto, expanded_to, queued)
		VALUES (?1, ?2, 'queued', ?3, ?4, (SELECT COALESCE(MAX(id), 0) FROM devices WHERE batch_id = ?1), 0, 0)
		ON CONFLICT (batch_id, target) DO UPDATE SET state = 'queued', requested_at = excluded.requested_at,
			requested_by = excluded.requested_by, done_at = NULL,
			expand_upto = excluded.expand_upto, expanded_to = 0, queued = 0`,
		batchID, target, ms(now), actor); err != nil {
		return err
	}
	return addAudit(ctx, tx, now, serializer.AuditEntry{Actor: actor, Action: "sync.request", Subject: batchSubject(batchID),
		Reason: reason, Detail: "target=" + target})
}

// expandSync puts the devices of a batch's request for target into the outbox, a
// chunk per transaction, until none is left. Each chunk records how far the request
// got in its own transaction, so that it is done exactly once, also across restarts
// and when two callers expand the same request.
func (db *DB) expandSync(ctx context.Context, batchID int64, target string) error {
	for {
		var finished bool
		err := db.bulkTx(ctx, "queue batch devices for upstream", func(tx querier, now time.Time) error {
			var err error
			finished, err = expandStep(ctx, tx, now, batchID, target, expandChunk)
			return err
		})
		if err != nil || finished {
			return err
		}
	}
}

// expandPending expands every request of target whose devices are not all in the outbox yet.
func (db *DB) expandPending(ctx context.Context, target string) error {
	rows, err := db.read.QueryContext(ctx, `SELECT batch_id FROM sync_batches WHERE target = ? AND expand_upto IS NOT NULL ORDER BY batch_id`, target)
	if err != nil {
		return db.fault("read upstream requests", err)
	}
	var batches []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		batches = append(batches, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range batches {
		if err := db.expandSync(ctx, id, target); err != nil {
			return err
		}
	}
	return nil
}

// expandStep queues up to limit more devices of the request and reports whether the
// request has all its devices in the outbox.
func expandStep(ctx context.Context, tx querier, now time.Time, batchID int64, target string, limit int) (bool, error) {
	var (
		upto sql.NullInt64
		from int64
	)
	err := tx.QueryRowContext(ctx, `SELECT expand_upto, expanded_to FROM sync_batches WHERE batch_id = ? AND target = ?`,
		batchID, target).Scan(&upto, &from)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !upto.Valid {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	var last sql.NullInt64
	if err := tx.QueryRowContext(ctx, `
		SELECT MAX(id) FROM (SELECT id FROM devices WHERE batch_id = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?)`,
		batchID, from, upto.Int64, limit).Scan(&last); err != nil {
		return false, err
	}
	to := upto.Int64
	if last.Valid && last.Int64 < to {
		to = last.Int64
	}
	var before, after int
	if err := tx.QueryRowContext(ctx, syncedIn, batchID, from, to).Scan(&before); err != nil {
		return false, err
	}
	res, err := tx.ExecContext(ctx, `
		INSERT INTO sync_items (batch_id, target, uci, state, updated_at)
		SELECT batch_id, ?, uci, 'pending', ? FROM devices WHERE batch_id = ? AND id > ? AND id <= ? AND state <> 'voided'
		ON CONFLICT (target, uci) DO UPDATE SET state = 'pending', message = '', chunk_key = NULL, updated_at = excluded.updated_at
		WHERE sync_items.state = 'error'`, target, ms(now), batchID, from, to)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if err := tx.QueryRowContext(ctx, syncedIn, batchID, from, to).Scan(&after); err != nil {
		return false, err
	}
	if after != before {
		if _, err := tx.ExecContext(ctx, `UPDATE batches SET synced = synced + ? WHERE id = ?`, after-before, batchID); err != nil {
			return false, err
		}
	}
	finished := to >= upto.Int64
	if !finished {
		_, err := tx.ExecContext(ctx, `UPDATE sync_batches SET expanded_to = ?, queued = queued + ? WHERE batch_id = ? AND target = ?`,
			to, n, batchID, target)
		return false, err
	}
	var queued int64
	if err := tx.QueryRowContext(ctx, `
		UPDATE sync_batches SET expand_upto = NULL, expanded_to = ?, queued = queued + ? WHERE batch_id = ? AND target = ?
		RETURNING queued`, to, n, batchID, target).Scan(&queued); err != nil {
		return false, err
	}
	if err := finishSyncIfDone(ctx, tx, now, batchID, target); err != nil {
		return false, err
	}
	return true, addAudit(ctx, tx, now, serializer.AuditEntry{Actor: "upstream", Action: "sync.queued", Subject: batchSubject(batchID),
		Detail: fmt.Sprintf("target=%s queued=%d", target, queued)})
}

// finishSyncIfDone marks a batch done for a target once its devices are in the
// outbox and nothing of it waits.
func finishSyncIfDone(ctx context.Context, tx querier, now time.Time, batchID int64, target string) error {
	_, err := tx.ExecContext(ctx, `
		UPDATE sync_batches SET state = 'done', done_at = ?
		WHERE batch_id = ? AND target = ? AND state = 'queued' AND expand_upto IS NULL
		  AND NOT EXISTS (SELECT 1 FROM sync_items WHERE batch_id = ? AND target = ? AND state IN ('pending', 'sending'))`,
		ms(now), batchID, target, batchID, target)
	return err
}

// NextChunk returns the target's chunk handed out earlier and not settled yet (same
// key, same devices), or claims up to max waiting devices of the oldest batch under a
// new key.
//
// Requests whose devices are not all in the outbox yet (a batch closed by the jig that
// filled it, a restart in between) are expanded first.
func (db *DB) NextChunk(ctx context.Context, target string, max int) (upstream.Chunk, bool, error) {
	var (
		c  upstream.Chunk
		ok bool
	)
	if err := db.expandPending(ctx, target); err != nil {
		return c, false, err
	}
	err := db.writeTx(ctx, "take upstream chunk", func(tx querier, now time.Time) error {
		c, ok = upstream.Chunk{Target: target}, false
		err := tx.QueryRowContext(ctx, `SELECT key, batch_id FROM sync_chunks WHERE target = ? AND settled = 0 ORDER BY created_at, key LIMIT 1`,
			target).Scan(&c.Key, &c.Batch.ID)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			err = tx.QueryRowContext(ctx, `SELECT batch_id FROM sync_items WHERE target = ? AND state = 'pending' ORDER BY batch_id, id LIMIT 1`,
				target).Scan(&c.Batch.ID)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			if c.Key, err = chunkKey(target, c.Batch.ID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `
				UPDATE sync_items SET state = 'sending', chunk_key = ?, attempts = attempts + 1, updated_at = ?
				WHERE id IN (SELECT id FROM sync_items WHERE target = ? AND batch_id = ? AND state = 'pending' ORDER BY id LIMIT ?)`,
				c.Key, ms(now), target, c.Batch.ID, max); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO sync_chunks (key, target, batch_id, created_at) VALUES (?, ?, ?, ?)`,
				c.Key, target, c.Batch.ID, ms(now)); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		if c.Batch, err = batchByID(ctx, tx, c.Batch.ID); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT id, name, model FROM products WHERE id = ?`, c.Batch.ProductID).
			Scan(&c.Product.ID, &c.Product.Name, &c.Product.Model); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `
			SELECT `+deviceColumns("d.")+` FROM sync_items s JOIN devices d ON d.uci = s.uci
			WHERE s.chunk_key = ? ORDER BY s.id`, c.Key)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDevice(rows)
			if err != nil {
				return err
			}
			c.Devices = append(c.Devices, d)
		}
		ok = true
		return rows.Err()
	})
	return c, ok && err == nil, err
}

func chunkKey(target string, batchID int64) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s-b%d-%s", target, batchID, hex.EncodeToString(b[:])), nil
}

// Settle records a target's verdict on each device of a chunk. Devices the target
// said nothing about are recorded as errors. Settling a chunk twice changes nothing.
func (db *DB) Settle(ctx context.Context, target, key string, results []upstream.Result) error {
	return db.writeTx(ctx, "record upstream results", func(tx querier, now time.Time) error {
		var (
			batchID int64
			settled bool
		)
		err := tx.QueryRowContext(ctx, `SELECT batch_id, settled FROM sync_chunks WHERE key = ? AND target = ?`, key, target).Scan(&batchID, &settled)
		if errors.Is(err, sql.ErrNoRows) {
			return serializer.Errorf(serializer.ENOTFOUND, "no upstream chunk %q for target %q", key, target)
		}
		if err != nil || settled {
			return err
		}
		for _, r := range results {
			state, msg := r.Status, r.Message
			if state != upstream.StatusOK && state != upstream.StatusExists {
				state = upstream.StatusError
				if msg == "" {
					msg = "refused by upstream (status " + r.Status + ")"
				}
			}
			if _, err := tx.ExecContext(ctx, `
				UPDATE sync_items SET state = ?, message = ?, updated_at = ?
				WHERE chunk_key = ? AND uci = ? AND state = 'sending'`, state, msg, ms(now), key, r.UCI.String()); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `
			UPDATE sync_items SET state = 'error', message = 'no result from upstream', updated_at = ?
			WHERE chunk_key = ? AND state = 'sending'`, ms(now), key); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sync_chunks SET settled = 1, last_error = '' WHERE key = ?`, key); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
			UPDATE batches SET synced = synced + (
				SELECT COUNT(*) FROM sync_items s WHERE s.chunk_key = ?1 AND s.state IN ('ok', 'exists')
				AND NOT EXISTS (SELECT 1 FROM sync_items o WHERE o.uci = s.uci AND o.state NOT IN ('ok', 'exists')))
			WHERE id = ?2`, key, batchID); err != nil {
			return err
		}
		return finishSyncIfDone(ctx, tx, now, batchID, target)
	})
}

// Defer records that a chunk failed as a whole and when it may be tried again.
func (db *DB) Defer(ctx context.Context, target, key, reason string, next time.Time) error {
	return db.writeTx(ctx, "record upstream failure", func(tx querier, now time.Time) error {
		_, err := tx.ExecContext(ctx, `
			UPDATE sync_chunks SET attempts = attempts + 1, next_try = ?, last_error = ? WHERE key = ? AND target = ? AND settled = 0`,
			ms(next), reason, key, target)
		return err
	})
}

// SyncStatus returns the batch's progress with every target it was queued for.
func (db *DB) SyncStatus(ctx context.Context, batchID int64) ([]serializer.TargetSync, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT b.target, b.state, b.requested_at, b.requested_by, b.done_at,
			(SELECT COUNT(*) FROM sync_items s WHERE s.batch_id = b.batch_id AND s.target = b.target AND s.state = 'pending'),
			(SELECT COUNT(*) FROM sync_items s WHERE s.batch_id = b.batch_id AND s.target = b.target AND s.state = 'sending'),
			(SELECT COUNT(*) FROM sync_items s WHERE s.batch_id = b.batch_id AND s.target = b.target AND s.state = 'ok'),
			(SELECT COUNT(*) FROM sync_items s WHERE s.batch_id = b.batch_id AND s.target = b.target AND s.state = 'exists'),
			(SELECT COUNT(*) FROM sync_items s WHERE s.batch_id = b.batch_id AND s.target = b.target AND s.state = 'error'),
			COALESCE((SELECT c.attempts FROM sync_chunks c WHERE c.batch_id = b.batch_id AND c.target = b.target AND c.settled = 0), 0),
			COALESCE((SELECT c.last_error FROM sync_chunks c WHERE c.batch_id = b.batch_id AND c.target = b.target AND c.settled = 0), ''),
			CASE WHEN b.expand_upto IS NULL THEN 0 ELSE (SELECT COUNT(*) FROM devices d
				WHERE d.batch_id = b.batch_id AND d.id > b.expanded_to AND d.id <= b.expand_upto AND d.state <> 'voided') END
		FROM sync_batches b WHERE b.batch_id = ? ORDER BY b.target`, batchID)
	if err != nil {
		return nil, db.fault("read sync status", err)
	}
	defer rows.Close()
	out := []serializer.TargetSync{}
	for rows.Next() {
		var (
			t    serializer.TargetSync
			at   int64
			done sql.NullInt64
		)
		if err := rows.Scan(&t.Target, &t.State, &at, &t.RequestedBy, &done, &t.Pending, &t.Sending, &t.OK, &t.Exists, &t.Errors, &t.Attempts, &t.LastError, &t.Queueing); err != nil {
			return nil, err
		}
		t.RequestedAt = fromMS(at)
		if done.Valid {
			d := fromMS(done.Int64)
			t.DoneAt = &d
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// SyncFailures returns the batch's devices that a target refused, with the reason.
func (db *DB) SyncFailures(ctx context.Context, batchID int64, limit int) ([]serializer.SyncFailure, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	rows, err := db.read.QueryContext(ctx, `
		SELECT uci, target, message FROM sync_items WHERE batch_id = ? AND state = 'error' ORDER BY id LIMIT ?`, batchID, limit)
	if err != nil {
		return nil, db.fault("read sync failures", err)
	}
	defer rows.Close()
	out := []serializer.SyncFailure{}
	for rows.Next() {
		var (
			f   serializer.SyncFailure
			uci string
		)
		if err := rows.Scan(&uci, &f.Target, &f.Message); err != nil {
			return nil, err
		}
		if f.UCI, err = serializer.Parse(uci); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// EachDevice calls fn for every device of a batch in issue order. Rows are read one
// at a time, so memory stays flat for any batch size.
func (db *DB) EachDevice(ctx context.Context, batchID int64, fn func(serializer.Device) error) error {
	rows, err := db.read.QueryContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE batch_id = ? ORDER BY id`, batchID)
	if err != nil {
		return db.fault("read batch devices", err)
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return err
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	return rows.Err()
}

// SyncStates counts, per target, the devices waiting for it or refused by it.
func (db *DB) SyncStates(ctx context.Context) (map[string]map[string]int, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT target, state, COUNT(*) FROM sync_items WHERE state IN ('pending', 'sending', 'error') GROUP BY target, state`)
	if err != nil {
		return nil, db.fault("count sync states", err)
	}
	defer rows.Close()
	out := map[string]map[string]int{}
	for rows.Next() {
		var (
			target, state string
			n             int
		)
		if err := rows.Scan(&target, &state, &n); err != nil {
			return nil, err
		}
		if out[target] == nil {
			out[target] = map[string]int{}
		}
		out[target][state] = n
	}
	return out, rows.Err()
}
