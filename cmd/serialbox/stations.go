package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"serialbox/label"
	"serialbox/serializer"
	"serialbox/station"
	"serialbox/store"
	"serialbox/web"
)

// sampleUCI fills labels rendered only to check a configuration.
var sampleUCI = serializer.MustParse("04HMASW9NF6YY093")

// labels picks and fills label templates from the configuration.
type labels struct {
	templates label.Templates
	products  map[string]ProductConfig
}

func newLabels(cfg *Config) *labels {
	l := &labels{templates: cfg.Templates, products: map[string]ProductConfig{}}
	for _, p := range cfg.Products {
		l.products[p.ID] = p
	}
	return l
}

// template returns the template for a job kind at a printer: the printer's template,
// else the product's, else the built-in one; always at the printer's resolution.
func (l *labels) template(kind serializer.JobKind, productID string, printer station.PrinterConfig) (label.Template, error) {
	p := l.products[productID]
	name, t := p.Template, label.DefaultDevice()
	if kind == serializer.JobBatch {
		name, t = p.BatchTemplate, label.DefaultBatch()
	} else if printer.Template != "" {
		name = printer.Template
	}
	if name != "" {
		var err error
		if t, err = l.templates.Lookup(name); err != nil {
			return t, err
		}
	}
	if printer.DPI != 0 {
		t.DPI = printer.DPI
	}
	return t, nil
}

// check renders a sample label of every product on every station's printer, so that a
// template or a product name the printer cannot print is refused at start-up.
func (l *labels) check(cfg *Config) error {
	for i, st := range cfg.Stations {
		for _, p := range cfg.Products {
			for _, kind := range []serializer.JobKind{serializer.JobDevice, serializer.JobBatch} {
				t, err := l.template(kind, p.ID, st.Printer)
				if err == nil {
					_, err = label.Render(st.Printer.Language, t, sampleData(p))
				}
				if err != nil {
					return fmt.Errorf("stations[%d].printer (station %q, product %q, %s label): %s", i, st.ID, p.ID, kind, serializer.ErrorMessage(err))
				}
			}
		}
	}
	return nil
}

func sampleData(p ProductConfig) label.Data {
	return label.Data{
		UCI: sampleUCI, Product: serializer.Product{ID: p.ID, Name: p.Name, Model: p.Model},
		BatchID: 1, StationID: "station", Date: time.Now(), Count: 1,
	}
}

// renderer turns a station's label jobs into printer bytes.
func (l *labels) renderer(db *store.DB, st StationConfig) station.Renderer {
	preview := st.Printer.Transport == station.TransportFile
	return func(ctx context.Context, job serializer.PrintJob) (station.Job, error) {
		b, err := db.Batch(ctx, job.BatchID)
		if err != nil {
			return station.Job{}, err
		}
		p := l.products[b.ProductID]
		d := label.Data{
			Product:   serializer.Product{ID: b.ProductID, Name: p.Name, Model: p.Model},
			BatchID:   b.ID,
			StationID: b.StationID,
			Date:      b.OpenedAt,
			Count:     b.Counts.Issued - b.Counts.Voided,
		}
		name := fmt.Sprintf("batch-%d-job-%d", b.ID, job.ID)
		if job.Kind == serializer.JobDevice {
			if job.UCI == nil {
				return station.Job{}, errors.New("device label job without a UCI")
			}
			dev, err := db.Device(ctx, *job.UCI)
			if err != nil {
				return station.Job{}, err
			}
			d.UCI, d.Date, d.StationID = dev.UCI, dev.CreatedAt, dev.StationID
			name = dev.UCI.String()
			if job.Reprint {
				name = fmt.Sprintf("%s-reprint-%d", name, job.ID)
			}
		}
		t, err := l.template(job.Kind, b.ProductID, st.Printer)
		if err != nil {
			return station.Job{}, err
		}
		out := station.Job{ID: job.ID, Name: name}
		if out.Data, err = label.Render(st.Printer.Language, t, d); err != nil {
			return station.Job{}, err
		}
		if preview {
			if out.Preview, err = label.Render(string(label.FormatPNG), t, d); err != nil {
				return station.Job{}, err
			}
		}
		return out, nil
	}
}

// startStations starts one print worker per station. A printer that cannot be found
// does not stop the appliance: its station's worker keeps retrying and shows the fault.
func startStations(cfg *Config, db *store.DB, pool *station.Pool, logger *slog.Logger) error {
	l := newLabels(cfg)
	for _, st := range cfg.Stations {
		w, err := startStation(cfg, l, st, db, logger)
		if err != nil {
			return err
		}
		pool.Add(w)
	}
	return nil
}

// startStation starts the print worker of one station.
func startStation(cfg *Config, l *labels, st StationConfig, db *store.DB, logger *slog.Logger) (*station.Worker, error) {
	w, err := newStationWorker(cfg, l, st, db, logger, true)
	if err != nil {
		return nil, err
	}
	w.Start()
	return w, nil
}

// newStationWorker returns the print worker of one station, not started. With probe
// the printer is looked for first, and a printer not found is logged; without, the
// transport reaches for the printer at the first label only, as a reload needs while
// the worker it replaces still holds the printer.
func newStationWorker(cfg *Config, l *labels, st StationConfig, db *store.DB, logger *slog.Logger, probe bool) (*station.Worker, error) {
	pc := st.Printer
	if pc.Transport == station.TransportFile {
		pc.Dir = cfg.dataPath(pc.Dir)
	}
	log := logger.With("component", "station")
	var t station.Transport
	err := station.ErrUnreachable
	if probe {
		t, err = station.Open(pc)
	}
	if err != nil {
		if !errors.Is(err, station.ErrUnreachable) {
			return nil, fmt.Errorf("station %q: %w", st.ID, err)
		}
		if probe {
			log.Error("printer not found; labels wait in the queue until it is", "station", st.ID, "transport", pc.Transport, "err", err)
		}
		if t, err = station.New(pc); err != nil {
			return nil, fmt.Errorf("station %q: %w", st.ID, err)
		}
	}
	return station.NewWorker(st.ID, db, l.renderer(db, st), t,
		station.WithLogger(log), station.WithStatusInterval(time.Duration(pc.StatusInterval))), nil
}

// printerViews shows the station workers' printer state to the web package.
type printerViews struct {
	pool       *station.Pool
	transports *sync.Map // station id → transport name; updated on reload
}

func newPrinterViews(cfg *Config, pool *station.Pool) printerViews {
	v := printerViews{pool: pool, transports: &sync.Map{}}
	for _, st := range cfg.Stations {
		v.transports.Store(st.ID, st.Printer.Transport)
	}
	return v
}

// Printer implements web.Printers.
func (v printerViews) Printer(stationID string) (web.PrinterView, bool) {
	w, ok := v.pool.Worker(stationID)
	if !ok {
		return web.PrinterView{}, false
	}
	st, stats := w.Status(), w.Stats()
	t, _ := v.transports.Load(stationID)
	transport, _ := t.(string)
	return web.PrinterView{
		Transport: transport, State: st.State, Message: st.Message,
		LabelsRemaining: st.LabelsRemaining, CheckedAt: st.CheckedAt,
		Sending: stats.Sending, Printed: stats.Printed, Failed: stats.Failed, Uncertain: stats.Uncertain,
		Retries: stats.Retries, RetryAt: stats.RetryAt, LastError: stats.LastError,
		LastErrorAt: stats.LastErrorAt, LastPrintedAt: stats.LastPrintedAt,
	}, true
}
