package store

import (
	"context"
	"database/sql"
	"fmt"
)

// preparedQueries are the write statements run for every UCI. SQLite compiles a
// statement each time it is executed from text; preparing these once on the writer
// connection takes that work off the issuance path.
var preparedQueries = []string{
	qIdentityUCI, qDeviceByUCI, qInsertIdentity, qOpenBatch, qInsertDevice, qInsertDeviceJob, qCountIssued,
	qSavepoint, qRollbackTo, qRelease, qPregenInsert, qInsertEvent,
}

func (db *DB) prepare(ctx context.Context) error {
	db.prepared = make(map[string]*sql.Stmt, len(preparedQueries))
	for _, q := range preparedQueries {
		st, err := db.write.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
		db.prepared[q] = st
	}
	return nil
}

// preparedTx is a write transaction that runs the prepared statements it knows and
// compiles the rest as usual.
type preparedTx struct {
	tx       *sql.Tx
	prepared map[string]*sql.Stmt
}

func (p preparedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st, ok := p.prepared[query]; ok {
		return p.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return p.tx.ExecContext(ctx, query, args...)
}

func (p preparedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st, ok := p.prepared[query]; ok {
		return p.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return p.tx.QueryContext(ctx, query, args...)
}

func (p preparedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st, ok := p.prepared[query]; ok {
		return p.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return p.tx.QueryRowContext(ctx, query, args...)
}
