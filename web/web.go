// Package web is serialbox's HTTP face (echo/v4): the jig API (/ioto/serialize and
// /api/v1/serialize), the operator API under /api/v1, and health. It knows the domain
// only through serializer.Service and the small interfaces declared here.
package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"serialbox/serializer"
)

// MaxJigBody is the largest serialize request body accepted (the agent's device object).
const MaxJigBody = 64 << 10

// maxAPIBody bounds the body of the other API calls.
const maxAPIBody = 64 << 10

// maxRequestBody bounds every request body, forms included, before anything reads
// it: no endpoint takes more, so a larger upload is refused without costing memory.
const maxRequestBody = 64 << 10

// DefaultMaxEventStreams is how many live line views (GET /events) are served at once
// unless Options say otherwise.
const DefaultMaxEventStreams = 64

// Pinger reports whether the database answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Options configures a Server.
type Options struct {
	// Allow lists source networks served besides loopback, private and link-local ones.
	Allow []netip.Prefix
	// DB is pinged by the health check; nil skips that check.
	DB Pinger
	// Printers and Queue feed the station views; nil leaves those parts empty.
	Printers Printers
	Queue    LabelQueue
	// Accounts logs operators in; nil refuses every state-changing request.
	Accounts *serializer.Accounts
	// Line feeds the line view's newest devices and rates; nil leaves them out.
	Line LineData
	// Stats feeds /metrics with sync and database figures; nil leaves them out.
	Stats Stats
	// Offsite reports the database's replica and the event broker; nil leaves them out.
	Offsite Offsite
	// Reload reads the configuration again (POST /api/v1/config/reload); nil refuses.
	Reload func(ctx context.Context, actor string) error
	// MaxEventStreams caps the live line views (GET /events) served at once; further
	// ones are answered 503. 0 means DefaultMaxEventStreams.
	MaxEventStreams int
	Logger          *slog.Logger
}

// Server serves the jig and operator APIs.
type Server struct {
	svc     *serializer.Service
	opts    Options
	logger  *slog.Logger
	echo    *echo.Echo
	ui      *ui
	logins  *loginLimiter
	metrics *metrics
	allow   atomic.Pointer[[]netip.Prefix] // extra source networks; replaced on reload

	tokenAuditMu sync.Mutex
	tokenAudits  map[string]time.Time // last audit of a refused jig token, by station and address

	closing   chan struct{} // closed when live event streams must end
	closeOnce sync.Once
	feed      *lineFeed // the line snapshot shared by every live stream
}

// CloseStreams ends the live event streams (GET /events), so that a graceful
// shutdown does not wait for browsers that would otherwise stay connected.
func (s *Server) CloseStreams() { s.closeOnce.Do(func() { close(s.closing) }) }

// New returns a Server for svc.
func New(svc *serializer.Service, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{svc: svc, opts: opts, logger: opts.Logger, echo: echo.New(), ui: mustUI(),
		logins: newLoginLimiter(20, 5*time.Minute), closing: make(chan struct{}), tokenAudits: map[string]time.Time{}}
	if s.opts.MaxEventStreams <= 0 {
		s.opts.MaxEventStreams = DefaultMaxEventStreams
	}
	s.feed = newLineFeed(s)
	s.SetAllow(opts.Allow)
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true, LogErrorFunc: s.logPanic}))
	e.Use(s.lanOnly)
	e.Use(limitBody)
	e.Use(noCredentialsInURL)
	e.Use(securityHeaders)

	s.metrics = newMetrics(s)
	// Monitoring may ask with HEAD: the same answer without its body.
	getOrHead := []string{http.MethodGet, http.MethodHead}
	e.Match(getOrHead, "/healthz", s.health, headless)
	e.Match(getOrHead, "/readyz", s.ready, headless)
	e.Match(getOrHead, "/metrics", s.metricsHandler(), headless)

	// The jig endpoints keep their own station token rules.
	e.POST("/ioto/serialize", s.iotoSerialize, s.timed("ioto"))
	api := e.Group("/api/v1")
	api.POST("/serialize", s.apiSerialize, s.timed("api"))

	// Reading is open to the LAN; every change needs an operator.
	operator, supervisor := s.requireOperator(serializer.RoleOperator), s.requireOperator(serializer.RoleSupervisor)
	api.GET("/devices/:uci", s.getDevice)
	api.POST("/devices/:uci/reprint", s.reprint, operator)
	api.POST("/devices/:uci/void", s.void, supervisor)
	api.POST("/devices/:uci/verify", s.verify, operator)
	api.GET("/batches", s.listBatches)
	api.POST("/batches", s.openBatch, operator)
	api.GET("/batches/:id", s.getBatch)
	api.POST("/batches/:id/close", s.closeBatch, operator)
	api.POST("/batches/:id/label", s.batchLabel, operator)
	api.POST("/batches/:id/pregenerate", s.pregenerate, supervisor)
	api.POST("/batches/:id/sync", s.requestSync, operator)
	api.GET("/batches/:id/sync", s.syncStatus)
	api.GET("/batches/:id/manifest", s.manifest)
	api.GET("/stations", s.listStations)
	api.GET("/stations/:id/jobs", s.stationJobs)
	api.POST("/stations/:id/token", s.rotateToken, supervisor)
	api.POST("/jobs/:id/resolve", s.resolveJob, operator)
	api.GET("/audit", s.listAudit)
	api.POST("/config/reload", s.reloadConfig, supervisor)

	s.pageRoutes(e)
	return s
}

