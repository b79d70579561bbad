package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"serialbox/label"
	"serialbox/serializer"
	"serialbox/station"
)

// runLabel writes one rendered label to stdout, for previews and integrations.
func runLabel(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("label", flag.ContinueOnError)
	uciFlag := fs.String("uci", "", "claim ID to print (any typed form)")
	productID := fs.String("product", "", "product id (default: the first configured product)")
	batch := fs.Int64("batch", 0, "batch id printed on the label")
	format := fs.String("format", "zpl", "output format: zpl, tspl, pdf or png")
	kind := fs.String("kind", "device", "label kind: device or batch")
	count := fs.Int("count", 0, "device count (batch labels)")
	configPath := fs.String("config", configFromEnv(), "configuration file (TOML); none = the built-in demo")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath, os.Getenv)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	f, err := label.ParseFormat(*format)
	if err != nil {
		return err
	}
	d := label.Data{BatchID: *batch, Date: time.Now(), Count: *count}
	jobKind := serializer.JobKind(*kind)
	switch jobKind {
	case serializer.JobDevice:
		if *uciFlag == "" {
			return fmt.Errorf("--uci is required for a device label")
		}
		if d.UCI, err = serializer.Parse(*uciFlag); err != nil {
			return err
		}
	case serializer.JobBatch:
		if *batch == 0 {
			return fmt.Errorf("--batch is required for a batch label")
		}
	default:
		return fmt.Errorf("--kind %q: must be device or batch", *kind)
	}
	p := cfg.Products[0]
	if *productID != "" {
		found := false
		for _, cp := range cfg.Products {
			if cp.ID == *productID {
				p, found = cp, true
			}
		}
		if !found {
			return fmt.Errorf("--product: unknown product %q", *productID)
		}
	}
	d.Product = serializer.Product{ID: p.ID, Name: p.Name, Model: p.Model}
	var printer station.PrinterConfig
	for _, st := range cfg.Stations {
		if st.Product == p.ID {
			printer = st.Printer
			break
		}
	}
	t, err := newLabels(&cfg).template(jobKind, p.ID, printer)
	if err != nil {
		return err
	}
	out, err := label.Render(string(f), t, d)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}
