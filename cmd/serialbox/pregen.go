package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"serialbox/label"
	"serialbox/serializer"
	"serialbox/serializer/upstream"
	"serialbox/store"
)

// maxSheetLabels bounds a PDF sheet run: the labels are laid out in memory.
const maxSheetLabels = 100_000

// runPregen issues UCIs in bulk into an open batch for pre-printed label runs and
// unique-firmware builds, optionally writing their manifest and PDF label sheets.
func runPregen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pregen", flag.ContinueOnError)
	batch := fs.Int64("batch", 0, "open batch to issue into")
	count := fs.Int("count", 0, "how many UCIs")
	labels := fs.String("labels", "queue", "queue: label jobs for the station's printer; outside: labels printed elsewhere (e.g. --sheet)")
	manifest := fs.String("manifest", "", "also write the batch's manifest (CSV) to this file")
	sheet := fs.String("sheet", "", "also write the new devices' labels as PDF sheets to this file")
	paper := fs.String("paper", "A4", "sheet paper: A4 or Letter")
	columns := fs.Int("columns", 3, "labels across a sheet")
	rows := fs.Int("rows", 8, "labels down a sheet")
	load := dataFlags(fs)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *batch < 1 || *count < 1 {
		return errors.New("--batch and --count are required")
	}
	if *sheet != "" && *count > maxSheetLabels {
		return fmt.Errorf("--sheet: at most %d labels per run (asked for %d)", maxSheetLabels, *count)
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	db, err := store.Open(ctx, filepath.Join(cfg.DataDir, "serialbox.db"), store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	svc := serializer.NewService(db, nil)
	if err := svc.SetCatalog(ctx, cfg.Catalog()); err != nil {
		return err
	}
	before, err := db.Batch(ctx, *batch)
	if err != nil {
		return errors.New(serializer.ErrorMessage(err))
	}
	start := time.Now()
	n, err := svc.Pregenerate(ctx, *batch, *count, serializer.PregenLabels(*labels), "cli:pregen")
	if err != nil {
		return fmt.Errorf("%s (%d UCIs were issued before that)", serializer.ErrorMessage(err), n)
	}
	fmt.Fprintf(stdout, "issued %d UCIs into batch %d in %v\n", n, *batch, time.Since(start).Round(time.Millisecond))

	product, _ := svc.Product(before.ProductID)
	if *manifest != "" {
		if err := writeManifest(ctx, db, *batch, product, *manifest); err != nil {
			return err
		}
	}
	if *sheet != "" {
		if err := writeSheet(ctx, db, &cfg, before, product, *sheet, label.Sheet{Paper: *paper, Columns: *columns, Rows: *rows}); err != nil {
			return err
		}
	}
	return nil
}

func writeManifest(ctx context.Context, db *store.DB, batchID int64, p serializer.Product, path string) error {
	// Claim IDs let whoever holds them claim the devices: the appliance's user only.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	mw, err := upstream.NewManifestWriter(f, upstream.FormatCSV)
	if err != nil {
		return err
	}
	if err := db.EachDevice(ctx, batchID, func(d serializer.Device) error { return mw.Write(d, p) }); err != nil {
		return err
	}
	if err := mw.Flush(); err != nil {
		return err
	}
	return f.Sync()
}

// writeSheet lays out the labels of the devices issued after the batch's earlier ones.
func writeSheet(ctx context.Context, db *store.DB, cfg *Config, before serializer.Batch, p serializer.Product, path string, sheet label.Sheet) error {
	var printer = cfg.Stations[0].Printer
	for _, st := range cfg.Stations {
		if st.ID == before.StationID {
			printer = st.Printer
		}
	}
	t, err := newLabels(cfg).template(serializer.JobDevice, p.ID, printer)
	if err != nil {
		return err
	}
	var data []label.Data
	seen := 0
	err = db.EachDevice(ctx, before.ID, func(d serializer.Device) error {
		seen++
		if seen > before.Counts.Issued {
			data = append(data, label.Data{UCI: d.UCI, Product: p, BatchID: d.BatchID, StationID: d.StationID, Date: d.CreatedAt})
		}
		return nil
	})
	if err != nil {
		return err
	}
	pdf, err := label.PDFSheet(t, sheet, data)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pdf, 0o600)
}
