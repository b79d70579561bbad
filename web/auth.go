package web

import (
	"crypto/subtle"
	"mime"
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
		// A client that hung up is no fault to log.
		if serializer.ErrorCode(err) != serializer.EUNAUTHENTICATED && c.Request().Context().Err() == nil {
			s.logger.Error("reading session", "err", err)
		}
		return false
	}
	c.Set(ctxOperator, sess.Operator)
	c.Set(ctxSession, sess)
	return true
}

// checkCSRF compares the request's CSRF token with the session's: the X-CSRF-Token
// header, or on a page's form the csrf field of the body. Never the URL's query,
// which ends up in logs, browser history and Referer headers.
func checkCSRF(c echo.Context, sess serializer.Session) error {
	got := c.Request().Header.Get(csrfHeader)
	if got == "" && isPage(c) {
		got = formValue(c, csrfField)
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) != 1 {
		return serializer.Errorf(serializer.EFORBIDDEN, "the form's security token is missing or out of date: reload the page and try again")
	}
	return nil
}

// isForm reports whether the request body is a URL-encoded form, the only kind of
// form the pages send.
func isForm(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	return mt == echo.MIMEApplicationForm
}

// parseForm reads a page's form from the request body (already bounded by limitBody).
// Only r.ParseForm is used: echo's FormValue would parse multipart bodies and mix
// the URL's query into the form.
func parseForm(c echo.Context) error {
	r := c.Request()
	if !isForm(r) {
		r.PostForm = url.Values{}
		return nil
	}
	if err := r.ParseForm(); err != nil {
		if lb, ok := r.Body.(*limitedBody); ok && lb.exceeded {
			return serializer.Errorf(serializer.ETOOLARGE, "the form is over %d KiB", maxRequestBody>>10)
		}
		return serializer.Errorf(serializer.EINVALID, "the form could not be read: %v", err)
	}
	return nil
}

// formValue returns a field of the form in the request body, never one of the URL's
// query; "" when the request carries no form.
func formValue(c echo.Context, name string) string {
	r := c.Request()
	if r.PostForm == nil {
		if parseForm(c) != nil {
			return ""
		}
	}
	return r.PostForm.Get(name)
}

// urlSecrets are query parameters that would carry a credential in the URL, where
// access logs, browser history and Referer headers keep it.
var urlSecrets = []string{"password", "csrf", "api_key", "apikey", "access_token", "session", sessionCookie, "token"}

// jigRoutes take the station token as ?token=: the Ioto agent can only be given a URL.
var jigRoutes = map[string]bool{"/ioto/serialize": true, "/api/v1/serialize": true}

// noCredentialsInURL refuses requests that carry a password, CSRF token, API key or
// session in the URL's query: operators' credentials are taken only from the body
// (forms) or headers (Authorization, X-CSRF-Token, the session cookie). The jig
// endpoints keep ?token= for the station token.
func noCredentialsInURL(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		q := c.Request().URL.Query()
		for _, name := range urlSecrets {
			if name == "token" && jigRoutes[c.Path()] {
				continue
			}
			if _, ok := q[name]; ok {
				return serializer.Errorf(serializer.EINVALID, "%q was sent in the address: credentials are taken only from the form or the request headers (Authorization: Bearer, X-CSRF-Token), never from the URL, which logs and browser history keep", name)
			}
		}
		return next(c)
	}
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
