package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"serialbox/serializer"
)

// LineData answers the line view's questions about a station's newest devices.
type LineData interface {
	RecentDevices(ctx context.Context, stationID string, limit int) ([]serializer.Device, error)
	IssuedSince(ctx context.Context, stationID string, t time.Time) (int, error)
}

// lineView is the line at a glance: every station with its printer, batch and newest devices.
type lineView struct {
	Stations []stationCard
	Offsite  OffsiteStatus // the replica and the event broker, when configured
}

// stationCard is one station on the line view.
type stationCard struct {
	Station   serializer.Station
	Product   serializer.Product
	Printer   *PrinterView
	Batch     *serializer.Batch
	PerHour   int
	Queue     map[serializer.JobState]int
	Attention []serializer.PrintJob // label jobs that failed or may not have printed
	Recent    []serializer.Device
}

// Waiting counts the station's labels waiting for or on their way to the printer.
func (c stationCard) Waiting() int {
	return c.Queue[serializer.JobQueued] + c.Queue[serializer.JobSending]
}

// alert is one line of the trouble banner: what is wrong and what to do.
type alert struct {
	Level string // fault or warn
	Title string
	Text  string
	Href  string
}

// words is a state in words and the colour class it is shown in.
type words struct {
	Text, Class string
}

// printerWords says a printer state in words, and how alarming it is.
func printerWords(state string) words {
	switch state {
	case serializer.PrinterReady:
		return words{"Ready", "ok"}
	case serializer.PrinterPaperOut:
		return words{"Paper out", "fault"}
	case serializer.PrinterHeadOpen:
		return words{"Head open", "fault"}
	case serializer.PrinterPaused:
		return words{"Paused", "warn"}
	case serializer.PrinterRibbonOut:
		return words{"Ribbon out", "fault"}
	case serializer.PrinterBufferFull:
		return words{"Busy", "warn"}
	case serializer.PrinterOffline:
		return words{"Offline", "fault"}
	case serializer.PrinterFaulted:
		return words{"Fault", "fault"}
	default:
		return words{"No status", "idle"}
	}
}

func deviceStateWords(s serializer.DeviceState) words {
	switch s {
	case serializer.DeviceIssued:
		return words{"label waiting", "warn"}
	case serializer.DeviceLabeled:
		return words{"label printed", "ok"}
	case serializer.DeviceVerified:
		return words{"verified", "ok"}
	case serializer.DeviceVoided:
		return words{"VOIDED", "fault"}
	}
	return words{string(s), "idle"}
}

func jobStateWords(s serializer.JobState) words {
	switch s {
	case serializer.JobQueued:
		return words{"waiting", "warn"}
	case serializer.JobSending:
		return words{"sending", "warn"}
	case serializer.JobPrinted:
		return words{"printed", "ok"}
	case serializer.JobFailed:
		return words{"failed", "fault"}
	case serializer.JobUncertain:
		return words{"may not have printed", "fault"}
	case serializer.JobCancelled:
		return words{"cancelled", "idle"}
	}
	return words{string(s), "idle"}
}

// rateWindow is how far back the units-per-hour figure looks.
const rateWindow = 15 * time.Minute

// recentDevices is how many of a station's newest devices the line view lists.
const recentDevices = 8

