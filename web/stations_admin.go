package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"serialbox/serializer"
)

// rotateToken gives a station a new jig token and answers it once.
func (s *Server) rotateToken(c echo.Context) error {
	id := c.Param("id")
	token, err := s.svc.RotateStationToken(c.Request().Context(), id, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]string{"station": id, "token": token})
}

// stationRow is one station on the supervisors' stations page.
type stationRow struct {
	ID, Name, ProductID string
	Printer             string // in words
	Token               string // how jig requests are checked
}

type stationsData struct {
	Stations     []stationRow
	NewToken     string // shown once, right after a rotation
	TokenStation string
}

func (s *Server) stationsPage(c echo.Context) error {
	return s.renderStations(c, http.StatusOK, stationsData{})
}

func (s *Server) renderStations(c echo.Context, status int, d stationsData) error {
	for _, st := range s.svc.Catalog().Stations {
		row := stationRow{ID: st.ID, Name: st.Name, ProductID: st.ProductID, Printer: "not wired", Token: "none: any jig on the LAN may serialize"}
		switch {
		case s.svc.TokenRotated(st.ID):
			row.Token = "rotated from this page"
		case st.Token != "":
			row.Token = "from the configuration file"
		}
		if s.opts.Printers != nil {
			if p, ok := s.opts.Printers.Printer(st.ID); ok {
				row.Printer = p.Transport + " · " + p.Message
			}
		}
		d.Stations = append(d.Stations, row)
	}
	return s.render(c, status, "stations", pageData{Title: "Stations", Nav: "stations", Data: d})
}

func (s *Server) rotateTokenForm(c echo.Context) error {
	id := c.Param("id")
	token, err := s.svc.RotateStationToken(c.Request().Context(), id, actor(c))
	if err != nil {
		if serializer.ErrorCode(err) == serializer.EINTERNAL {
			return err
		}
		return s.renderStations(c, statusOf(serializer.ErrorCode(err)), stationsData{})
	}
	return s.renderStations(c, http.StatusOK, stationsData{NewToken: token, TokenStation: id})
}

func (s *Server) reloadForm(c echo.Context) error {
	if s.opts.Reload == nil {
		return serializer.Errorf(serializer.EINVALID, "this appliance cannot reload its configuration")
	}
	if err := s.opts.Reload(c.Request().Context(), actor(c)); err != nil {
		return err
	}
	s.setFlash(c, "The configuration was read again and is in force.")
	return c.Redirect(http.StatusSeeOther, "/stations")
}

type auditData struct {
	Subject string
	Entries []serializer.AuditEntry
}

// auditPage shows the audit trail, newest first, optionally about one subject.
func (s *Server) auditPage(c echo.Context) error {
	subject := strings.TrimSpace(c.QueryParam("subject"))
	entries, err := s.svc.Audit(c.Request().Context(), subject, 200)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "audit", pageData{Title: "Audit trail", Nav: "audit", Data: auditData{Subject: subject, Entries: entries}})
}
