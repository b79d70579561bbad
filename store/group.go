package store

import (
	"context"
	"errors"
	"time"

	"serialbox/serializer"
)

// Savepoints that keep one request's refusal from undoing the rest of its group.
const (
	qSavepoint  = `SAVEPOINT issue`
	qRollbackTo = `ROLLBACK TO issue`
	qRelease    = `RELEASE issue`
)

// DefaultGroupCommit is the most issue requests committed together in one transaction.
const DefaultGroupCommit = 256

// errClosed answers issue requests that arrive after Close.
var errClosed = &serializer.Error{Code: serializer.EUNAVAILABLE, Message: "the appliance is shutting down; try again"}

// issueRequest is one caller waiting in IssueDevice.
type issueRequest struct {
	ctx  context.Context
	p    serializer.IssueParams
	done chan issueResult // buffered: the committer never blocks on a caller
}

type issueResult struct {
	issued serializer.Issued
	err    error
}

// IssueDevice returns the identity's device if it has one; otherwise it draws a UCI and
// writes the device and its label job. It returns only after the transaction that holds
// them is committed and synced to disk.
//
// Requests are committed in groups: those that arrive while one transaction commits go
// into the next one, each under its own savepoint, so that one fsync makes many UCIs
// durable. A refusal (batch full, …) rolls back only its own request.
func (db *DB) IssueDevice(ctx context.Context, p serializer.IssueParams) (serializer.Issued, error) {
	req := &issueRequest{ctx: ctx, p: p, done: make(chan issueResult, 1)}
	db.closeMu.RLock()
	if db.closed {
		db.closeMu.RUnlock()
		return serializer.Issued{}, errClosed
	}
	select {
	case db.issues <- req:
	case <-ctx.Done():
		db.closeMu.RUnlock()
		return serializer.Issued{}, ctx.Err()
	}
	db.closeMu.RUnlock()
	select {
	case r := <-req.done:
		return r.issued, r.err
	case <-ctx.Done():
		// The request may still be committed: like an answer lost on the wire.
		return serializer.Issued{}, ctx.Err()
	}
}

// bulkRequest is one transaction of a bulk run (pre-generation) waiting in bulkTx.
type bulkRequest struct {
	ctx  context.Context
	what string
	fn   func(tx querier, now time.Time) error
	done chan error // buffered
}

// bulkTx runs fn as one write transaction of the committer, between groups of issue
// requests: a bulk run made of short transactions never keeps a jig waiting for more
// than one of them.
func (db *DB) bulkTx(ctx context.Context, what string, fn func(tx querier, now time.Time) error) error {
	req := &bulkRequest{ctx: ctx, what: what, fn: fn, done: make(chan error, 1)}
	db.closeMu.RLock()
	if db.closed {
		db.closeMu.RUnlock()
		return errClosed
	}
	select {
	case db.bulk <- req:
	case <-ctx.Done():
		db.closeMu.RUnlock()
		return ctx.Err()
	}
	db.closeMu.RUnlock()
	// Wait even when ctx ends: fn may be running on the caller's data.
	return <-req.done
}

// commitLoop is the committer: it takes the first waiting request, gathers those
// queued behind it, and commits them together. Bulk transactions take turns with the
// groups: after a group, a waiting bulk transaction goes first, and issue requests
// waiting when a bulk transaction ends go before the next one. It ends when both
// queues are closed.
func (db *DB) commitLoop() {
	defer close(db.committerDone)
	group := make([]*issueRequest, 0, db.groupMax)
	issues, bulk := db.issues, db.bulk
	for issues != nil || bulk != nil {
		var first *issueRequest
		select {
		case r, ok := <-issues:
			if !ok {
				issues = nil
				continue
			}
			first = r
		default:
			select {
			case r, ok := <-issues:
				if !ok {
					issues = nil
					continue
				}
				first = r
			case c, ok := <-bulk:
				if !ok {
					bulk = nil
					continue
				}
				db.commitBulk(c)
				continue
			}
		}
		group = append(group[:0], first)
	gather:
		for len(group) < db.groupMax {
			select {
			case r, ok := <-issues:
				if !ok {
					issues = nil
					break gather
				}
				group = append(group, r)
			default:
				break gather
			}
		}
		db.commitGroup(group)
		clear(group)
		select {
		case c, ok := <-bulk:
			if !ok {
				bulk = nil
				continue
			}
			db.commitBulk(c)
		default:
		}
	}
}

func (db *DB) commitBulk(r *bulkRequest) {
	if err := r.ctx.Err(); err != nil {
		r.done <- err
		return
	}
	r.done <- db.writeTx(r.ctx, r.what, r.fn)
}

func (db *DB) commitGroup(group []*issueRequest) {
	results := make([]issueResult, len(group))
	start := time.Now()
	// The statements run under the committer's own context: one caller giving up must
	// not break the transaction the others share.
	ctx := context.Background()
	err := db.writeTx(ctx, "issue UCIs", func(tx querier, now time.Time) error {
		for i, r := range group {
			if err := r.ctx.Err(); err != nil {
				results[i].err = err // gave up before its turn: issue nothing for it
				continue
			}
			if _, err := tx.ExecContext(ctx, qSavepoint); err != nil {
				return err
			}
			issued, err := issueDevice(ctx, tx, now, r.p)
			var domain *serializer.Error
			switch {
			case err == nil:
				results[i].issued = issued
				if db.events.Load() && !issued.Existing {
					if err := insertIssuedEvent(ctx, tx, now, issued); err != nil {
						return err
					}
				}
			case errors.As(err, &domain):
				results[i].err = err
				if _, err := tx.ExecContext(ctx, qRollbackTo); err != nil {
					return err
				}
			default:
				return err // a storage fault fails the whole group: nothing of it is durable
			}
			if _, err := tx.ExecContext(ctx, qRelease); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for i := range results {
			results[i] = issueResult{err: err}
		}
	}
	db.observeGroup(len(group), time.Since(start))
	for i, r := range group {
		r.done <- results[i]
	}
}

// GroupStats are the committer's counters since Open.
type GroupStats struct {
	Groups   uint64 // transactions committed by the committer
	Requests uint64 // issue requests in them
	MaxGroup int    // the largest group so far
}

func (db *DB) observeGroup(n int, _ time.Duration) {
	db.statsMu.Lock()
	defer db.statsMu.Unlock()
	db.stats.Groups++
	db.stats.Requests += uint64(n)
	db.stats.MaxGroup = max(db.stats.MaxGroup, n)
}

// GroupStats returns the committer's counters.
func (db *DB) GroupStats() GroupStats {
	db.statsMu.Lock()
	defer db.statsMu.Unlock()
	return db.stats
}
