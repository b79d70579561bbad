package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"serialbox/serializer"
)

func jobSubject(id int64) string { return "job:" + strconv.FormatInt(id, 10) }

func deviceSubject(u serializer.UCI) string { return "device:" + u.String() }

func jobByID(ctx context.Context, q querier, id int64) (serializer.PrintJob, error) {
	j, err := scanJob(q.QueryRowContext(ctx, `SELECT `+jobCols+` FROM print_jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, serializer.Errorf(serializer.ENOTFOUND, "no label job %d", id)
	}
	return j, err
}

func deviceByUCI(ctx context.Context, q querier, uci serializer.UCI) (serializer.Device, error) {
	d, err := scanDevice(q.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE uci = ?`, uci.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return d, serializer.Errorf(serializer.ENOTFOUND, "no device has claim ID %s", uci.Grouped())
	}
	return d, err
}

func insertJob(ctx context.Context, tx querier, now time.Time, j serializer.PrintJob) (serializer.PrintJob, error) {
	var uci any
	if j.UCI != nil {
		uci = j.UCI.String()
	}
	res, err := tx.ExecContext(ctx, `
		INSERT INTO print_jobs (kind, uci, batch_id, station_id, reprint, reason, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, string(j.Kind), uci, j.BatchID, j.StationID, j.Reprint, j.Reason, ms(now), ms(now))
	if err != nil {
		return j, err
	}
	if j.ID, err = res.LastInsertId(); err != nil {
		return j, err
	}
	j.State, j.CreatedAt, j.UpdatedAt = serializer.JobQueued, now, now
	return j, nil
}

// Reprint queues another label for a device at a station ("" = the device's own) and
// records who asked and why.
func (db *DB) Reprint(ctx context.Context, uci serializer.UCI, stationID, actor, reason string) (serializer.PrintJob, error) {
	var out serializer.PrintJob
	err := db.writeTx(ctx, "queue reprint", func(tx querier, now time.Time) error {
		d, err := deviceByUCI(ctx, tx, uci)
		if err != nil {
			return err
		}
		if d.State == serializer.DeviceVoided {
			return serializer.Errorf(serializer.ECONFLICT, "claim ID %s is voided: its label must not be printed again", uci.Grouped())
		}
		if stationID == "" {
			stationID = d.StationID
		}
		out, err = insertJob(ctx, tx, now, serializer.PrintJob{
			Kind: serializer.JobDevice, UCI: &d.UCI, BatchID: d.BatchID, StationID: stationID, Reprint: true, Reason: reason,
		})
		if err != nil {
			return err
		}
		return addAudit(ctx, tx, now, serializer.AuditEntry{Actor: actor, Action: "label.reprint", Subject: deviceSubject(uci), Reason: reason,
			Detail: fmt.Sprintf("job=%d station=%s", out.ID, stationID)})
	})
	return out, err
}

// Void withdraws a UCI: the device is marked voided, its labels not yet printed are
// cancelled, and the UCI is never issued again (it stays in the registry).
func (db *DB) Void(ctx context.Context, uci serializer.UCI, actor, reason string) (serializer.Device, error) {
	var out serializer.Device
	err := db.writeTx(ctx, "void device", func(tx querier, now time.Time) error {
		d, err := deviceByUCI(ctx, tx, uci)
		if err != nil {
			return err
		}
		if d.State == serializer.DeviceVoided {
			return serializer.Errorf(serializer.ECONFLICT, "claim ID %s is already voided", uci.Grouped())
		}
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET state = 'voided', updated_at = ? WHERE uci = ?`, ms(now), uci.String()); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `
			UPDATE print_jobs SET state = 'cancelled', last_error = 'device voided', updated_at = ?
			WHERE uci = ? AND state IN ('queued', 'failed', 'uncertain')`, ms(now), uci.String())
		if err != nil {
			return err
		}
		cancelled, _ := res.RowsAffected()
		if _, err := tx.ExecContext(ctx, `
			UPDATE sync_items SET state = 'error', message = 'voided before it was registered', updated_at = ?
			WHERE uci = ? AND state = 'pending'`, ms(now), uci.String()); err != nil {
			return err
		}
		was := d.State
		d.State, d.UpdatedAt = serializer.DeviceVoided, now
		out = d
		return addAudit(ctx, tx, now, serializer.AuditEntry{Actor: actor, Action: "device.void", Subject: deviceSubject(uci), Reason: reason,
			Detail: fmt.Sprintf("was=%s cancelled_jobs=%d", was, cancelled)})
	})
	return out, err
}

