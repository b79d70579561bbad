package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"serialbox/serializer"
)

// pageRoutes adds the operator's pages. Reading the line view needs no login; every
// other page needs an operator, and every form carries the session's CSRF token.
func (s *Server) pageRoutes(e *echo.Echo) {
	e.GET("/static/:file", s.serveStatic)
	e.GET("/events", s.events)

	op, sup := s.pageAuth(serializer.RoleOperator), s.pageAuth(serializer.RoleSupervisor)
	e.GET("/", s.lineHome, s.pageContext)
	e.GET("/login", s.loginPage, s.pageContext)
	e.POST("/login", s.login, s.pageContext)
	e.POST("/logout", s.logout, s.pageContext, op)
	e.GET("/batches", s.batchesPage, s.pageContext, op)
	e.POST("/batches", s.openBatchForm, s.pageContext, op)
	e.GET("/batches/:id", s.batchPage, s.pageContext, op)
	e.POST("/batches/:id/close", s.closeBatchForm, s.pageContext, op)
	e.POST("/batches/:id/label", s.batchLabelForm, s.pageContext, op)
	e.POST("/batches/:id/sync", s.syncForm, s.pageContext, op)
	e.GET("/lookup", s.lookupPage, s.pageContext, op)
	e.POST("/devices/:uci/reprint", s.reprintForm, s.pageContext, op)
	e.POST("/devices/:uci/void", s.voidForm, s.pageContext, sup)
	e.GET("/verify", s.verifyPage, s.pageContext, op)
	e.POST("/verify", s.verifyForm, s.pageContext, op)
	e.POST("/jobs/:id/resolve", s.resolveForm, s.pageContext, op)
	e.GET("/stations", s.stationsPage, s.pageContext, sup)
	e.GET("/audit", s.auditPage, s.pageContext, sup)
	e.POST("/stations/:id/token", s.rotateTokenForm, s.pageContext, sup)
	e.POST("/config/reload", s.reloadForm, s.pageContext, sup)
}

// pageContext marks a request as a page request (errors become pages), reads the
// form a page sent, and loads the operator's session when there is one. The form is
// read whole (at most maxRequestBody) before any handler looks at a field of it, so
// that no action runs on a form cut short.
func (s *Server) pageContext(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(ctxPage, true)
		if unsafeMethod(c.Request().Method) {
			if err := parseForm(c); err != nil {
				return err
			}
		}
		s.loadSession(c)
		return next(c)
	}
}

// pageAuth lets only logged-in operators with the role through, and checks the CSRF
// token of every form they send.
func (s *Server) pageAuth(need serializer.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			sess, ok := sessionOf(c)
			if !ok {
				return serializer.Errorf(serializer.EUNAUTHENTICATED, "you are not logged in, or your session has ended: log in again")
			}
			if unsafeMethod(c.Request().Method) {
				if err := checkCSRF(c, sess); err != nil {
					return err
				}
			}
			if err := checkRole(sess.Operator, need); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// loginForm is what the login page shows and keeps.
type loginForm struct {
	Name, Next string
}

func (s *Server) loginPage(c echo.Context) error {
	next := safeNext(c.QueryParam("next"))
	if _, ok := sessionOf(c); ok {
		return c.Redirect(http.StatusSeeOther, next)
	}
	return s.render(c, http.StatusOK, "login", pageData{Title: "Log in", Data: loginForm{Next: next}})
}

func (s *Server) login(c echo.Context) error {
	form := loginForm{Name: strings.TrimSpace(formValue(c, "name")), Next: safeNext(formValue(c, "next"))}
	refuse := func(status int, msg string) error {
		return s.render(c, status, "login", pageData{Title: "Log in", Error: msg, Data: form})
	}
	addr, _ := peerAddr(c.Request().RemoteAddr)
	if !s.logins.allow(addr) {
		return refuse(http.StatusTooManyRequests, "Too many login attempts from this device: wait five minutes and try again.")
	}
	if s.opts.Accounts == nil {
		return refuse(http.StatusServiceUnavailable, "No operator accounts are set up on this appliance.")
	}
	ctx := c.Request().Context()
	o, err := s.opts.Accounts.Login(ctx, form.Name, formValue(c, "password"), addr.String())
	if err != nil {
		if serializer.ErrorCode(err) == serializer.EINTERNAL {
			return err
		}
		s.logger.Info("login refused", "name", form.Name, "remote", addr, "msg", serializer.ErrorMessage(err))
		return refuse(statusOf(serializer.ErrorCode(err)), serializer.ErrorMessage(err))
	}
	token, _, err := s.opts.Accounts.StartSession(ctx, o)
	if err != nil {
		return err
	}
	c.SetCookie(&http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: c.Request().TLS != nil,
	})
	s.logger.Info("operator logged in", "name", o.Name, "remote", addr)
	return c.Redirect(http.StatusSeeOther, form.Next)
}

