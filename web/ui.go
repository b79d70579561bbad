package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"serialbox/serializer"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// staticFile is one embedded static file, served under a name that carries a hash of
// its content so that browsers may keep it for a year and still never run a stale one.
type staticFile struct {
	body        []byte
	contentType string
}

// ui holds the page templates, parsed once, and the static files.
type ui struct {
	pages    map[string]*template.Template // page file name → layout, partials and the page
	partials *template.Template            // the fragments the live updates send
	static   map[string]staticFile         // hashed name → file
	paths    map[string]string             // file name → "/static/<hashed name>"
}

func mustUI() *ui {
	u, err := newUI()
	if err != nil {
		panic(err)
	}
	return u
}

func newUI() (*ui, error) {
	u := &ui{pages: map[string]*template.Template{}, static: map[string]staticFile{}, paths: map[string]string{}}
	files, err := fs.ReadDir(staticFS, "static")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		body, err := staticFS.ReadFile("static/" + f.Name())
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		ext := path.Ext(f.Name())
		hashed := strings.TrimSuffix(f.Name(), ext) + "." + hex.EncodeToString(sum[:6]) + ext
		ct := mime.TypeByExtension(ext)
		if ct == "" {
			ct = "application/octet-stream"
		}
		u.static[hashed] = staticFile{body: body, contentType: ct}
		u.paths[f.Name()] = "/static/" + hashed
	}
	funcs := template.FuncMap{
		"static": func(name string) (string, error) {
			p, ok := u.paths[name]
			if !ok {
				return "", fmt.Errorf("no static file %q", name)
			}
			return p, nil
		},
		"clock":    func(t time.Time) string { return t.Local().Format("15:04:05") },
		"datetime": func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
		"timeptr": func(t *time.Time) string {
			if t == nil {
				return ""
			}
			return t.Local().Format("2006-01-02 15:04:05")
		},
		"grouped": func(u serializer.UCI) string { return u.Grouped() },
		"count":   count,
		"deref":   func(u *serializer.UCI) serializer.UCI { return *u },
		"percent": func(n, of int) int {
			if of <= 0 {
				return 0
			}
			return min(100, n*100/of)
		},
		"printer":     printerWords,
		"deviceState": deviceStateWords,
		"jobState":    jobStateWords,
		"isSupervisor": func(o *serializer.Operator) bool {
			return o != nil && o.Role == serializer.RoleSupervisor
		},
	}
	base, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return nil, err
	}
	u.partials = base
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, p := range pages {
		name := path.Base(p)
		if name == "layout.html" || name == "partials.html" {
			continue
		}
		t, err := base.Clone()
		if err == nil {
			t, err = t.ParseFS(templateFS, p)
		}
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		u.pages[strings.TrimSuffix(name, ".html")] = t
	}
	return u, nil
}

// count writes a number with its noun: "1 label", "3 labels".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// serveStatic serves an embedded static file by its hashed name, cached for a year.
func (s *Server) serveStatic(c echo.Context) error {
	f, ok := s.ui.static[c.Param("file")]
	if !ok {
		return serializer.Errorf(serializer.ENOTFOUND, "no such file")
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	return c.Blob(http.StatusOK, f.contentType, f.body)
}

// contentSecurityPolicy allows only the appliance's own scripts, styles and
// connections: no inline script, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// securityHeaders sets the headers that keep pages from being framed, sniffed or
// made to run foreign scripts.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(c.Request().URL.Path, "/api/") && !strings.HasPrefix(c.Request().URL.Path, "/ioto/") {
			h.Set("Content-Security-Policy", contentSecurityPolicy)
		}
		return next(c)
	}
}

// ctxPage marks a request for a page, whose errors are shown as a page.
const ctxPage = "serialbox.page"

func isPage(c echo.Context) bool {
	if v, ok := c.Get(ctxPage).(bool); ok {
		return v
	}
	switch p := c.Request().URL.Path; {
	case strings.HasPrefix(p, "/api/"), strings.HasPrefix(p, "/ioto/"), strings.HasPrefix(p, "/static/"):
		return false
	case p == "/healthz", p == "/readyz", p == "/metrics", p == "/events":
		return false
	}
	return true
}

// pageData is what every page template gets.
type pageData struct {
	Title    string
	Nav      string // the menu entry to highlight
	Operator *serializer.Operator
	CSRF     string
	Alerts   []alert
	Flash    string // what the last action did
	Error    string // why the last action was refused, in plain words
	Data     any
}

// flashCookie carries a short message across the redirect after a form was sent, so
// that reloading the page does not send the form again.
const flashCookie = "serialbox_flash"

func (s *Server) setFlash(c echo.Context, msg string) {
	c.SetCookie(&http.Cookie{Name: flashCookie, Value: encodeFlash(msg), Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: 60, Secure: c.Request().TLS != nil})
}

func encodeFlash(msg string) string { return hex.EncodeToString([]byte(msg)) }

func (s *Server) takeFlash(c echo.Context) string {
	ck, err := c.Cookie(flashCookie)
	if err != nil || ck.Value == "" {
		return ""
	}
	c.SetCookie(&http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	b, err := hex.DecodeString(ck.Value)
	if err != nil || len(b) > 300 {
		return ""
	}
	return string(b)
}

// render writes a page: the layout with the named page inside, the operator, the
// CSRF token and the trouble banner filled in.
func (s *Server) render(c echo.Context, status int, name string, d pageData) error {
	t, ok := s.ui.pages[name]
	if !ok {
		return fmt.Errorf("no page template %q", name)
	}
	s.fillPage(c, &d)
	if d.Flash == "" && d.Error == "" && c.Request().Method == http.MethodGet {
		d.Flash = s.takeFlash(c)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTMLBlob(status, buf.Bytes())
}

// fillPage adds what every page shows: who is logged in and the trouble banner.
func (s *Server) fillPage(c echo.Context, d *pageData) {
	if o, ok := operatorOf(c); ok {
		d.Operator = &o
	}
	if sess, ok := sessionOf(c); ok {
		d.CSRF = sess.CSRF
	}
	if d.Alerts == nil {
		ctx := c.Request().Context()
		_, alerts, err := s.lineSnapshot(ctx)
		if err != nil && ctx.Err() == nil {
			s.logger.Error("reading the line for the banner", "err", err)
		}
		d.Alerts = alerts
	}
}

// renderError shows a refused or failed request as a plain page.
func (s *Server) renderError(c echo.Context, status int, message string) {
	name, d := "error", pageData{Title: http.StatusText(status), Error: message}
	if status == http.StatusUnauthorized {
		if c.Request().Method == http.MethodGet {
			c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
			return
		}
		name, d.Title, d.Data = "login", "Log in", loginForm{Next: "/"}
	}
	if err := s.render(c, status, name, d); err != nil {
		s.logger.Error("rendering the error page", "err", err)
		c.String(status, message)
	}
}
