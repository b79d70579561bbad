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

// syncedCount counts a batch's devices that every target they were queued for has
// accepted.
const syncedCount = `
	SELECT COUNT(*) FROM devices d
	WHERE d.batch_id = ?1
	  AND EXISTS (SELECT 1 FROM sync_items s WHERE s.uci = d.uci)
	  AND NOT EXISTS (SELECT 1 FROM sync_items s WHERE s.uci = d.uci AND s.state NOT IN ('ok', 'exists'))`

// EnqueueSync queues a batch's devices for each target. Voided devices are left out;
// devices a target already accepted are not queued for it again, devices it refused
// are. It returns how many devices were queued per target.
func (db *DB) EnqueueSync(ctx context.Context, batchID int64, targets []string, actor, reason string) (map[string]int, error) {
	queued := map[string]int{}
	err := db.writeTx(ctx, "queue batch for upstream", func(tx querier, now time.Time) error {
		if _, err := batchByID(ctx, tx, batchID); err != nil {
			return err
		}
		for _, target := range targets {
			n, err := enqueueSync(ctx, tx, now, batchID, target, actor, reason)
			if err != nil {
				return err
			}
			queued[target] = n
		}
		return nil
	})
	return queued, err
}

func enqueueSync(ctx context.Context, tx querier, now time.Time, batchID int64, target, actor, reason string) (int, error) {
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO sync_batches (batch_id, target, state, requested_at, requested_by) VALUES (?, ?, 'queued', ?, ?)
		ON CONFLICT (batch_id, target) DO UPDATE SET state = 'queued', requested_at = excluded.requested_at,
			requested_by = excluded.requested_by, done_at = NULL`,
		batchID, target, ms(now), actor); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `
		INSERT INTO sync_items (batch_id, target, uci, state, updated_at)
		SELECT batch_id, ?, uci, 'pending', ? FROM devices WHERE batch_id = ? AND state <> 'voided'
		ON CONFLICT (target, uci) DO UPDATE SET state = 'pending', message = '', chunk_key = NULL, updated_at = excluded.updated_at
		WHERE sync_items.state = 'error'`, target, ms(now), batchID)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	if err := finishSyncIfDone(ctx, tx, now, batchID, target); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE batches SET synced = (`+syncedCount+`) WHERE id = ?1`, batchID); err != nil {
		return 0, err
	}
	return int(n), addAudit(ctx, tx, now, serializer.AuditEntry{Actor: actor, Action: "sync.request", Subject: batchSubject(batchID),
		Reason: reason, Detail: fmt.Sprintf("target=%s queued=%d", target, n)})
}

// finishSyncIfDone marks a batch done for a target once nothing of it waits.
func finishSyncIfDone(ctx context.Context, tx querier, now time.Time, batchID int64, target string) error {
	_, err := tx.ExecContext(ctx, `
		UPDATE sync_batches SET state = 'done', done_at = ?
		WHERE batch_id = ? AND target = ? AND state = 'queued'
		  AND NOT EXISTS (SELECT 1 FROM sync_items WHERE batch_id = ? AND target = ? AND state IN ('pending', 'sending'))`,
		ms(now), batchID, target, batchID, target)
	return err
}

// NextChunk returns the target's chunk handed out earlier and not settled yet (same
// key, same devices), or claims up to max waiting devices of the oldest batch under a
// new key.
func (db *DB) NextChunk(ctx context.Context, target string, max int) (upstream.Chunk, bool, error) {
	var (
		c  upstream.Chunk
		ok bool
	)
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
			COALESCE((SELECT c.last_error FROM sync_chunks c WHERE c.batch_id = b.batch_id AND c.target = b.target AND c.settled = 0), '')
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
		if err := rows.Scan(&t.Target, &t.State, &at, &t.RequestedBy, &done, &t.Pending, &t.Sending, &t.OK, &t.Exists, &t.Errors, &t.Attempts, &t.LastError); err != nil {
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