// lineSnapshot reads the line as it is now, and the trouble the banner shows (never
// nil, so that fillPage does not read it again).
func (s *Server) lineSnapshot(ctx context.Context) (lineView, []alert, error) {
	var (
		view   lineView
		alerts = []alert{}
	)
	open, err := s.svc.Batches(ctx, serializer.BatchFilter{State: serializer.BatchOpen})
	if err != nil {
		return view, nil, err
	}
	byStation := map[string]serializer.Batch{}
	for _, b := range open {
		byStation[b.StationID] = b
	}
	now := time.Now()
	for _, st := range s.svc.Catalog().Stations {
		card := stationCard{Station: st, Queue: map[serializer.JobState]int{}}
		productID := st.ProductID
		if b, ok := byStation[st.ID]; ok {
			card.Batch = &b
			productID = b.ProductID
		}
		if p, ok := s.svc.Product(productID); ok {
			card.Product = p
		}
		name := stationName(st)
		if s.opts.Printers != nil {
			if p, ok := s.opts.Printers.Printer(st.ID); ok {
				card.Printer = &p
				if w := printerWords(p.State); w.Class == "fault" || w.Class == "warn" {
					alerts = append(alerts, alert{Level: w.Class, Title: name + ": printer " + w.Text, Text: p.Message, Href: "/#station-" + st.ID})
				}
			}
		}
		if s.opts.Queue != nil {
			if card.Queue, err = s.opts.Queue.QueueCounts(ctx, st.ID); err != nil {
				return view, nil, err
			}
			if card.Queue[serializer.JobUncertain]+card.Queue[serializer.JobFailed] > 0 {
				jobs, err := s.opts.Queue.StationJobs(ctx, st.ID, 0)
				if err != nil {
					return view, nil, err
				}
				for _, j := range jobs {
					if j.State == serializer.JobUncertain || j.State == serializer.JobFailed {
						card.Attention = append(card.Attention, j)
					}
				}
				alerts = append(alerts, alert{Level: "fault", Title: fmt.Sprintf("%s: %s need a decision", name, count(len(card.Attention), "label", "labels")),
					Text: "Look at the printer: press Resend if the label did not come out, It printed if it is on the unit.", Href: "/#station-" + st.ID})
			}
		}
		if s.opts.Line != nil {
			if card.Recent, err = s.opts.Line.RecentDevices(ctx, st.ID, recentDevices); err != nil {
				return view, nil, err
			}
			n, err := s.opts.Line.IssuedSince(ctx, st.ID, now.Add(-rateWindow))
			if err != nil {
				return view, nil, err
			}
			card.PerHour = n * int(time.Hour/rateWindow)
		}
		if b := card.Batch; b != nil && !st.AutoBatch && b.Planned > 0 && b.Counts.Issued*10 >= b.Planned*9 {
			alerts = append(alerts, alert{Level: "warn", Title: fmt.Sprintf("%s: batch %d is nearly full", name, b.ID),
				Text: fmt.Sprintf("%d of %d issued. Close it and open the next batch when it is full.", b.Counts.Issued, b.Planned), Href: fmt.Sprintf("/batches/%d", b.ID)})
		}
		view.Stations = append(view.Stations, card)
	}
	syncAlerts, err := s.syncAlerts(ctx)
	if err != nil {
		return view, nil, err
	}
	if s.opts.Offsite != nil {
		view.Offsite = s.opts.Offsite.OffsiteStatus()
		alerts = append(alerts, offsiteAlerts(view.Offsite)...)
	}
	return view, append(alerts, syncAlerts...), nil
}

// syncAlerts reports the recent batches whose upstream registration is in trouble.
func (s *Server) syncAlerts(ctx context.Context) ([]alert, error) {
	if len(s.svc.SyncTargets()) == 0 {
		return nil, nil
	}
	closed, err := s.svc.Batches(ctx, serializer.BatchFilter{State: serializer.BatchClosed, Limit: 10})
	if err != nil {
		return nil, err
	}
	var out []alert
	for _, b := range closed {
		targets, err := s.svc.SyncStatus(ctx, b.ID)
		if err != nil {
			return nil, err
		}
		for _, t := range targets {
			href := fmt.Sprintf("/batches/%d", b.ID)
			switch {
			case t.Errors > 0:
				out = append(out, alert{Level: "fault", Title: fmt.Sprintf("Upstream %s refused %s of batch %d", t.Target, count(t.Errors, "device", "devices"), b.ID),
					Text: "Open the batch to see why, fix the cause, then press Sync again.", Href: href})
			case t.LastError != "" && t.State != "done":
				out = append(out, alert{Level: "warn", Title: fmt.Sprintf("Upstream %s: batch %d is not registered yet", t.Target, b.ID),
					Text: t.LastError + ". The appliance keeps trying; check the network if this stays.", Href: href})
			}
		}
	}
	return out, nil
}

func stationName(st serializer.Station) string {
	if st.Name != "" {
		return st.Name
	}
	return st.ID
}

// lineHome is the line view: every station at a glance, kept live by /events.
func (s *Server) lineHome(c echo.Context) error {
	view, alerts, err := s.lineSnapshot(c.Request().Context())
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "line", pageData{Title: "Line", Nav: "line", Alerts: alerts, Data: view})
}

// Live updates: how often the line is read, and how often an idle stream says it is alive.
const (
	eventsPoll      = time.Second
	eventsKeepAlive = 15 * time.Second
)

// lineFragments renders the parts of a page that live updates replace, from a
// snapshot of the line, for the stream's visitor (forms only for a logged-in one).
func (s *Server) lineFragments(c echo.Context, view lineView, alerts []alert) (map[string]string, error) {
	d := pageData{Alerts: alerts, Data: view}
	s.fillPage(c, &d)
	out := map[string]string{}
	for _, part := range []string{"banner", "line"} {
		var buf bytes.Buffer
		if err := s.ui.partials.ExecuteTemplate(&buf, part, d); err != nil {
			return nil, err
		}
		out[part] = buf.String()
	}
	return out, nil
}

