package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"serialbox/serializer"
)

const qOpenBatch = `SELECT ` + batchCols + ` FROM batches WHERE station_id = ? AND state = 'open'`

const batchCols = `id, product_id, station_id, planned, state, opened_at, closed_at, issued, labeled, verified, voided, synced, anonymous`

func scanBatch(s scanner) (serializer.Batch, error) {
	var (
		b      serializer.Batch
		opened int64
		closed sql.NullInt64
	)
	err := s.Scan(&b.ID, &b.ProductID, &b.StationID, &b.Planned, &b.State, &opened, &closed,
		&b.Counts.Issued, &b.Counts.Labeled, &b.Counts.Verified, &b.Counts.Voided, &b.Counts.Synced, &b.Counts.Anonymous)
	if err != nil {
		return b, err
	}
	b.OpenedAt = fromMS(opened)
	if closed.Valid {
		t := fromMS(closed.Int64)
		b.ClosedAt = &t
	}
	return b, nil
}

func openBatch(ctx context.Context, q querier, stationID string) (serializer.Batch, error) {
	return scanBatch(q.QueryRowContext(ctx, qOpenBatch, stationID))
}

func batchByID(ctx context.Context, q querier, id int64) (serializer.Batch, error) {
	b, err := scanBatch(q.QueryRowContext(ctx, `SELECT `+batchCols+` FROM batches WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return b, serializer.Errorf(serializer.ENOTFOUND, "no batch %d", id)
	}
	return b, err
}

func insertBatch(ctx context.Context, tx querier, now time.Time, b serializer.Batch, actor, reason string) (serializer.Batch, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO batches (product_id, station_id, planned, state, opened_at) VALUES (?, ?, ?, 'open', ?)`,
		b.ProductID, b.StationID, b.Planned, ms(now))
	if isUniqueViolation(err) {
		cur, _ := openBatch(ctx, tx, b.StationID)
		return b, serializer.Errorf(serializer.ECONFLICT, "station %q already runs batch %d: close it first", b.StationID, cur.ID)
	}
	if err != nil {
		return b, err
	}
	if b.ID, err = res.LastInsertId(); err != nil {
		return b, err
	}
	b.State, b.OpenedAt, b.Counts = serializer.BatchOpen, now, serializer.BatchCounts{}
	detail := fmt.Sprintf("product=%s station=%s planned=%d", b.ProductID, b.StationID, b.Planned)
	return b, addAudit(ctx, tx, now, serializer.AuditEntry{Actor: actor, Action: "batch.open", Subject: batchSubject(b.ID), Reason: reason, Detail: detail})
}

// closeBatch closes an open batch and requests it for the targets that take every
// closed batch: one row each, so that closing stays short for any batch size; the
// devices are put into the outbox afterwards (expandSync).
func closeBatch(ctx context.Context, tx querier, now time.Time, id int64, actor, reason string, autoSync []string) (serializer.Batch, error) {
	b, err := batchByID(ctx, tx, id)
	if err != nil {
		return b, err
	}
	if b.State != serializer.BatchOpen {
		return b, serializer.Errorf(serializer.ECONFLICT, "batch %d is already closed", id)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE batches SET state = 'closed', closed_at = ? WHERE id = ?`, ms(now), id); err != nil {
		return b, err
	}
	b.State, b.ClosedAt = serializer.BatchClosed, &now
	detail := fmt.Sprintf("issued=%d labeled=%d voided=%d", b.Counts.Issued, b.Counts.Labeled, b.Counts.Voided)
	if err := addAudit(ctx, tx, now, serializer.AuditEntry{Actor: actor, Action: "batch.close", Subject: batchSubject(id), Reason: reason, Detail: detail}); err != nil {
		return b, err
	}
	for _, target := range autoSync {
		if err := requestSync(ctx, tx, now, id, target, actor, "batch closed"); err != nil {
			return b, err
		}
	}
	return b, nil
}

// Batch returns one batch with its counters.
func (db *DB) Batch(ctx context.Context, id int64) (serializer.Batch, error) {
	b, err := batchByID(ctx, db.read, id)
	return b, db.fault("read batch", err)
}

// Batches lists batches, newest first.
func (db *DB) Batches(ctx context.Context, f serializer.BatchFilter) ([]serializer.Batch, error) {
	var (
		where []string
		args  []any
	)
	if f.StationID != "" {
		where, args = append(where, "station_id = ?"), append(args, f.StationID)
	}
	if f.State != "" {
		where, args = append(where, "state = ?"), append(args, string(f.State))
	}
	q := `SELECT ` + batchCols + ` FROM batches`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	q += ` ORDER BY id DESC LIMIT ?`
	rows, err := db.read.QueryContext(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, db.fault("list batches", err)
	}
	defer rows.Close()
	batches := []serializer.Batch{}
	for rows.Next() {
		b, err := scanBatch(rows)
		if err != nil {
			return nil, err
		}
		batches = append(batches, b)
	}
	return batches, rows.Err()
}

// OpenBatch opens a batch; a station with an open batch gets ECONFLICT.
func (db *DB) OpenBatch(ctx context.Context, b serializer.Batch, actor string) (serializer.Batch, error) {
	var out serializer.Batch
	err := db.writeTx(ctx, "open batch", func(tx querier, now time.Time) error {
		var err error
		out, err = insertBatch(ctx, tx, now, b, actor, "")
		return err
	})
	return out, err
}

// CloseBatch closes an open batch and, in the same transaction, requests it for the
// autoSync targets; the syncer puts its devices into the outbox.
func (db *DB) CloseBatch(ctx context.Context, id int64, actor, reason string, autoSync []string) (serializer.Batch, error) {
	var out serializer.Batch
	err := db.writeTx(ctx, "close batch", func(tx querier, now time.Time) error {
		var err error
		out, err = closeBatch(ctx, tx, now, id, actor, reason, autoSync)
		return err
	})
	return out, err
}

func addAudit(ctx context.Context, tx querier, now time.Time, e serializer.AuditEntry) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO audit (at, actor, action, subject, reason, detail) VALUES (?, ?, ?, ?, ?, ?)`,
		ms(now), e.Actor, e.Action, e.Subject, e.Reason, e.Detail)
	return err
}

// Record appends an entry to the audit trail.
func (db *DB) Record(ctx context.Context, e serializer.AuditEntry) error {
	return db.writeTx(ctx, "record audit entry", func(tx querier, now time.Time) error {
		return addAudit(ctx, tx, now, e)
	})
}

// Audit returns the audit entries about subject ("" for all), newest first.
func (db *DB) Audit(ctx context.Context, subject string, limit int) ([]serializer.AuditEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	q, args := `SELECT id, at, actor, action, subject, reason, detail FROM audit`, []any{}
	if subject != "" {
		q, args = q+` WHERE subject = ?`, append(args, subject)
	}
	rows, err := db.read.QueryContext(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, db.fault("read audit trail", err)
	}
	defer rows.Close()
	entries := []serializer.AuditEntry{}
	for rows.Next() {
		var (
			e  serializer.AuditEntry
			at int64
		)
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Subject, &e.Reason, &e.Detail); err != nil {
			return nil, err
		}
		e.At = fromMS(at)
		entries = append(entries, e)
	}
	return entries, rows.Err()
}