// SetAllow replaces the extra source networks served; a configuration reload uses it.
func (s *Server) SetAllow(allow []netip.Prefix) {
	a := slices.Clone(allow)
	s.allow.Store(&a)
}

// ServeHTTP makes the Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// errorBody is the JSON body of every error answer.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// statusOf maps a domain error code to its HTTP status: the one place that does.
func statusOf(code string) int {
	switch code {
	case serializer.EINVALID, serializer.EMALFORMED:
		return http.StatusBadRequest
	case serializer.EUNAUTHORIZED, serializer.EUNAUTHENTICATED:
		return http.StatusUnauthorized
	case serializer.EFORBIDDEN:
		return http.StatusForbidden
	case serializer.ENOTFOUND:
		return http.StatusNotFound
	case serializer.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case serializer.EMETHOD:
		return http.StatusMethodNotAllowed
	case serializer.EUNSUPPORTED:
		return http.StatusUnsupportedMediaType
	case serializer.EUNKNOWNPRODUCT, serializer.EUNKNOWNSTATION, serializer.EIDENTITYREQUIRED:
		return http.StatusUnprocessableEntity
	case serializer.ENOBATCH, serializer.EBATCHFULL, serializer.EMISMATCH, serializer.ECONFLICT, serializer.EVOIDED,
		serializer.EWRONGBATCH, serializer.EVERIFIED:
		return http.StatusConflict
	case serializer.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// handleError answers every error as {"error","code"}; internal errors are logged in
// full and shown as a generic message.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var (
		code    = serializer.ErrorCode(err)
		message = serializer.ErrorMessage(err)
		he      *echo.HTTPError
	)
	status := statusOf(code)
	if errors.As(err, &he) {
		// Errors from echo itself (routing, method) keep their status.
		code, message, status = echoErrorCode(he), fmt.Sprint(he.Message), he.Code
	}
	r := c.Request()
	if lb, ok := r.Body.(*limitedBody); ok && lb.exceeded {
		// However the handler reported it, a body cut off at the limit is too large.
		code, status = serializer.ETOOLARGE, http.StatusRequestEntityTooLarge
		message = fmt.Sprintf("request body is over %d KiB; at most %d bytes are accepted", lb.limit>>10, lb.limit)
	}
	if code == serializer.EINTERNAL && errors.Is(r.Context().Err(), context.Canceled) {
		// The client hung up (a closed browser tab, a jig that gave up): no fault of
		// the appliance, and nobody is left to read an answer.
		s.metrics.errors.WithLabelValues(codeCanceled).Inc()
		s.logger.Debug("client went away", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		return
	}
	s.metrics.errors.WithLabelValues(code).Inc()
	if status >= 500 {
		s.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	} else {
		s.logger.Info("request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "code", code, "msg", message)
	}
	if r.Method == http.MethodHead {
		c.NoContent(status)
		return
	}
	if isPage(c) {
		// People at the line read a plain message, never JSON.
		s.renderError(c, status, message)
		return
	}
	c.JSON(status, errorBody{Error: message, Code: code})
}

func echoErrorCode(he *echo.HTTPError) string {
	switch he.Code {
	case http.StatusNotFound:
		return serializer.ENOTFOUND
	case http.StatusMethodNotAllowed:
		return serializer.EMETHOD
	case http.StatusUnsupportedMediaType:
		return serializer.EUNSUPPORTED
	case http.StatusBadRequest:
		return serializer.EINVALID
	case http.StatusRequestEntityTooLarge:
		return serializer.ETOOLARGE
	case http.StatusForbidden:
		return serializer.EFORBIDDEN
	case http.StatusUnauthorized:
		return serializer.EUNAUTHORIZED
	case http.StatusServiceUnavailable:
		return serializer.EUNAVAILABLE
	default:
		return serializer.EINTERNAL
	}
}

// codeCanceled counts, in serialbox_errors_total, the requests whose client hung up
// before the answer: not a fault, and never answered.
const codeCanceled = "canceled"

// limitedBody is a request body cut off at limit bytes; exceeded records that the
// client sent more, whatever the handler that read it made of the error.
type limitedBody struct {
	io.ReadCloser
	limit    int64
	exceeded bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		b.exceeded = true
	}
	return n, err
}

// limitBody enforces maxRequestBody on every request before anything reads or parses
// the body: a declared length over it is refused at once, a body without one is cut
// off at the limit. Multipart bodies are refused unread: no endpoint takes uploads,
// and parsing one would spill it into memory and temporary files.
func limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > maxRequestBody {
			return serializer.Errorf(serializer.ETOOLARGE, "request body is %d bytes; at most %d KiB are accepted", r.ContentLength, maxRequestBody>>10)
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType)); strings.HasPrefix(mt, "multipart/") {
			return serializer.Errorf(serializer.EUNSUPPORTED, "%s bodies are not accepted here: send a form (application/x-www-form-urlencoded) or JSON", mt)
		}
		if r.Body != nil && r.Body != http.NoBody {
			// The net/http writer, not echo's wrapper, so that the server also closes
			// the connection instead of reading the rest of an oversized body.
			r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(c.Response().Writer, r.Body, maxRequestBody), limit: maxRequestBody}
		}
		return next(c)
	}
}

