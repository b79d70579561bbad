package web

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"serialbox/serializer"
	"serialbox/serializer/upstream"
)

// syncRequest is the body of POST /api/v1/batches/{id}/sync.
type syncRequest struct {
	Targets []string `json:"targets"` // none: every configured target
	Reason  string   `json:"reason"`
}

func (s *Server) requestSync(c echo.Context) error {
	id, err := batchID(c)
	if err != nil {
		return err
	}
	var in syncRequest
	if err := decodeJSON(c, maxAPIBody, &in); err != nil {
		return err
	}
	queued, err := s.svc.RequestSync(c.Request().Context(), id, in.Targets, actor(c), in.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"batch": id, "queued": queued})
}

func (s *Server) syncStatus(c echo.Context) error {
	id, err := batchID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := s.svc.Batch(ctx, id); err != nil {
		return err
	}
	targets, err := s.svc.SyncStatus(ctx, id)
	if err != nil {
		return err
	}
	failures, err := s.svc.SyncFailures(ctx, id, 100)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"batch": id, "targets": targets, "failures": failures})
}

// manifest streams a batch's devices as CSV or JSON lines, one row at a time.
func (s *Server) manifest(c echo.Context) error {
	id, err := batchID(c)
	if err != nil {
		return err
	}
	format := strings.ToLower(c.QueryParam("format"))
	if format == "" {
		format = "csv"
	}
	ctx := c.Request().Context()
	b, err := s.svc.Batch(ctx, id)
	if err != nil {
		return err
	}
	p, ok := s.svc.Product(b.ProductID)
	if !ok {
		p = serializer.Product{ID: b.ProductID}
	}
	w := c.Response()
	mw, err := upstream.NewManifestWriter(w, format)
	if err != nil {
		return serializer.Errorf(serializer.EINVALID, "format %q: must be csv or jsonl", format)
	}
	contentType := "text/csv; charset=utf-8"
	if format == "jsonl" {
		contentType = "application/x-ndjson"
	}
	w.Header().Set(echo.HeaderContentType, contentType)
	w.Header().Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="batch-%d.%s"`, id, format))
	w.WriteHeader(http.StatusOK)
	err = s.svc.EachDevice(ctx, id, func(d serializer.Device) error { return mw.Write(d, p) })
	if err == nil {
		err = mw.Flush()
	}
	if err != nil {
		// The status line is gone; cut the body short so the client sees a broken download.
		s.logger.Error("manifest export broke off", "batch", id, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}
