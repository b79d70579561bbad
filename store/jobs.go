package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"serialbox/serializer"
)

// NextJob returns the station's oldest label job that is queued, or that was being
// sent when the appliance stopped (the worker decides what such a job means).
func (db *DB) NextJob(ctx context.Context, stationID string) (serializer.PrintJob, bool, error) {
	j, err := scanJob(db.read.QueryRowContext(ctx, `
		SELECT `+jobCols+` FROM print_jobs
		WHERE station_id = ? AND state IN ('queued', 'sending')
		ORDER BY id LIMIT 1`, stationID))
	if errors.Is(err, sql.ErrNoRows) {
		return j, false, nil
	}
	if err != nil {
		return j, false, db.fault("read label queue", err)
	}
	return j, true, nil
}

// MoveJob moves a label job from state from to state to, recording lastErr ("" clears
// it). Moving to sending counts an attempt; a printed device label marks its device
// labeled. The move is a compare-and-set: a job no longer in state from (an operator
// settled it, a void cancelled it, another worker moved it) is left as it is, and the
// ECONFLICT error names the state it is in.
func (db *DB) MoveJob(ctx context.Context, id int64, from, to serializer.JobState, lastErr string) error {
	return db.writeTx(ctx, "update label job", func(tx querier, now time.Time) error {
		return setJobState(ctx, tx, now, id, from, to, lastErr)
	})
}

// UpdateJob sets a label job's state whatever it is now, recording lastErr ("" clears
// it). It is for repairs and test fixtures; the print worker moves jobs with MoveJob.
func (db *DB) UpdateJob(ctx context.Context, id int64, state serializer.JobState, lastErr string) error {
	return db.writeTx(ctx, "update label job", func(tx querier, now time.Time) error {
		return setJobState(ctx, tx, now, id, anyState, state, lastErr)
	})
}

// anyState as the expected state of setJobState sets the state unconditionally.
const anyState serializer.JobState = ""

// setJobState moves job id from state from (anyState: whatever it is) to state to.
func setJobState(ctx context.Context, tx querier, now time.Time, id int64, from, to serializer.JobState, lastErr string) error {
	res, err := tx.ExecContext(ctx, `
		UPDATE print_jobs SET state = ?, last_error = ?, attempts = attempts + (? = 'sending'), updated_at = ?
		WHERE id = ? AND (? = '' OR state = ?)`, string(to), lastErr, string(to), ms(now), id, string(from), string(from))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		var cur serializer.JobState
		err := tx.QueryRowContext(ctx, `SELECT state FROM print_jobs WHERE id = ?`, id).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return serializer.Errorf(serializer.ENOTFOUND, "no label job %d", id)
		}
		if err != nil {
			return err
		}
		return serializer.Errorf(serializer.ECONFLICT, "label job %d is %s, not %s as expected: left %s", id, cur, from, cur)
	}
	if to != serializer.JobPrinted {
		return nil
	}
	_, err = tx.ExecContext(ctx, `
		UPDATE devices SET state = 'labeled', updated_at = ?
		WHERE state = 'issued' AND uci = (SELECT uci FROM print_jobs WHERE id = ? AND kind = 'device')`, ms(now), id)
	return err
}

// QueueCounts returns how many label jobs of the station are in each state.
func (db *DB) QueueCounts(ctx context.Context, stationID string) (map[serializer.JobState]int, error) {
	rows, err := db.read.QueryContext(ctx, `
		SELECT state, COUNT(*) FROM print_jobs
		WHERE station_id = ? AND state IN ('queued', 'sending', 'failed', 'uncertain')
		GROUP BY state`, stationID)
	if err != nil {
		return nil, db.fault("count label jobs", err)
	}
	defer rows.Close()
	counts := map[serializer.JobState]int{}
	for rows.Next() {
		var (
			s serializer.JobState
			n int
		)
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		counts[s] = n
	}
	return counts, rows.Err()
}