func (s *Server) logout(c echo.Context) error {
	if ck, err := c.Cookie(sessionCookie); err == nil {
		if err := s.opts.Accounts.EndSession(c.Request().Context(), ck.Value); err != nil {
			return err
		}
	}
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.Request().TLS != nil})
	s.setFlash(c, "You are logged out.")
	return c.Redirect(http.StatusSeeOther, "/login")
}

// openForm is the "open a batch" form as typed.
type openForm struct {
	Station, Product, Planned string
}

// batchesData is the batches page.
type batchesData struct {
	Batches  []serializer.Batch
	Stations []serializer.Station
	Products []serializer.Product
	Form     openForm
}

func (s *Server) batchesPage(c echo.Context) error {
	return s.renderBatches(c, http.StatusOK, openForm{}, "")
}

func (s *Server) renderBatches(c echo.Context, status int, form openForm, msg string) error {
	batches, err := s.svc.Batches(c.Request().Context(), serializer.BatchFilter{Limit: 50})
	if err != nil {
		return err
	}
	cat := s.svc.Catalog()
	return s.render(c, status, "batches", pageData{Title: "Batches", Nav: "batches", Error: msg,
		Data: batchesData{Batches: batches, Stations: cat.Stations, Products: cat.Products, Form: form}})
}

// parsePlanned reads the planned size typed into the form; empty means no limit.
func parsePlanned(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > serializer.MaxBatchSize {
		return 0, serializer.Errorf(serializer.EINVALID, "planned size %q: type a whole number from 0 (no limit) to %d", s, serializer.MaxBatchSize)
	}
	return n, nil
}

func (s *Server) openBatchForm(c echo.Context) error {
	form := openForm{Station: strings.TrimSpace(formValue(c, "station")), Product: strings.TrimSpace(formValue(c, "product")), Planned: strings.TrimSpace(formValue(c, "planned"))}
	planned, err := parsePlanned(form.Planned)
	if err == nil {
		var b serializer.Batch
		b, err = s.svc.OpenBatch(c.Request().Context(), serializer.OpenBatchRequest{StationID: form.Station, ProductID: form.Product, Planned: planned}, actor(c))
		if err == nil {
			s.setFlash(c, fmt.Sprintf("Batch %d is open at station %s.", b.ID, b.StationID))
			return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/batches/%d", b.ID))
		}
	}
	if serializer.ErrorCode(err) == serializer.EINTERNAL {
		return err
	}
	return s.renderBatches(c, statusOf(serializer.ErrorCode(err)), form, serializer.ErrorMessage(err))
}

// batchData is one batch's page.
type batchData struct {
	Batch    serializer.Batch
	Product  serializer.Product
	Station  serializer.Station
	Sync     []serializer.TargetSync
	Failures []serializer.SyncFailure
	Targets  []string
	Reason   string
}

func (s *Server) batchPage(c echo.Context) error {
	return s.renderBatch(c, http.StatusOK, "", "")
}

