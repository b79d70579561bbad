package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"serialbox/serializer"
)

// deviceResponse is a device with what a person looking it up wants beside it.
type deviceResponse struct {
	Device    serializer.Device     `json:"device"`
	Display   string                `json:"display"` // grouped form, as on the label
	Batch     serializer.Batch      `json:"batch"`
	Product   serializer.Product    `json:"product"`
	LabelJobs []serializer.PrintJob `json:"label_jobs"`
}

// uciParam parses the {uci} path parameter in any form Parse accepts.
func uciParam(c echo.Context) (serializer.UCI, error) {
	raw, err := url.PathUnescape(c.Param("uci"))
	if err != nil {
		raw = c.Param("uci")
	}
	return serializer.Parse(raw)
}

func (s *Server) getDevice(c echo.Context) error {
	uci, err := uciParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	d, err := s.svc.Device(ctx, uci)
	if err != nil {
		return err
	}
	b, err := s.svc.Batch(ctx, d.BatchID)
	if err != nil {
		return err
	}
	jobs, err := s.svc.PrintJobs(ctx, uci)
	if err != nil {
		return err
	}
	p, ok := s.svc.Product(d.ProductID)
	if !ok {
		p = serializer.Product{ID: d.ProductID}
	}
	if jobs == nil {
		jobs = []serializer.PrintJob{}
	}
	return c.JSON(http.StatusOK, deviceResponse{Device: d, Display: d.UCI.Grouped(), Batch: b, Product: p, LabelJobs: jobs})
}

func (s *Server) listBatches(c echo.Context) error {
	f := serializer.BatchFilter{StationID: c.QueryParam("station")}
	switch st := serializer.BatchState(c.QueryParam("state")); st {
	case "", serializer.BatchOpen, serializer.BatchClosed:
		f.State = st
	default:
		return serializer.Errorf(serializer.EINVALID, "state %q is not open or closed", st)
	}
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return serializer.Errorf(serializer.EINVALID, "limit %q is not a number from 1 to 1000", l)
		}
		f.Limit = n
	}
	batches, err := s.svc.Batches(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"batches": batches})
}

func (s *Server) openBatch(c echo.Context) error {
	var in serializer.OpenBatchRequest
	if err := decodeJSON(c, maxAPIBody, &in); err != nil {
		return err
	}
	in.StationID, in.ProductID = strings.TrimSpace(in.StationID), strings.TrimSpace(in.ProductID)
	b, err := s.svc.OpenBatch(c.Request().Context(), in, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, b)
}

func (s *Server) getBatch(c echo.Context) error {
	id, err := batchID(c)
	if err != nil {
		return err
	}
	b, err := s.svc.Batch(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}

func (s *Server) closeBatch(c echo.Context) error {
	id, err := batchID(c)
	if err != nil {
		return err
	}
	var in struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(c, maxAPIBody, &in); err != nil {
		return err
	}
	b, err := s.svc.CloseBatch(c.Request().Context(), id, actor(c), strings.TrimSpace(in.Reason))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}

func batchID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, serializer.Errorf(serializer.EINVALID, "batch id %q is not a positive number", c.Param("id"))
	}
	return id, nil
}
