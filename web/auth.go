package web

import (
	"crypto/subtle"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"serialbox/serializer"
)

// sessionCookie names the browser cookie that carries an operator's session token.
const sessionCookie = "serialbox_session"

// csrfHeader carries the session's CSRF token on JSON requests made with the cookie.
const csrfHeader = "X-CSRF-Token"

// csrfField is the form field that carries the session's CSRF token.
const csrfField = "csrf"

// Keys of the values the auth middleware leaves in the echo context.
const (
	ctxOperator = "serialbox.operator"
	ctxSession  = "serialbox.session"
)

// operatorOf returns the authenticated operator of a request, if any.
func operatorOf(c echo.Context) (serializer.Operator, bool) {
	o, ok := c.Get(ctxOperator).(serializer.Operator)
	return o, ok
}

// sessionOf returns the browser session of a request, if any.
func sessionOf(c echo.Context) (serializer.Session, bool) {
	s, ok := c.Get(ctxSession).(serializer.Session)
	return s, ok
}

// actor names who asked for a change, for the audit trail: the authenticated operator.
func actor(c echo.Context) string {
	if o, ok := operatorOf(c); ok {
		return o.Name
	}
	return "unknown"
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get(echo.HeaderAuthorization)
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

// loadSession puts the operator of a valid session cookie into the context and
// reports whether there was one. An ended session is no error here: the page simply
// shows the visitor as logged out.
func (s *Server) loadSession(c echo.Context) bool {
	if s.opts.Accounts == nil {
		return false
	}
	ck, err := c.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return false
	}
	sess, err := s.opts.Accounts.Session(c.Request().Context(), ck.Value)
	if err != nil {
		if serializer.ErrorCode(err) != serializer.EUNAUTHENTICATED {
			s.logger.Error("reading session", "err", err)
		}
		return false
	}
	c.Set(ctxOperator, sess.Operator)
	c.Set(ctxSession, sess)
	return true
}

// checkCSRF compares the request's CSRF token (header or form field) with the session's.
func checkCSRF(c echo.Context, sess serializer.Session) error {
	got := c.Request().Header.Get(csrfHeader)
	if got == "" && isForm(c.Request()) {
		got = c.FormValue(csrfField)
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) != 1 {
		return serializer.Errorf(serializer.EFORBIDDEN, "the form's security token is missing or out of date: reload the page and try again")
	}
	return nil
}

func isForm(r *http.Request) bool {
	ct := r.Header.Get(echo.HeaderContentType)
	return strings.HasPrefix(ct, echo.MIMEApplicationForm) || strings.HasPrefix(ct, echo.MIMEMultipartForm)
}

// checkRole refuses an operator whose role does not allow what need requires.
func checkRole(o serializer.Operator, need serializer.Role) error {
	if !o.Role.Allows(need) {
		return serializer.Errorf(serializer.EFORBIDDEN, "only a %s may do this; %s is an %s", need, o.Name, o.Role)
	}
	return nil
}

// requireOperator guards the state-changing API: an API key (Authorization: Bearer),
// or the page's session cookie together with its CSRF token (X-CSRF-Token header).
func (s *Server) requireOperator(need serializer.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if s.opts.Accounts == nil {
				return serializer.Errorf(serializer.EUNAUTHENTICATED, "no operator accounts are set up on this appliance")
			}
			if key, ok := bearer(c.Request()); ok {
				o, err := s.opts.Accounts.ByAPIKey(c.Request().Context(), key)
				if err != nil {
					return err
				}
				c.Set(ctxOperator, o)
			} else {
				if !s.loadSession(c) {
					return serializer.Errorf(serializer.EUNAUTHENTICATED, "log in, or send an operator's API key (Authorization: Bearer)")
				}
				sess, _ := sessionOf(c)
				if unsafeMethod(c.Request().Method) {
					if err := checkCSRF(c, sess); err != nil {
						return err
					}
				}
			}
			o, _ := operatorOf(c)
			if err := checkRole(o, need); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// loginLimiter bounds login attempts per source address, so that passwords cannot be
// guessed quickly across many names from one machine.
type loginLimiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	seen   map[netip.Addr]*attempts
	now    func() time.Time
}

type attempts struct {
	start time.Time
	n     int
}

func newLoginLimiter(max int, window time.Duration) *loginLimiter {
	return &loginLimiter{max: max, window: window, seen: map[netip.Addr]*attempts{}, now: time.Now}
}

// allow counts one attempt from addr and reports whether it may go ahead.
func (l *loginLimiter) allow(addr netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.seen) > 10_000 {
		for a, at := range l.seen {
			if now.Sub(at.start) > l.window {
				delete(l.seen, a)
			}
		}
	}
	at := l.seen[addr]
	if at == nil || now.Sub(at.start) > l.window {
		at = &attempts{start: now}
		l.seen[addr] = at
	}
	at.n++
	return at.n <= l.max
}

// safeNext keeps a post-login redirect on this appliance.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || u.Host != "" {
		return "/"
	}
	return next
}