func (s *Server) renderBatch(c echo.Context, status int, msg, reason string) error {
	id, err := batchID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	b, err := s.svc.Batch(ctx, id)
	if err != nil {
		return err
	}
	d := batchData{Batch: b, Targets: s.svc.SyncTargets(), Reason: reason}
	d.Product, _ = s.svc.Product(b.ProductID)
	if d.Product.ID == "" {
		d.Product.ID = b.ProductID
	}
	d.Station, _ = s.svc.Station(b.StationID)
	if d.Station.ID == "" {
		d.Station.ID = b.StationID
	}
	if d.Sync, err = s.svc.SyncStatus(ctx, id); err != nil {
		return err
	}
	if d.Failures, err = s.svc.SyncFailures(ctx, id, 50); err != nil {
		return err
	}
	return s.render(c, status, "batch", pageData{Title: fmt.Sprintf("Batch %d", id), Nav: "batches", Error: msg, Data: d})
}

// batchAction runs one form action on a batch and goes back to the batch's page,
// with what happened or why it was refused.
func (s *Server) batchAction(c echo.Context, do func(id int64) (string, error)) error {
	id, err := batchID(c)
	if err != nil {
		return err
	}
	done, err := do(id)
	if err != nil {
		if serializer.ErrorCode(err) == serializer.EINTERNAL {
			return err
		}
		return s.renderBatch(c, statusOf(serializer.ErrorCode(err)), serializer.ErrorMessage(err), formValue(c, "reason"))
	}
	s.setFlash(c, done)
	return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/batches/%d", id))
}

func (s *Server) closeBatchForm(c echo.Context) error {
	return s.batchAction(c, func(id int64) (string, error) {
		b, err := s.svc.CloseBatch(c.Request().Context(), id, actor(c), strings.TrimSpace(formValue(c, "reason")))
		return fmt.Sprintf("Batch %d is closed: %d issued, %d voided.", b.ID, b.Counts.Issued, b.Counts.Voided), err
	})
}

func (s *Server) batchLabelForm(c echo.Context) error {
	return s.batchAction(c, func(id int64) (string, error) {
		j, err := s.svc.BatchLabel(c.Request().Context(), id, "", actor(c), strings.TrimSpace(formValue(c, "reason")))
		return fmt.Sprintf("The batch label is queued at station %s (label job %d).", j.StationID, j.ID), err
	})
}

func (s *Server) syncForm(c echo.Context) error {
	return s.batchAction(c, func(id int64) (string, error) {
		queued, err := s.svc.RequestSync(c.Request().Context(), id, nil, actor(c), "sync again from the batch page")
		n := 0
		for _, q := range queued {
			n += q
		}
		return fmt.Sprintf("Batch %d is queued for upstream registration (%s to send).", id, count(n, "device", "devices")), err
	})
}

// scanToUCI reads what a scanner or a person typed: a bare claim ID in any form
// Parse accepts, or a claim URL whose id= parameter holds it.
func scanToUCI(raw string) (serializer.UCI, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return serializer.UCI{}, serializer.Errorf(serializer.EINVALID, "scan a label or type a claim ID")
	}
	if strings.Contains(raw, "://") || strings.Contains(raw, "id=") {
		if u, err := url.Parse(raw); err == nil {
			if id := u.Query().Get("id"); id != "" {
				raw = id
			} else {
				return serializer.UCI{}, serializer.Errorf(serializer.EINVALID, "this code is a link without a claim ID (no id= in it): is it the right label?")
			}
		}
	}
	return serializer.Parse(raw)
}

// lookupData is the lookup page: the scan field and, once found, the device.
type lookupData struct {
	Q       string
	Found   bool
	Device  serializer.Device
	Batch   serializer.Batch
	Product serializer.Product
	Station serializer.Station
	Jobs    []serializer.PrintJob
	Audit   []serializer.AuditEntry
	Form    deviceForm
}

