// Package store keeps serialbox's registry in SQLite (mattn/go-sqlite3): embedded,
// numbered migrations; pragmas in the DSN so every pooled connection has them; one
// writer connection with synchronous=FULL, so that a committed UCI survives power
// loss; and a separate pool for reads. All SQL of serialbox lives here.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/pressly/goose/v3"

	"serialbox/serializer"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// ReadConns is the size of the read pool.
const ReadConns = 4

// DB is the registry database.
type DB struct {
	path  string
	write *sql.DB // one connection: SQLite has one writer at a time anyway
	read  *sql.DB

	// Now is the clock; each transaction reads it once.
	Now func() time.Time
	// Logger receives migration and fault messages.
	Logger *slog.Logger

	// The issue committer (group.go).
	groupMax      int
	issues        chan *issueRequest
	bulk          chan *bulkRequest
	committerDone chan struct{}
	closeMu       sync.RWMutex
	closed        bool
	statsMu       sync.Mutex
	stats         GroupStats

	prepared map[string]*sql.Stmt // hot write statements, prepared on the writer connection

	events atomic.Bool // the event outbox is on: issued devices are recorded in it (events.go)

	freeDisk func() (uint64, error) // free bytes on the data volume
}

// Options tunes Open. The zero value is the production setting.
type Options struct {
	Logger *slog.Logger
	// GroupCommit is the most issue requests committed in one transaction; 0 means
	// DefaultGroupCommit and 1 commits every request alone (for comparison).
	GroupCommit int
}

// Open opens (creating if needed) the database file at path and brings its schema
// up to date. It refuses a database written by a newer serialbox.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create database folder: %w", err)
		}
		warnOpenFolder(logger, dir)
	}
	if err := privateFiles(logger, path); err != nil {
		return nil, err
	}
	db := &DB{path: path, Now: time.Now, Logger: logger, groupMax: opts.GroupCommit}
	db.freeDisk = func() (uint64, error) { return volumeFree(path) }
	if db.groupMax <= 0 {
		db.groupMax = DefaultGroupCommit
	}
	var err error
	if db.write, err = sql.Open("sqlite3", dsn(path, false)); err != nil {
		return nil, err
	}
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxLifetime(0)
	db.write.SetConnMaxIdleTime(0)
	if err := db.migrate(ctx); err != nil {
		db.write.Close()
		return nil, err
	}
	if err := db.prepare(ctx); err != nil {
		db.write.Close()
		return nil, err
	}
	if db.read, err = sql.Open("sqlite3", dsn(path, true)); err != nil {
		db.write.Close()
		return nil, err
	}
	db.read.SetMaxOpenConns(ReadConns)
	db.read.SetMaxIdleConns(ReadConns)
	db.issues = make(chan *issueRequest, db.groupMax)
	db.bulk = make(chan *bulkRequest)
	db.committerDone = make(chan struct{})
	go db.commitLoop()
	return db, nil
}

// dsn returns the connection string. Pragmas in the DSN apply to every connection
// the pool opens, not just the first.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL") // every commit is fsynced: an answered UCI survives power loss
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	if readOnly {
		q.Set("_query_only", "true")
		q.Set("_txlock", "deferred")
	} else {
		q.Set("_txlock", "immediate")  // take the write lock at BEGIN: no upgrade deadlocks
		q.Set("_cache_size", "-65536") // 64 MiB for the writer: bulk runs touch the whole uci index
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// Close finishes the issue requests already queued, then closes both pools. It may
// be called more than once.
func (db *DB) Close() error {
	db.closeMu.Lock()
	if !db.closed {
		db.closed = true
		close(db.issues)
		close(db.bulk)
	}
	db.closeMu.Unlock()
	<-db.committerDone
	var errs []error
	for _, st := range db.prepared {
		errs = append(errs, st.Close())
	}
	if db.read != nil {
		errs = append(errs, db.read.Close())
	}
	if db.write != nil {
		errs = append(errs, db.write.Close())
	}
	return errors.Join(errs...)
}

func (db *DB) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.write, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	have, err := p.GetDBVersion(ctx)
	if err != nil {
		return db.fault("read schema version", err)
	}
	sources := p.ListSources()
	known := sources[len(sources)-1].Version
	if have > known {
		return fmt.Errorf("database %s has schema version %d but this serialbox knows only up to %d: run the newer serialbox or restore a backup", db.path, have, known)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return db.fault("migrate database", err)
	}
	for _, r := range results {
		db.Logger.Info("database migrated", "version", r.Source.Version, "file", filepath.Base(r.Source.Path), "took", r.Duration)
	}
	return nil
}

