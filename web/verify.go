package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"serialbox/serializer"
)

// verify marks a device verified after its label was scanned on the finished unit.
// The body may name the batch (or the station) the unit must belong to; an empty
// body checks against the open batch of the device's own station.
func (s *Server) verify(c echo.Context) error {
	uci, err := uciParam(c)
	if err != nil {
		return err
	}
	var in serializer.VerifyRequest
	if err := decodeJSON(c, maxAPIBody, &in); err != nil {
		return err
	}
	in.StationID = strings.TrimSpace(in.StationID)
	d, err := s.svc.Verify(c.Request().Context(), uci, in, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}
