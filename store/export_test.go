package store

import (
	"context"
	"time"
)

// SetFreeDisk replaces how the database learns the free space of its volume.
func SetFreeDisk(db *DB, f func() (uint64, error)) { db.freeDisk = f }

// ExpandStep puts up to limit more devices of a batch's request for target into the
// outbox, in one transaction, and reports whether the request is complete.
func ExpandStep(ctx context.Context, db *DB, batchID int64, target string, limit int) (bool, error) {
	var finished bool
	err := db.bulkTx(ctx, "test expansion", func(tx querier, now time.Time) error {
		var err error
		finished, err = expandStep(ctx, tx, now, batchID, target, limit)
		return err
	})
	return finished, err
}
