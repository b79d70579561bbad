package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"serialbox/serializer"
)

// PrinterView is what the appliance knows about a station's printer right now.
type PrinterView struct {
	Transport       string    `json:"transport"`
	State           string    `json:"state"`   // ready, paper_out, head_open, paused, ribbon_out, buffer_full, offline, faulted, unknown
	Message         string    `json:"message"` // in the operator's words, with what to do
	LabelsRemaining int       `json:"labels_remaining,omitempty"`
	CheckedAt       time.Time `json:"checked_at,omitzero"`
	Sending         bool      `json:"sending"`
	Printed         uint64    `json:"printed"`   // since start
	Failed          uint64    `json:"failed"`    // since start
	Uncertain       uint64    `json:"uncertain"` // since start
	Retries         uint64    `json:"retries"`   // since start
	RetryAt         time.Time `json:"retry_at,omitzero"`
	LastError       string    `json:"last_error,omitempty"`
	LastErrorAt     time.Time `json:"last_error_at,omitzero"`
	LastPrintedAt   time.Time `json:"last_printed_at,omitzero"`
}

// Printers reports the printer of each station.
type Printers interface {
	Printer(stationID string) (PrinterView, bool)
}

// LabelQueue is the durable label-job queue as the operator sees it.
type LabelQueue interface {
	QueueCounts(ctx context.Context, stationID string) (map[serializer.JobState]int, error)
	StationJobs(ctx context.Context, stationID string, limit int) ([]serializer.PrintJob, error)
}

// stationResponse is a station as the operator API shows it.
type stationResponse struct {
	serializer.Station
	Batch   *serializer.Batch           `json:"batch"`             // the open batch, if any
	Printer *PrinterView                `json:"printer,omitempty"` // nil when printers are not wired
	Queue   map[serializer.JobState]int `json:"queue"`             // label jobs waiting or needing an operator
}

func (s *Server) listStations(c echo.Context) error {
	ctx := c.Request().Context()
	open, err := s.svc.Batches(ctx, serializer.BatchFilter{State: serializer.BatchOpen})
	if err != nil {
		return err
	}
	byStation := map[string]serializer.Batch{}
	for _, b := range open {
		byStation[b.StationID] = b
	}
	out := []stationResponse{}
	for _, st := range s.svc.Catalog().Stations {
		r := stationResponse{Station: st, Queue: map[serializer.JobState]int{}}
		if b, ok := byStation[st.ID]; ok {
			r.Batch = &b
		}
		if s.opts.Printers != nil {
			if p, ok := s.opts.Printers.Printer(st.ID); ok {
				r.Printer = &p
			}
		}
		if s.opts.Queue != nil {
			if r.Queue, err = s.opts.Queue.QueueCounts(ctx, st.ID); err != nil {
				return err
			}
		}
		out = append(out, r)
	}
	return c.JSON(http.StatusOK, map[string]any{"stations": out})
}

func (s *Server) stationJobs(c echo.Context) error {
	id := c.Param("id")
	if _, ok := s.svc.Station(id); !ok {
		return serializer.Errorf(serializer.EUNKNOWNSTATION, "unknown station %q", id)
	}
	if s.opts.Queue == nil {
		return c.JSON(http.StatusOK, map[string]any{"jobs": []serializer.PrintJob{}})
	}
	jobs, err := s.opts.Queue.StationJobs(c.Request().Context(), id, 0)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"jobs": jobs})
}

// labelRequest is the body of the reprint, void, batch label and resolve calls.
type labelRequest struct {
	Reason  string               `json:"reason"`
	Station string               `json:"station"`
	Action  serializer.JobAction `json:"action"`
}

func (s *Server) reprint(c echo.Context) error {
	uci, err := uciParam(c)
	if err != nil {
		return err
	}
	var in labelRequest
	if err := decodeJSON(c, maxAPIBody, &in); err != nil {
		return err
	}
	j, err := s.svc.Reprint(c.Request().Context(), uci, strings.TrimSpace(in.Station), actor(c), in.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, j)
}

func (s *Server) void(c echo.Context) error {
	uci, err := uciParam(c)
	if err != nil {
		return err
	}
	var in labelRequest
	if err := decodeJSON(c, maxAPIBody, &in); err != nil {
		return err
	}
	d, err := s.svc.Void(c.Request().Context(), uci, actor(c), in.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) batchLabel(c echo.Context) error {
	id, err := batchID(c)
	if err != nil {
		return err
	}
	var in labelRequest
	if err := decodeJSON(c, maxAPIBody, &in); err != nil {
		return err
	}
	j, err := s.svc.BatchLabel(c.Request().Context(), id, strings.TrimSpace(in.Station), actor(c), in.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, j)
}

func (s *Server) resolveJob(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return serializer.Errorf(serializer.EINVALID, "label job id %q is not a positive number", c.Param("id"))
	}
	var in labelRequest
	if err := decodeJSON(c, maxAPIBody, &in); err != nil {
		return err
	}
	j, err := s.svc.ResolveJob(c.Request().Context(), id, in.Action, actor(c), in.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, j)
}

func (s *Server) listAudit(c echo.Context) error {
	limit := 100
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return serializer.Errorf(serializer.EINVALID, "limit %q is not a number from 1 to 1000", l)
		}
		limit = n
	}
	entries, err := s.svc.Audit(c.Request().Context(), c.QueryParam("subject"), limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"audit": entries})
}