// deviceForm keeps what was typed into the reprint and void forms.
type deviceForm struct {
	ReprintReason, VoidReason, Station string
}

func (s *Server) lookupPage(c echo.Context) error {
	return s.renderLookup(c, http.StatusOK, c.QueryParam("q"), deviceForm{}, "")
}

func (s *Server) renderLookup(c echo.Context, status int, q string, form deviceForm, msg string) error {
	d := lookupData{Q: strings.TrimSpace(q), Form: form}
	pd := pageData{Title: "Lookup", Nav: "lookup", Error: msg}
	if d.Q != "" {
		if err := s.findDevice(c, &d); err != nil {
			if serializer.ErrorCode(err) == serializer.EINTERNAL {
				return err
			}
			pd.Error, status = serializer.ErrorMessage(err), statusOf(serializer.ErrorCode(err))
		}
	}
	pd.Data = d
	return s.render(c, status, "lookup", pd)
}

func (s *Server) findDevice(c echo.Context, d *lookupData) error {
	uci, err := scanToUCI(d.Q)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if d.Device, err = s.svc.Device(ctx, uci); err != nil {
		return err
	}
	if d.Batch, err = s.svc.Batch(ctx, d.Device.BatchID); err != nil {
		return err
	}
	if d.Jobs, err = s.svc.PrintJobs(ctx, uci); err != nil {
		return err
	}
	if d.Audit, err = s.svc.Audit(ctx, "device:"+uci.String(), 100); err != nil {
		return err
	}
	d.Product, _ = s.svc.Product(d.Device.ProductID)
	if d.Product.ID == "" {
		d.Product.ID = d.Device.ProductID
	}
	d.Station, _ = s.svc.Station(d.Device.StationID)
	if d.Station.ID == "" {
		d.Station.ID = d.Device.StationID
	}
	d.Found = true
	return nil
}

// deviceAction runs a reprint or void form and goes back to the device.
func (s *Server) deviceAction(c echo.Context, form deviceForm, do func(serializer.UCI) (string, error)) error {
	uci, err := uciParam(c)
	if err == nil {
		var done string
		if done, err = do(uci); err == nil {
			s.setFlash(c, done)
			return c.Redirect(http.StatusSeeOther, "/lookup?q="+uci.String())
		}
	}
	if serializer.ErrorCode(err) == serializer.EINTERNAL {
		return err
	}
	return s.renderLookup(c, statusOf(serializer.ErrorCode(err)), c.Param("uci"), form, serializer.ErrorMessage(err))
}

func (s *Server) reprintForm(c echo.Context) error {
	form := deviceForm{ReprintReason: formValue(c, "reason"), Station: strings.TrimSpace(formValue(c, "station"))}
	return s.deviceAction(c, form, func(uci serializer.UCI) (string, error) {
		j, err := s.svc.Reprint(c.Request().Context(), uci, form.Station, actor(c), form.ReprintReason)
		return fmt.Sprintf("Reprint of %s queued at station %s (label job %d).", uci.Grouped(), j.StationID, j.ID), err
	})
}

func (s *Server) voidForm(c echo.Context) error {
	form := deviceForm{VoidReason: formValue(c, "reason")}
	return s.deviceAction(c, form, func(uci serializer.UCI) (string, error) {
		_, err := s.svc.Void(c.Request().Context(), uci, actor(c), form.VoidReason)
		return fmt.Sprintf("Claim ID %s is voided.", uci.Grouped()), err
	})
}

// verifyData is the verification page: the batch being checked, the scan field and
// the last scan's result.
type verifyData struct {
	Batch  *serializer.Batch
	Open   []serializer.Batch
	Result *verifyResult
}

// verifyResult is what the last scan showed: a big OK or a loud mismatch.
type verifyResult struct {
	OK      bool
	Scan    string
	Title   string
	Message string
}

