package web

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"serialbox/serializer"
)

// pregenRequest is the body of POST /api/v1/batches/{id}/pregenerate.
type pregenRequest struct {
	Count  int                     `json:"count"`
	Labels serializer.PregenLabels `json:"labels"` // queue (default) or outside
}

func (s *Server) pregenerate(c echo.Context) error {
	id, err := batchID(c)
	if err != nil {
		return err
	}
	var in pregenRequest
	if err := decodeJSON(c, maxAPIBody, &in); err != nil {
		return err
	}
	if in.Labels == "" {
		in.Labels = serializer.PregenQueue
	}
	n, err := s.svc.Pregenerate(c.Request().Context(), id, in.Count, in.Labels, actor(c))
	if err != nil && n > 0 && serializer.ErrorCode(err) != serializer.EINTERNAL {
		// The chunks committed before the error stay issued: say how many.
		return &serializer.Error{Code: serializer.ErrorCode(err), Message: fmt.Sprintf(
			"%s (%d of %d UCIs were issued into batch %d before that; they stay issued, each with its label job)",
			serializer.ErrorMessage(err), n, in.Count, id)}
	}
	if err != nil {
		return err
	}
	b, err := s.svc.Batch(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"batch": b, "issued": n})
}
