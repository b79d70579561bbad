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

	"serialbox/serializer"
	"serialbox/serializer/upstream"
	"serialbox/store"
)

// startSyncer starts registering queued batches with the configured upstream targets.
// File targets write into folders relative to the data folder.
func startSyncer(cfg *Config, db *store.DB, logger *slog.Logger) (*upstream.Syncer, error) {
	var targets []upstream.Target
	for i, tc := range cfg.Upstream {
		if tc.Kind == "file" {
			tc.Dir = cfg.dataPath(tc.Dir)
		}
		t, err := upstream.New(tc)
		if err != nil {
			return nil, fmt.Errorf("upstream[%d] (%q): %w", i, tc.Name, err)
		}
		targets = append(targets, t)
	}
	secrets := map[string][]byte{}
	for _, p := range cfg.Catalog().Products {
		if len(p.ProvisioningSecret) > 0 {
			secrets[p.ID] = p.ProvisioningSecret
		}
	}
	s := upstream.NewSyncer(secretOutbox{DB: db, secrets: secrets}, targets, upstream.WithLogger(logger))
	s.Start()
	return s, nil
}

// secretOutbox hands the syncer chunks whose product carries its provisioning secret,
// which only the configuration holds, so targets can send each device's token.
type secretOutbox struct {
	*store.DB
	secrets map[string][]byte
}

// NextChunk implements upstream.Outbox.
func (o secretOutbox) NextChunk(ctx context.Context, target string, max int) (upstream.Chunk, bool, error) {
	c, ok, err := o.DB.NextChunk(ctx, target, max)
	c.Product.ProvisioningSecret = o.secrets[c.Product.ID]
	return c, ok, err
}

// runExport writes a batch's manifest, for factories whose registry upload is manual.
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	batch := fs.Int64("batch", 0, "batch id")
	format := fs.String("format", "csv", "csv or jsonl")
	out := fs.String("out", "", "file to write (default: standard output)")
	load := dataFlags(fs)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *batch < 1 {
		return errors.New("--batch is required")
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	path := filepath.Join(cfg.DataDir, "serialbox.db")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no database at %s (use --data or the config's data_dir)", path)
	}
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	b, err := db.Batch(ctx, *batch)
	if err != nil {
		return errors.New(serializer.ErrorMessage(err))
	}
	product := serializer.Product{ID: b.ProductID}
	for _, p := range cfg.Products {
		if p.ID == b.ProductID {
			product = serializer.Product{ID: p.ID, Name: p.Name, Model: p.Model}
		}
	}
	w := stdout
	var f *os.File
	if *out != "" {
		if f, err = os.Create(*out); err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	mw, err := upstream.NewManifestWriter(w, *format)
	if err != nil {
		return err
	}
	if err := db.EachDevice(ctx, b.ID, func(d serializer.Device) error { return mw.Write(d, product) }); err != nil {
		return err
	}
	if err := mw.Flush(); err != nil {
		return err
	}
	if f != nil {
		return f.Sync()
	}
	return nil
}
