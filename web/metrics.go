package web

import (
	"context"
	"fmt"
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

// Offsite reports what leaves the box: the database's replica and the event broker.
type Offsite interface {
	OffsiteStatus() OffsiteStatus
}

// OffsiteStatus is the state of the replica and the broker; nil parts are not configured.
type OffsiteStatus struct {
	Replica *ReplicaStatus
	Broker  *BrokerStatus
}

// ReplicaStatus is the state of the database's continuous replica.
type ReplicaStatus struct {
	URL       string        // where the replica is, without secrets
	Lag       time.Duration // how far the replica is behind the database
	Limit     time.Duration // a lag above this raises the banner
	Running   bool          // the replication process is running
	LastError string        // why it is not running or not syncing, if known
}

// LagText is the lag for a person: "0.4 s", "12 s", "3m20s".
func (r *ReplicaStatus) LagText() string {
	switch {
	case r.Lag < 10*time.Second:
		return fmt.Sprintf("%.1f s", r.Lag.Seconds())
	case r.Lag < time.Minute:
		return fmt.Sprintf("%d s", int(r.Lag.Seconds()))
	}
	return r.Lag.Round(time.Second).String()
}

// Behind reports whether the replica is further behind than its limit.
func (r *ReplicaStatus) Behind() bool { return !r.Running || r.Lag > r.Limit }

// BrokerStatus is the state of the connection to the event broker.
type BrokerStatus struct {
	URL       string
	Connected bool
	Published int64 // newest event the broker acknowledged
	Backlog   int64 // events waiting to be sent
	LastError string
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

	descReplicaLag     = prometheus.NewDesc("serialbox_replica_lag_seconds", "How far the database's replica is behind the database.", nil, nil)
	descReplicaUp      = prometheus.NewDesc("serialbox_replica_running", "1 while the replication process runs.", nil, nil)
	descBrokerUp       = prometheus.NewDesc("serialbox_mqtt_connected", "1 while the appliance is connected to the MQTT broker.", nil, nil)
	descEventBacklog   = prometheus.NewDesc("serialbox_events_backlog", "Events in the outbox not yet acknowledged by the MQTT broker.", nil, nil)
	descEventPublished = prometheus.NewDesc("serialbox_events_published_seq", "Sequence number of the newest event the MQTT broker acknowledged.", nil, nil)
)

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// collectOffsite reports the replica and the broker.
func (c stateCollector) collectOffsite(ch chan<- prometheus.Metric) {
	if c.s.opts.Offsite == nil {
		return
	}
	st := c.s.opts.Offsite.OffsiteStatus()
	if r := st.Replica; r != nil {
		ch <- prometheus.MustNewConstMetric(descReplicaLag, prometheus.GaugeValue, r.Lag.Seconds())
		ch <- prometheus.MustNewConstMetric(descReplicaUp, prometheus.GaugeValue, boolGauge(r.Running))
	}
	if b := st.Broker; b != nil {
		ch <- prometheus.MustNewConstMetric(descBrokerUp, prometheus.GaugeValue, boolGauge(b.Connected))
		ch <- prometheus.MustNewConstMetric(descEventBacklog, prometheus.GaugeValue, float64(b.Backlog))
		ch <- prometheus.MustNewConstMetric(descEventPublished, prometheus.GaugeValue, float64(b.Published))
	}
}

// stateCollector reads queue, printer, sync and database state at scrape time.
type stateCollector struct{ s *Server }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descJobs, descPrinter, descPrinted, descSync, descDBSize,
		descReplicaLag, descReplicaUp, descBrokerUp, descEventBacklog, descEventPublished} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := c.s
	c.collectOffsite(ch)
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

// readyDetails is the /readyz answer with the replica and the broker: the appliance
// is ready to issue either way (both are off the issuing path), and says how they are.
func readyDetails(st OffsiteStatus) map[string]any {
	out := map[string]any{"status": "ready"}
	if r := st.Replica; r != nil {
		d := map[string]any{"url": r.URL, "running": r.Running, "lag_seconds": r.Lag.Seconds(),
			"limit_seconds": r.Limit.Seconds(), "behind": r.Behind()}
		if r.LastError != "" {
			d["error"] = r.LastError
		}
		out["replica"] = d
	}
	if b := st.Broker; b != nil {
		d := map[string]any{"url": b.URL, "connected": b.Connected, "published_seq": b.Published, "backlog": b.Backlog}
		if b.LastError != "" {
			d["error"] = b.LastError
		}
		out["mqtt"] = d
	}
	return out
}
