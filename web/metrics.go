package web

import (
	"context"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"serialbox/serializer"
)

// Stats reports state that /metrics reads at scrape time.
type Stats interface {
	// SyncStates counts devices waiting for or refused by each upstream target, by state.
	SyncStates(ctx context.Context) (map[string]map[string]int, error)
	// DBSize returns the bytes the database files take on disk.
	DBSize() (int64, error)
}

// metrics are the appliance's Prometheus metrics, in a registry of the Server's own.
type metrics struct {
	reg     *prometheus.Registry
	issued  *prometheus.CounterVec
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "serialbox_ucis_issued_total", Help: "New UCIs issued to jigs (not repeats for a known identity).",
		}, []string{"station", "product"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "serialbox_serialize_duration_seconds", Help: "Time to answer a jig's serialize request, errors included.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}, []string{"endpoint"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "serialbox_errors_total", Help: "Requests refused or failed, by error code.",
		}, []string{"code"}),
	}
	m.reg.MustRegister(m.issued, m.latency, m.errors, stateCollector{s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// timed records how long a jig endpoint took to answer.
func (s *Server) timed(endpoint string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			s.metrics.latency.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
			return err
		}
	}
}

func (s *Server) metricsHandler() echo.HandlerFunc {
	h := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorLog: nil, Timeout: 10 * time.Second})
	return echo.WrapHandler(h)
}

var (
	descJobs    = prometheus.NewDesc("serialbox_label_jobs", "Label jobs waiting or needing an operator, by station and state.", []string{"station", "state"}, nil)
	descPrinter = prometheus.NewDesc("serialbox_printer_state", "1 for the state each station's printer is in, 0 for the others.", []string{"station", "state"}, nil)
	descPrinted = prometheus.NewDesc("serialbox_labels_printed_total", "Labels the station's printer took whole since start.", []string{"station"}, nil)
	descSync    = prometheus.NewDesc("serialbox_sync_devices", "Devices waiting for (pending, sending) or refused by (error) an upstream target.", []string{"target", "state"}, nil)
	descDBSize  = prometheus.NewDesc("serialbox_database_bytes", "Bytes the database files take on disk.", nil, nil)
)

// stateCollector reads queue, printer, sync and database state at scrape time.
type stateCollector struct{ s *Server }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descJobs, descPrinter, descPrinted, descSync, descDBSize} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := c.s
	for _, st := range s.svc.Catalog().Stations {
		if s.opts.Queue != nil {
			counts, err := s.opts.Queue.QueueCounts(ctx, st.ID)
			if err != nil {
				ch <- prometheus.NewInvalidMetric(descJobs, err)
			}
			for _, state := range []serializer.JobState{serializer.JobQueued, serializer.JobSending, serializer.JobFailed, serializer.JobUncertain} {
				ch <- prometheus.MustNewConstMetric(descJobs, prometheus.GaugeValue, float64(counts[state]), st.ID, string(state))
			}
		}
		if s.opts.Printers != nil {
			if p, ok := s.opts.Printers.Printer(st.ID); ok {
				for _, state := range serializer.PrinterStates {
					v := 0.0
					if p.State == state {
						v = 1
					}
					ch <- prometheus.MustNewConstMetric(descPrinter, prometheus.GaugeValue, v, st.ID, state)
				}
				ch <- prometheus.MustNewConstMetric(descPrinted, prometheus.CounterValue, float64(p.Printed), st.ID)
			}
		}
	}
	if s.opts.Stats == nil {
		return
	}
	if states, err := s.opts.Stats.SyncStates(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(descSync, err)
	} else {
		for target, byState := range states {
			for _, state := range []string{"pending", "sending", "error"} {
				ch <- prometheus.MustNewConstMetric(descSync, prometheus.GaugeValue, float64(byState[state]), target, state)
			}
		}
	}
	if n, err := s.opts.Stats.DBSize(); err != nil {
		ch <- prometheus.NewInvalidMetric(descDBSize, err)
	} else {
		ch <- prometheus.MustNewConstMetric(descDBSize, prometheus.GaugeValue, float64(n))
	}
}