// lineFeed reads the line once per eventsPoll while live streams are open and hands
// the same snapshot to all of them, so that a hundred wall screens cost one read.
type lineFeed struct {
	s *Server

	mu      sync.Mutex
	streams int                // live streams served now
	snap    *lineSnap          // the newest snapshot; nil until the first is read
	fresh   chan struct{}      // closed when a newer snapshot replaces snap
	stop    context.CancelFunc // ends the reading loop; nil while no stream is open
}

// lineSnap is the line as read at one moment.
type lineSnap struct {
	view   lineView
	alerts []alert
	err    error
}

func newLineFeed(s *Server) *lineFeed { return &lineFeed{s: s, fresh: make(chan struct{})} }

// join admits one more stream and reports whether it may go ahead: false when
// MaxEventStreams are open already.
func (f *lineFeed) join() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.streams >= f.s.opts.MaxEventStreams {
		return false
	}
	f.streams++
	if f.stop == nil {
		ctx, cancel := context.WithCancel(context.Background())
		f.stop, f.snap = cancel, nil // a snapshot from before the pause is stale
		go f.run(ctx)
	}
	return true
}

// leave lets a stream go; the last one to leave stops the reading.
func (f *lineFeed) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.streams--
	if f.streams == 0 && f.stop != nil {
		f.stop()
		f.stop = nil
	}
}

// current returns the newest snapshot (nil before the first) and a channel that is
// closed when a newer one is out.
func (f *lineFeed) current() (*lineSnap, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap, f.fresh
}

// run reads the line at once and then every eventsPoll until ctx ends.
func (f *lineFeed) run(ctx context.Context) {
	tick := time.NewTicker(eventsPoll)
	defer tick.Stop()
	var failing bool
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		view, alerts, err := f.s.lineSnapshot(rctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil && !failing {
			f.s.logger.Error("live line view: reading the line", "err", err)
		}
		failing = err != nil
		f.mu.Lock()
		f.snap = &lineSnap{view: view, alerts: alerts, err: err}
		close(f.fresh)
		f.fresh = make(chan struct{})
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// events streams the line view and the trouble banner as Server-Sent Events: a
// snapshot whenever it changes, a comment now and then to keep the connection open.
// At most MaxEventStreams are served at once; one more is answered 503.
func (s *Server) events(c echo.Context) error {
	if !s.feed.join() {
		c.Response().Header().Set("Retry-After", "30")
		return serializer.Errorf(serializer.EUNAVAILABLE, "%d live line views are open, the most this appliance serves (max_event_streams): close one on another screen, or raise the limit", s.opts.MaxEventStreams)
	}
	defer s.feed.leave()
	w := c.Response()
	// The stream outlives the server's write timeout, which is meant for requests.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	w.Flush()

	ctx := c.Request().Context()
	alive := time.NewTicker(eventsKeepAlive)
	defer alive.Stop()
	var last []byte
	snap, fresh := s.feed.current()
	for {
		if snap != nil && snap.err == nil {
			// A session may end while the stream runs; its forms must then go.
			c.Set(ctxOperator, nil)
			c.Set(ctxSession, nil)
			s.loadSession(c)
			frags, err := s.lineFragments(c, snap.view, snap.alerts)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				s.logger.Error("live line view: rendering", "err", err)
			} else if data, _ := json.Marshal(frags); !bytes.Equal(data, last) {
				last = data
				if _, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", data); err != nil {
					return nil
				}
				w.Flush()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return nil
		case <-alive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			w.Flush()
		case <-fresh:
			snap, fresh = s.feed.current()
		}
	}
}

// offsiteAlerts reports a replica that fell behind and a broker the appliance lost.
func offsiteAlerts(st OffsiteStatus) []alert {
	var out []alert
	if r := st.Replica; r != nil && r.Behind() {
		text := fmt.Sprintf("The off-box copy of the registry is %s behind (limit %s): if this box dies now, the devices issued since are lost. Check the network and %s.",
			r.Lag.Round(time.Second), r.Limit, r.URL)
		if !r.Running {
			text = "Replication is not running: " + r.LastError
		}
		out = append(out, alert{Level: "fault", Title: "Replica behind", Text: text, Href: "/readyz"})
	}
	if b := st.Broker; b != nil && !b.Connected {
		out = append(out, alert{Level: "warn", Title: "MQTT broker not connected",
			Text: fmt.Sprintf("%s: %d events wait in the outbox and go out when it is back.", b.URL, b.Backlog), Href: "/readyz"})
	}
	return out
}