// BatchLabel queues a batch (carton) label at a station ("" = the batch's own).
func (db *DB) BatchLabel(ctx context.Context, batchID int64, stationID, actor, reason string) (serializer.PrintJob, error) {
	var out serializer.PrintJob
	err := db.writeTx(ctx, "queue batch label", func(tx querier, now time.Time) error {
		b, err := batchByID(ctx, tx, batchID)
		if err != nil {
			return err
		}
		if stationID == "" {
			stationID = b.StationID
		}
		out, err = insertJob(ctx, tx, now, serializer.PrintJob{Kind: serializer.JobBatch, BatchID: b.ID, StationID: stationID, Reason: reason})
		if err != nil {
			return err
		}
		return addAudit(ctx, tx, now, serializer.AuditEntry{Actor: actor, Action: "label.batch", Subject: batchSubject(b.ID), Reason: reason,
			Detail: fmt.Sprintf("job=%d station=%s", out.ID, stationID)})
	})
	return out, err
}

// ResolveJob settles a label job that failed or whose delivery is uncertain, as an
// operator decided after looking at the printer: resend it, confirm it printed, or
// cancel it.
func (db *DB) ResolveJob(ctx context.Context, id int64, action serializer.JobAction, actor, reason string) (serializer.PrintJob, error) {
	var out serializer.PrintJob
	err := db.writeTx(ctx, "resolve label job", func(tx querier, now time.Time) error {
		j, err := jobByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if j.State != serializer.JobUncertain && j.State != serializer.JobFailed {
			return serializer.Errorf(serializer.ECONFLICT, "label job %d is %s; only failed or uncertain jobs wait for a decision", id, j.State)
		}
		var next serializer.JobState
		switch action {
		case serializer.JobResend:
			next = serializer.JobQueued
			if j.UCI != nil {
				d, err := deviceByUCI(ctx, tx, *j.UCI)
				if err != nil {
					return err
				}
				if d.State == serializer.DeviceVoided {
					return serializer.Errorf(serializer.ECONFLICT, "claim ID %s is voided: its label must not be printed again", d.UCI.Grouped())
				}
			}
		case serializer.JobConfirmPrinted:
			next = serializer.JobPrinted
		case serializer.JobCancel:
			next = serializer.JobCancelled
		default:
			return serializer.Errorf(serializer.EINVALID, "action %q: must be resend, printed or cancel", action)
		}
		if err := setJobState(ctx, tx, now, id, j.State, next, j.LastError); err != nil {
			return err
		}
		was := j.State
		j.State, j.UpdatedAt = next, now
		out = j
		return addAudit(ctx, tx, now, serializer.AuditEntry{Actor: actor, Action: "label." + string(action), Subject: jobSubject(id), Reason: reason,
			Detail: fmt.Sprintf("was=%s uci=%s", was, uciString(j.UCI))})
	})
	return out, err
}

func uciString(u *serializer.UCI) string {
	if u == nil {
		return ""
	}
	return u.String()
}

// StationJobs returns a station's label jobs that are waiting or need an operator,
// oldest first.
func (db *DB) StationJobs(ctx context.Context, stationID string, limit int) ([]serializer.PrintJob, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	rows, err := db.read.QueryContext(ctx, `
		SELECT `+jobCols+` FROM print_jobs
		WHERE station_id = ? AND state IN ('queued', 'sending', 'failed', 'uncertain')
		ORDER BY id LIMIT ?`, stationID, limit)
	if err != nil {
		return nil, db.fault("read label queue", err)
	}
	defer rows.Close()
	jobs := []serializer.PrintJob{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}
