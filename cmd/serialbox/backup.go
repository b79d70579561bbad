package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"serialbox/station"
	"serialbox/store"
)

// BackupConfig is the [backup] table: scheduled backups while serving.
type BackupConfig struct {
	Dir   string           `toml:"dir"`   // folder for the backups, relative to data_dir; "" = no scheduled backups
	Every station.Duration `toml:"every"` // time between backups (default 6h)
	Keep  int              `toml:"keep"`  // newest backups kept (default 14)
}

// lockDataDir takes the data folder's lock, held for as long as the appliance serves
// it, so that restore can tell that the database is in use.
func lockDataDir(dir string) (release func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, "serialbox.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another serialbox is serving %s", dir)
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}

// dataFlags adds --config and --data to a subcommand and returns a loader for them.
func dataFlags(fs *flag.FlagSet) func() (Config, error) {
	configPath := fs.String("config", configFromEnv(), "configuration file (TOML); none = the built-in demo")
	dataDir := fs.String("data", "", "data folder (overrides the config's data_dir)")
	return func() (Config, error) {
		cfg, err := loadConfig(*configPath, os.Getenv)
		if *dataDir != "" {
			cfg.DataDir = *dataDir
		}
		return cfg, err
	}
}

// runBackup writes a consistent copy of the database, also while the appliance serves.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	out := fs.String("out", "", "file to write the backup to (must not exist)")
	load := dataFlags(fs)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := store.Backup(ctx, filepath.Join(cfg.DataDir, "serialbox.db"), *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup written to %s in %v\n", *out, time.Since(start).Round(time.Millisecond))
	return nil
}

// runRestore replaces the database with a backup; it refuses while an appliance serves it.
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	from := fs.String("from", "", "backup file to restore")
	replica := fs.String("from-replica", "", "replica URL to build the database from (file://, s3://, sftp://); settings from the config's [replicate]")
	at := fs.String("at", "", "with --from-replica: the database as it was at this time (RFC 3339, e.g. 2026-11-21T14:30:00Z); default the newest")
	load := dataFlags(fs)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if (*from == "") == (*replica == "") {
		return errors.New("give --from FILE or --from-replica URL")
	}
	if *at != "" && *replica == "" {
		return errors.New("--at goes with --from-replica")
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	if *replica != "" {
		return restoreFromReplica(ctx, cfg, *replica, *at, stdout)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	release, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("refusing to restore: %w; stop it first", err)
	}
	defer release()
	if err := store.Restore(ctx, *from, filepath.Join(cfg.DataDir, "serialbox.db")); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s into %s\n", *from, cfg.DataDir)
	return nil
}

// backups takes scheduled backups while the appliance serves.
type backups struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startBackups(cfg *Config, logger *slog.Logger) *backups {
	b := &backups{cancel: func() {}}
	if cfg.Backup.Dir == "" {
		return b
	}
	dir, every, keep := cfg.dataPath(cfg.Backup.Dir), time.Duration(cfg.Backup.Every), cfg.Backup.Keep
	db := filepath.Join(cfg.DataDir, "serialbox.db")
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	b.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			start := time.Now()
			out := filepath.Join(dir, store.BackupName(start))
			err := os.MkdirAll(dir, 0o700)
			if err == nil {
				err = store.Backup(ctx, db, out)
			}
			if err == nil {
				err = store.PruneBackups(dir, keep)
			}
			if ctx.Err() != nil {
				os.Remove(out + ".partial")
				return // shutting down: not a failed backup
			}
			if err != nil {
				logger.Error("scheduled backup failed", "dir", dir, "err", err)
				continue
			}
			logger.Info("backup written", "file", out, "took", time.Since(start).Round(time.Millisecond))
		}
	})
	return b
}

// Close stops taking backups and waits for one in progress.
func (b *backups) Close() {
	b.cancel()
	b.wg.Wait()
}
