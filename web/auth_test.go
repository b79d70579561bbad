package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/web"
)

// visitor is a browser without JavaScript: it keeps cookies, does not follow
// redirects by itself, and remembers the CSRF token of the last page.
type visitor struct {
	tb     testing.TB
	base   string
	client *http.Client
	csrf   string
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// page is one answer as a visitor sees it.
type page struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (f *fixture) visitor(tb testing.TB) *visitor {
	tb.Helper()
	ts := httptest.NewServer(f.srv)
	tb.Cleanup(ts.Close)
	jar, _ := cookiejar.New(nil)
	return &visitor{tb: tb, base: ts.URL, client: &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (v *visitor) send(req *http.Request) page {
	v.tb.Helper()
	resp, err := v.client.Do(req)
	if err != nil {
		v.tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, body: string(body), location: resp.Header.Get("Location"), header: resp.Header}
	if m := csrfRE.FindStringSubmatch(p.body); m != nil {
		v.csrf = m[1]
	}
	return p
}

func (v *visitor) get(path string) page {
	v.tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, v.base+path, nil)
	return v.send(req)
}

// post sends a form with the page's CSRF token, unless the form sets csrf itself.
func (v *visitor) post(path string, form url.Values) page {
	v.tb.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, set := form["csrf"]; !set && v.csrf != "" {
		form.Set("csrf", v.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, v.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return v.send(req)
}

// follow gets the page a redirect points to.
func (v *visitor) follow(p page) page {
	v.tb.Helper()
	if p.status != http.StatusSeeOther || p.location == "" {
		v.tb.Fatalf("want a redirect, got %d %s", p.status, p.body)
	}
	return v.get(p.location)
}

func (v *visitor) login(name, password string) {
	v.tb.Helper()
	p := v.post("/login", url.Values{"name": {name}, "password": {password}, "next": {"/"}})
	if p.status != http.StatusSeeOther || p.location != "/" {
		v.tb.Fatalf("login %s: %d %s", name, p.status, p.body)
	}
	v.get("/") // picks up the session's CSRF token
	if v.csrf == "" {
		v.tb.Fatal("no CSRF token on the page after login")
	}
}

func wantPage(tb testing.TB, p page, status int, texts ...string) {
	tb.Helper()
	if p.status != status {
		tb.Fatalf("status %d, want %d: %s", p.status, status, p.body)
	}
	for _, s := range texts {
		if !strings.Contains(p.body, s) {
			tb.Fatalf("page lacks %q:\n%s", s, p.body)
		}
	}
	if strings.HasPrefix(strings.TrimSpace(p.body), "{") {
		tb.Fatalf("a page answered JSON: %s", p.body)
	}
}

func addOperator(tb testing.TB, f *fixture, name string, role serializer.Role) (password, key string) {
	tb.Helper()
	password = name + "-password"
	_, key, err := f.accounts.AddOperator(context.Background(), name, role, password, true, "test")
	if err != nil {
		tb.Fatal(err)
	}
	return password, key
}

func TestLogin(t *testing.T) {
	f := newFixture(t, web.Options{})
	pw, _ := addOperator(t, f, "anna", serializer.RoleOperator)
	for _, tc := range []struct {
		name, user, password string
		status               int
		text                 string
	}{
		{"wrong password", "anna", "nope", 401, "wrong name or password"},
		{"unknown name", "nobody", pw, 401, "wrong name or password"},
		{"empty", "", "", 401, "wrong name or password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := f.visitor(t)
			p := v.post("/login", url.Values{"name": {tc.user}, "password": {tc.password}})
			wantPage(t, p, tc.status, tc.text, `value="`+tc.user+`"`)
			if strings.Contains(p.body, tc.password) && tc.password != "" {
				t.Fatal("the page shows the typed password")
			}
			if p := v.get("/batches"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/login?next=") {
				t.Fatalf("after a failed login /batches = %d %s", p.status, p.location)
			}
		})
	}
	v := f.visitor(t)
	p := v.post("/login", url.Values{"name": {"anna"}, "password": {pw}, "next": {"/lookup"}})
	if p.status != http.StatusSeeOther || p.location != "/lookup" {
		t.Fatalf("login = %d %s", p.status, p.body)
	}
	ck := p.header.Get("Set-Cookie")
	for _, attr := range []string{"serialbox_session=", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(ck, attr) {
			t.Fatalf("cookie %q lacks %s", ck, attr)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Fatalf("cookie over plain HTTP is Secure and would be dropped: %q", ck)
	}
	wantPage(t, v.get("/lookup"), 200, "anna", "Scan a label")
	// An open redirect is not followed.
	v2 := f.visitor(t)
	if p := v2.post("/login", url.Values{"name": {"anna"}, "password": {pw}, "next": {"//evil.example.com/"}}); p.location != "/" {
		t.Fatalf("next=//evil: redirect to %q", p.location)
	}
}

func TestLoginLockOut(t *testing.T) {
	f := newFixture(t, web.Options{})
	pw, _ := addOperator(t, f, "anna", serializer.RoleOperator)
	v := f.visitor(t)
	for i := range 5 {
		p := v.post("/login", url.Values{"name": {"anna"}, "password": {"guess"}})
		if p.status != 401 {
			t.Fatalf("attempt %d: %d", i+1, p.status)
		}
	}
	p := v.post("/login", url.Values{"name": {"anna"}, "password": {pw}})
	wantPage(t, p, 401, "locked")
	audit, _ := f.db.Audit(context.Background(), "operator:anna", 0)
	if len(audit) == 0 || audit[0].Action != "operator.locked" {
		t.Fatalf("lock-out not audited: %+v", audit)
	}
	// Other operators are not affected.
	v.login("tester", "tester-password")
}

func TestLoginRateLimitedPerAddress(t *testing.T) {
	f := newFixture(t, web.Options{})
	v := f.visitor(t)
	var last page
	for i := range 21 {
		last = v.post("/login", url.Values{"name": {"user" + string(rune('a'+i))}, "password": {"x"}})
	}
	wantPage(t, last, http.StatusTooManyRequests, "Too many login attempts")
}

func TestSessionExpiryAndLogout(t *testing.T) {
	f := newFixture(t, web.Options{})
	now := time.Now()
	f.db.Now = func() time.Time { return now }
	v := f.visitor(t)
	v.login("tester", "tester-password")
	wantPage(t, v.get("/batches"), 200, "Open a batch")

	now = now.Add(13 * time.Hour)
	p := v.get("/batches")
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/login") {
		t.Fatalf("after 13 idle hours: %d %s", p.status, p.location)
	}
	// A form sent with an ended session is refused with a plain page, nothing changes.
	p = v.post("/batches", url.Values{"station": {"demo"}})
	wantPage(t, p, 401, "log in again")
	if bs, _ := f.svc.Batches(context.Background(), serializer.BatchFilter{}); len(bs) != 0 {
		t.Fatalf("batches = %+v", bs)
	}

	now = time.Now()
	v.login("tester", "tester-password")
	p = v.post("/logout", nil)
	if p.status != http.StatusSeeOther || p.location != "/login" {
		t.Fatalf("logout = %d %s", p.status, p.location)
	}
	wantPage(t, v.get("/login"), 200, "You are logged out")
	if p := v.get("/batches"); p.status != http.StatusSeeOther {
		t.Fatalf("after logout /batches = %d", p.status)
	}
}

func TestLogoutEndsTheSessionOnTheServer(t *testing.T) {
	f := newFixture(t, web.Options{})
	v := f.visitor(t)
	v.login("tester", "tester-password")
	u, _ := url.Parse(v.base)
	var token string
	for _, c := range v.client.Jar.Cookies(u) {
		if c.Name == "serialbox_session" {
			token = c.Value
		}
	}
	if token == "" {
		t.Fatal("no session cookie")
	}
	v.post("/logout", nil)
	if _, err := f.accounts.Session(context.Background(), token); serializer.ErrorCode(err) != serializer.EUNAUTHENTICATED {
		t.Fatalf("session after logout: %v", err)
	}
	req := httptest.NewRequest("POST", "/api/v1/batches", strings.NewReader(`{"station":"demo"}`))
	req.RemoteAddr = "192.168.1.20:1"
	req.AddCookie(&http.Cookie{Name: "serialbox_session", Value: token})
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), `"code":"unauthenticated"`) {
		t.Fatalf("replayed cookie: %d %s", rec.Code, rec.Body.String())
	}
}

// Every state-changing API endpoint but the jig's needs an operator; void needs a supervisor.
func TestAPIAuth(t *testing.T) {
	f := newFixture(t, web.Options{})
	_, opKey := addOperator(t, f, "olga", serializer.RoleOperator)
	id := f.do(t, "POST", "/ioto/serialize", `{}`).str("id")
	v := f.visitor(t)
	v.login("tester", "tester-password")
	u, _ := url.Parse(v.base)
	var cookie string
	for _, c := range v.client.Jar.Cookies(u) {
		if c.Name == "serialbox_session" {
			cookie = c.Name + "=" + c.Value
		}
	}
	protected := []struct{ target, body string }{
		{"/api/v1/batches", `{"station":"demo"}`},
		{"/api/v1/batches/1/close", `{}`},
		{"/api/v1/batches/1/label", `{}`},
		{"/api/v1/batches/1/sync", `{}`},
		{"/api/v1/devices/" + id + "/reprint", `{"reason":"x"}`},
		{"/api/v1/devices/" + id + "/void", `{"reason":"x"}`},
		{"/api/v1/devices/" + id + "/verify", `{}`},
		{"/api/v1/jobs/1/resolve", `{"action":"resend","reason":"x"}`},
	}
	for _, p := range protected {
		t.Run(p.target, func(t *testing.T) {
			expectError(t, f.do(t, "POST", p.target, p.body), 401, serializer.EUNAUTHENTICATED)
			expectError(t, f.do(t, "POST", p.target, p.body, "Authorization", "Bearer sbk_wrong"), 401, serializer.EUNAUTHENTICATED)
			// The session cookie alone is not enough: a JSON POST needs the CSRF header too.
			expectError(t, f.do(t, "POST", p.target, p.body, "Cookie", cookie), 403, serializer.EFORBIDDEN)
			expectError(t, f.do(t, "POST", p.target, p.body, "Cookie", cookie, "X-CSRF-Token", "forged"), 403, serializer.EFORBIDDEN)
		})
	}
	// Operators may reprint but not void; supervisors may void. With the cookie and
	// its CSRF token, the page's own calls work.
	if a := f.do(t, "POST", "/api/v1/devices/"+id+"/reprint", `{"reason":"smudged"}`, "Authorization", "Bearer "+opKey); a.status != 201 {
		t.Fatalf("operator reprint: %d %s", a.status, a.raw)
	}
	expectError(t, f.do(t, "POST", "/api/v1/devices/"+id+"/void", `{"reason":"scrap"}`, "Authorization", "Bearer "+opKey), 403, serializer.EFORBIDDEN)
	if a := f.do(t, "POST", "/api/v1/devices/"+id+"/reprint", `{"reason":"again"}`, "Cookie", cookie, "X-CSRF-Token", v.csrf); a.status != 201 {
		t.Fatalf("cookie + CSRF reprint: %d %s", a.status, a.raw)
	}
	if a := f.op(t, "POST", "/api/v1/devices/"+id+"/void", `{"reason":"scrap"}`); a.status != 200 {
		t.Fatalf("supervisor void: %d %s", a.status, a.raw)
	}
	audit, _ := f.db.Audit(context.Background(), "device:"+id, 0)
	actors := map[string]bool{}
	for _, e := range audit {
		actors[e.Actor] = true
	}
	if !actors["olga"] || !actors["tester"] || len(actors) != 2 {
		t.Fatalf("audit actors = %v", actors)
	}
	// Reading stays open to the LAN, and the jig endpoints need no operator.
	if a := f.do(t, "GET", "/api/v1/devices/"+id, ""); a.status != 200 {
		t.Fatalf("GET device: %d", a.status)
	}
	if a := f.do(t, "POST", "/api/v1/serialize", `{}`); a.status != 200 {
		t.Fatalf("jig API: %d %s", a.status, a.raw)
	}
}

func TestVerifyAPI(t *testing.T) {
	f := newFixture(t, web.Options{}, serializer.Station{ID: "line1", ProductID: productID}, serializer.Station{ID: "line2", ProductID: productID})
	f.op(t, "POST", "/api/v1/batches", `{"station":"line1"}`)
	f.op(t, "POST", "/api/v1/batches", `{"station":"line2"}`)
	a := f.do(t, "POST", "/ioto/serialize?station=line1", `{}`).str("id")
	b := f.do(t, "POST", "/ioto/serialize?station=line2", `{}`).str("id")
	v := f.op(t, "POST", "/api/v1/devices/"+strings.ToLower(a)+"/verify", `{"batch":1}`)
	if v.status != 200 || v.str("state") != "verified" {
		t.Fatalf("verify = %d %s", v.status, v.raw)
	}
	expectError(t, f.op(t, "POST", "/api/v1/devices/"+a+"/verify", `{"batch":1}`), 409, serializer.EVERIFIED)
	expectError(t, f.op(t, "POST", "/api/v1/devices/"+b+"/verify", `{"batch":1}`), 409, serializer.EWRONGBATCH)
	expectError(t, f.op(t, "POST", "/api/v1/devices/ZZZZZZZZZZZZZZZZ/verify", ``), 404, serializer.ENOTFOUND)
	expectError(t, f.op(t, "POST", "/api/v1/devices/garbage/verify", ``), 400, serializer.EINVALID)
	expectError(t, f.op(t, "POST", "/api/v1/devices/"+b+"/verify", `{"batch":"x"}`), 400, serializer.EMALFORMED)
	if v := f.op(t, "POST", "/api/v1/devices/"+b+"/verify", ``); v.status != 200 {
		t.Fatalf("verify against the device's own station: %d %s", v.status, v.raw)
	}
	f.op(t, "POST", "/api/v1/devices/"+b+"/void", `{"reason":"scrap"}`)
	expectError(t, f.op(t, "POST", "/api/v1/devices/"+b+"/verify", `{"batch":2}`), 409, serializer.EVOIDED)
}