// headless answers HEAD requests as GET without writing the body.
func headless(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Method == http.MethodHead {
			res := c.Response()
			res.Writer = bodiless{res.Writer}
		}
		return next(c)
	}
}

// bodiless drops what is written as a body; status and headers go through.
type bodiless struct{ http.ResponseWriter }

func (b bodiless) Write(p []byte) (int, error) { return len(p), nil }

func (s *Server) logPanic(c echo.Context, err error, stack []byte) error {
	s.logger.Error("panic serving request", "path", c.Request().URL.Path, "err", err, "stack", string(stack))
	return &serializer.Error{Code: serializer.EINTERNAL, Message: "internal error; the details are in the appliance log"}
}

// lanOnly refuses requests from outside the local network: only loopback, private
// and link-local sources, and the configured extra networks, are served. It reads the
// TCP peer address, never a forwarding header a client could forge.
func (s *Server) lanOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		addr, ok := peerAddr(c.Request().RemoteAddr)
		if !ok || !Allowed(addr, *s.allow.Load()) {
			return serializer.Errorf(serializer.EFORBIDDEN, "requests from %s are not served: serialbox serves the local network only (add the network to 'allow' in the config)", c.Request().RemoteAddr)
		}
		return next(c)
	}
}

func peerAddr(remote string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap().WithZone(""), true
}

// Allowed reports whether a source address is served: loopback, private (RFC 1918,
// fc00::/7), link-local, or inside one of extra.
func Allowed(addr netip.Addr, extra []netip.Prefix) bool {
	if addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() {
		return true
	}
	for _, p := range extra {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// ParseAllow parses networks written as CIDR prefixes or single addresses.
func ParseAllow(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a network (10.1.0.0/16) nor an address", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// checkDB returns EUNAVAILABLE when the database does not answer or, with writes,
// does not take a write.
func (s *Server) checkDB(ctx context.Context, writes bool) error {
	if s.opts.DB == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.opts.DB.Ping(ctx); err != nil {
		s.logger.Error("health check: database does not answer", "err", err)
		return serializer.Errorf(serializer.EUNAVAILABLE, "database does not answer")
	}
	if w, ok := s.opts.DB.(Writable); ok && writes {
		if err := w.Writable(ctx); err != nil {
			s.logger.Error("readiness check: database takes no writes", "err", err)
			return serializer.Errorf(serializer.EUNAVAILABLE, "database takes no writes: %s", serializer.ErrorMessage(err))
		}
	}
	return nil
}

// health answers 200 while the appliance runs and its database answers.
func (s *Server) health(c echo.Context) error {
	if err := s.checkDB(c.Request().Context(), false); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// Writable reports whether the database takes writes now.
type Writable interface {
	Writable(ctx context.Context) error
}

// ready answers 200 when the appliance can issue: the database answers and takes
// writes (its migrations ran at start, or it would not have opened).
func (s *Server) ready(c echo.Context) error {
	if err := s.checkDB(c.Request().Context(), true); err != nil {
		return err
	}
	if s.opts.Offsite != nil {
		return c.JSON(http.StatusOK, readyDetails(s.opts.Offsite.OffsiteStatus()))
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// reloadConfig reads the configuration file again; a refused file leaves the running
// configuration in place and says why.
func (s *Server) reloadConfig(c echo.Context) error {
	if s.opts.Reload == nil {
		return serializer.Errorf(serializer.EINVALID, "this appliance cannot reload its configuration")
	}
	if err := s.opts.Reload(c.Request().Context(), actor(c)); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "reloaded"})
}