func (s *Server) verifyPage(c echo.Context) error {
	return s.renderVerify(c, http.StatusOK, c.QueryParam("batch"), nil)
}

func (s *Server) renderVerify(c echo.Context, status int, batch string, res *verifyResult) error {
	ctx := c.Request().Context()
	open, err := s.svc.Batches(ctx, serializer.BatchFilter{State: serializer.BatchOpen})
	if err != nil {
		return err
	}
	d := verifyData{Open: open, Result: res}
	pd := pageData{Title: "Verify labels", Nav: "verify"}
	switch {
	case batch != "":
		id, err := strconv.ParseInt(batch, 10, 64)
		if err != nil || id < 1 {
			pd.Error, status = fmt.Sprintf("%q is not a batch number", batch), http.StatusBadRequest
			break
		}
		b, err := s.svc.Batch(ctx, id)
		if err != nil {
			if serializer.ErrorCode(err) == serializer.EINTERNAL {
				return err
			}
			pd.Error, status = serializer.ErrorMessage(err), statusOf(serializer.ErrorCode(err))
			break
		}
		d.Batch = &b
	case len(open) == 1:
		d.Batch = &open[0]
	}
	pd.Data = d
	return s.render(c, status, "verify", pd)
}

func (s *Server) verifyForm(c echo.Context) error {
	batch, scan := strings.TrimSpace(formValue(c, "batch")), strings.TrimSpace(formValue(c, "scan"))
	id, err := strconv.ParseInt(batch, 10, 64)
	if err != nil || id < 1 {
		return s.renderVerify(c, http.StatusBadRequest, "", &verifyResult{Scan: scan, Title: "Pick a batch first", Message: "Choose the batch whose labels you check, then scan."})
	}
	res := &verifyResult{Scan: scan}
	uci, err := scanToUCI(scan)
	if err == nil {
		_, err = s.svc.Verify(c.Request().Context(), uci, serializer.VerifyRequest{BatchID: id}, actor(c))
	}
	status := http.StatusOK
	switch code := serializer.ErrorCode(err); code {
	case "":
		res.OK, res.Title, res.Message = true, "OK", fmt.Sprintf("%s belongs to batch %d and is now verified.", uci.Grouped(), id)
	case serializer.EINTERNAL:
		return err
	default:
		res.Title, res.Message, status = mismatchTitle(code), serializer.ErrorMessage(err), statusOf(code)
	}
	return s.renderVerify(c, status, batch, res)
}

// mismatchTitle is the headline of a refused scan, in a few loud words.
func mismatchTitle(code string) string {
	switch code {
	case serializer.ENOTFOUND:
		return "UNKNOWN CLAIM ID"
	case serializer.EVOIDED:
		return "VOIDED"
	case serializer.EWRONGBATCH:
		return "OTHER BATCH"
	case serializer.EVERIFIED:
		return "SCANNED TWICE"
	case serializer.EINVALID:
		return "NOT A CLAIM ID"
	default:
		return "MISMATCH"
	}
}

func (s *Server) resolveForm(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return serializer.Errorf(serializer.EINVALID, "label job %q is not a job number", c.Param("id"))
	}
	action := serializer.JobAction(formValue(c, "action"))
	reason := strings.TrimSpace(formValue(c, "reason"))
	if reason == "" {
		switch action {
		case serializer.JobResend:
			reason = "the label did not come out: resent from the line view"
		case serializer.JobConfirmPrinted:
			reason = "the label came out whole: confirmed on the line view"
		}
	}
	j, err := s.svc.ResolveJob(c.Request().Context(), id, action, actor(c), reason)
	if err != nil {
		return err
	}
	what := "will be sent again"
	if j.State == serializer.JobPrinted {
		what = "is recorded as printed"
	}
	s.setFlash(c, fmt.Sprintf("Label job %d %s.", j.ID, what))
	return c.Redirect(http.StatusSeeOther, safeNext(formValue(c, "next")))
}