// SchemaVersion returns the newest migration applied to the database.
func (db *DB) SchemaVersion(ctx context.Context) (int64, error) {
	var v int64
	err := db.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&v)
	return v, err
}

// IntegrityCheck runs PRAGMA integrity_check and returns its first line ("ok" when sound).
func (db *DB) IntegrityCheck(ctx context.Context) (string, error) {
	var s string
	err := db.read.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&s)
	return s, err
}

// Ping checks that the database answers reads.
func (db *DB) Ping(ctx context.Context) error { return db.read.PingContext(ctx) }

// writeTx runs fn in one write transaction, committing when fn returns nil. now is
// read once and handed to fn so that every row of the transaction carries the same time.
func (db *DB) writeTx(ctx context.Context, what string, fn func(tx querier, now time.Time) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return db.fault(what, err)
	}
	defer tx.Rollback()
	if err := fn(preparedTx{tx, db.prepared}, db.Now().UTC()); err != nil {
		return db.fault(what, err)
	}
	if err := tx.Commit(); err != nil {
		return db.fault(what, err)
	}
	return nil
}

// fault passes domain errors through and turns storage faults a user can act on
// (disk full, read-only file) into EUNAVAILABLE; everything else stays internal.
func (db *DB) fault(what string, err error) error {
	if err == nil {
		return nil
	}
	var de *serializer.Error
	if errors.As(err, &de) {
		return err
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrFull:
			return &serializer.Error{Code: serializer.EUNAVAILABLE, Message: "the appliance's disk is full: nothing was recorded; free space on the data volume"}
		case sqlite3.ErrReadonly, sqlite3.ErrPerm, sqlite3.ErrCantOpen:
			return &serializer.Error{Code: serializer.EUNAVAILABLE, Message: "the appliance's database cannot be written (read-only or permissions): nothing was recorded"}
		case sqlite3.ErrIoErr:
			if se.SystemErrno == syscall.EROFS {
				return &serializer.Error{Code: serializer.EUNAVAILABLE, Message: "the appliance's data volume is read-only: nothing was recorded"}
			}
			return &serializer.Error{Code: serializer.EUNAVAILABLE, Message: "the appliance's disk reported an I/O error: nothing was recorded"}
		case sqlite3.ErrBusy, sqlite3.ErrLocked:
			return &serializer.Error{Code: serializer.EUNAVAILABLE, Message: "the database is busy (a backup or another process holds it); try again"}
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func isUniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique
}

// Writable checks that the database takes a write now: it commits a change to one
// row, which goes through the write-ahead log and its fsync like an issuance.
func (db *DB) Writable(ctx context.Context) error {
	return db.writeTx(ctx, "check the database takes writes", func(tx querier, now time.Time) error {
		_, err := tx.ExecContext(ctx, `UPDATE readiness SET checked_at = ? WHERE id = 1`, now.UnixNano())
		return err
	})
}

// DBSize returns the bytes the database file and its write-ahead log take on disk.
func (db *DB) DBSize() (int64, error) {
	var total int64
	for _, p := range []string{db.path, db.path + "-wal"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		total += fi.Size()
	}
	return total, nil
}

// privateFiles makes sure the database and its -wal and -shm files are readable by
// the appliance's user only: they hold every claim ID, the password hashes and the
// session tokens. SQLite creates a new database as 0644 (less the umask) and gives the
// -wal and -shm files the database's mode, so the database is created 0600 first.
// Existing files that others may read are narrowed, with a warning.
func privateFiles(logger *slog.Logger, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	switch {
	case err == nil:
		return f.Close()
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("create database: %w", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, 0o600); err != nil {
			logger.Warn("the database file may be read by other users and its mode cannot be narrowed", "file", p, "mode", fi.Mode().Perm(), "err", err)
			continue
		}
		logger.Warn("the database file could be read by other users; its mode was narrowed to 0600", "file", p, "was", fi.Mode().Perm())
	}
	return nil
}

// warnOpenFolder logs a warning when users other than the appliance's (and its group)
// may read or change the data folder.
func warnOpenFolder(logger *slog.Logger, dir string) {
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm()&0o006 == 0 {
		return
	}
	logger.Warn("the data folder can be read by other users of this machine: the database and backups are 0600, but restrict the folder too (chmod o-rwx)",
		"dir", dir, "mode", fi.Mode().Perm())
}
