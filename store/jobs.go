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

// UpdateJob moves a label job to state, recording lastErr ("" clears it). Moving to
// sending counts an attempt; a printed device label marks its device labeled.
func (db *DB) UpdateJob(ctx context.Context, id int64, state serializer.JobState, lastErr string) error {
	return db.writeTx(ctx, "update label job", func(tx querier, now time.Time) error {
		return setJobState(ctx, tx, now, id, state, lastErr)
	})
}

func setJobState(ctx context.Context, tx querier, now time.Time, id int64, state serializer.JobState, lastErr string) error {
	res, err := tx.ExecContext(ctx, `
		UPDATE print_jobs SET state = ?, last_error = ?, attempts = attempts + (? = 'sending'), updated_at = ?
		WHERE id = ?`, string(state), lastErr, string(state), ms(now), id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return serializer.Errorf(serializer.ENOTFOUND, "no label job %d", id)
	}
	if state != serializer.JobPrinted {
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
