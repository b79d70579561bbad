package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"serialbox/serializer"
	"serialbox/store"
	"serialbox/web"
)

const productID = "01H4R15D3478JD26YDYK408XE6"

// ioto is the Ioto agent's serialize request body, byte for byte (reference/ioto-serialize.md).
const iotoBody = `{"product":"TESTPRODUCT01","name":"SerialEval","description":"Factory serialization evaluation","model":"Eval-01"}`

type fixture struct {
	db       *store.DB
	svc      *serializer.Service
	srv      *web.Server
	accounts *serializer.Accounts
	key      string // API key of the supervisor "tester"
}

// newFixture serves a registry with the demo product, TESTPRODUCT01 and the given stations.
func newFixture(tb testing.TB, opts web.Options, stations ...serializer.Station) *fixture {
	tb.Helper()
	db, err := store.Open(context.Background(), filepath.Join(tb.TempDir(), "serialbox.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if len(stations) == 0 {
		stations = []serializer.Station{{ID: "demo", ProductID: productID, AutoBatch: true}}
	}
	svc := serializer.NewService(db, nil)
	if err := svc.SetCatalog(context.Background(), serializer.Catalog{
		Products: []serializer.Product{{ID: productID, Name: "Demo Widget", Model: "Demo-01"}, {ID: "TESTPRODUCT01", Name: "Eval"}},
		Stations: stations,
	}); err != nil {
		tb.Fatal(err)
	}
	opts.DB = db
	accounts := serializer.NewAccounts(db)
	accounts.Cost = bcrypt.MinCost
	_, key, err := accounts.AddOperator(context.Background(), "tester", serializer.RoleSupervisor, "tester-password", true, "test")
	if err != nil {
		tb.Fatal(err)
	}
	if opts.Accounts == nil {
		opts.Accounts = accounts
	}
	if opts.Line == nil {
		opts.Line = db
	}
	return &fixture{db: db, svc: svc, srv: web.New(svc, opts), accounts: accounts, key: key}
}

type answer struct {
	status int
	body   map[string]any
	raw    string
}

func (a answer) str(key string) string { s, _ := a.body[key].(string); return s }

// do sends one request in-process, from a LAN address unless remote is given.
func (f *fixture) do(tb testing.TB, method, target, body string, hdr ...string) answer {
	tb.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.RemoteAddr = "192.168.1.20:50000"
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "RemoteAddr" {
			req.RemoteAddr = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	a := answer{status: rec.Code, raw: rec.Body.String()}
	if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil && method != http.MethodHead {
		tb.Fatalf("%s %s: answer is not JSON: %q", method, target, rec.Body.String())
	}
	return a
}

// op sends one request as the supervisor "tester", with their API key.
func (f *fixture) op(tb testing.TB, method, target, body string, hdr ...string) answer {
	tb.Helper()
	return f.do(tb, method, target, body, append([]string{"Authorization", "Bearer " + f.key}, hdr...)...)
}

// expectError checks a refusal: its status, its code, a message, and never an id.
func expectError(tb testing.TB, a answer, status int, code string) {
	tb.Helper()
	if a.status != status || a.str("code") != code || a.str("error") == "" {
		tb.Fatalf("answer = %d %s; want %d with code %q and a message", a.status, a.raw, status, code)
	}
	if _, has := a.body["id"]; has {
		tb.Fatalf("error answer carries an id: %s", a.raw)
	}
}

func TestIotoSerializeAnswersAnID(t *testing.T) {
	f := newFixture(t, web.Options{}, serializer.Station{ID: "demo", ProductID: "TESTPRODUCT01", AutoBatch: true})
	a := f.do(t, "POST", "/ioto/serialize", iotoBody, "Content-Type", "application/json")
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.raw)
	}
	id := a.str("id")
	uci, err := serializer.Parse(id)
	if err != nil || len(id) != 16 || uci.String() != id {
		t.Fatalf("id %q is not a canonical 16-symbol UCI: %v", id, err)
	}
	if a.str("product") != "TESTPRODUCT01" || a.str("station") != "demo" || a.body["batch"] == nil {
		t.Fatalf("answer = %s", a.raw)
	}
	// The device object is stored as the jig sent it.
	d, err := f.db.Device(context.Background(), uci)
	if err != nil || string(d.Attributes) != iotoBody || d.Identity != "" {
		t.Fatalf("stored device = %+v, %v", d, err)
	}
	// An empty body is the agent's "{}" and names no product: the station's is used.
	if a := f.do(t, "POST", "/ioto/serialize", ""); a.status != 200 || a.str("product") != "TESTPRODUCT01" {
		t.Fatalf("empty body: %d %s", a.status, a.raw)
	}
}

func TestIotoSerializeErrors(t *testing.T) {
	stations := []serializer.Station{
		{ID: "demo", ProductID: productID, AutoBatch: true, Default: true},
		{ID: "locked", ProductID: productID, AutoBatch: true, Token: "t0ken"},
		{ID: "manual", ProductID: productID},
		{ID: "small", ProductID: productID},
		{ID: "strict", ProductID: productID, AutoBatch: true, RequireIdentity: true},
	}
	f := newFixture(t, web.Options{}, stations...)
	if a := f.do(t, "POST", "/ioto/serialize?key=line1", `{"hwid":"UNIT-A"}`); a.status != 200 {
		t.Fatalf("unit A: %d %s", a.status, a.raw)
	}
	if _, err := f.svc.OpenBatch(context.Background(), serializer.OpenBatchRequest{StationID: "small", Planned: 1}, "test"); err != nil {
		t.Fatal(err)
	}
	if a := f.do(t, "POST", "/ioto/serialize?station=small", `{}`); a.status != 200 {
		t.Fatalf("filling the small batch: %d %s", a.status, a.raw)
	}
	big := `{"product":"` + productID + `","pad":"` + strings.Repeat("x", web.MaxJigBody) + `"}`
	for _, tc := range []struct {
		name, target, body string
		hdr                []string
		status             int
		code               string
	}{
		{"truncated JSON", "/ioto/serialize", `{"product":`, nil, 400, serializer.EMALFORMED},
		{"array", "/ioto/serialize", `[1,2]`, nil, 400, serializer.EMALFORMED},
		{"string", "/ioto/serialize", `"hello"`, nil, 400, serializer.EMALFORMED},
		{"null", "/ioto/serialize", `null`, nil, 400, serializer.EMALFORMED},
		{"trailing garbage", "/ioto/serialize", `{} x`, nil, 400, serializer.EMALFORMED},
		{"not UTF-8", "/ioto/serialize", "{\"name\":\"\xff\"}", nil, 400, serializer.EMALFORMED},
		{"product not a string", "/ioto/serialize", `{"product":{"a":1}}`, nil, 400, serializer.EINVALID},
		{"hwid not a string", "/ioto/serialize", `{"hwid":[1]}`, nil, 400, serializer.EINVALID},
		{"bad MAC", "/ioto/serialize", `{"mac":"not-a-mac"}`, nil, 400, serializer.EINVALID},
		{"two keys", "/ioto/serialize?key=a", `{}`, []string{"Idempotency-Key", "b"}, 400, serializer.EINVALID},
		{"identity too long", "/ioto/serialize", `{"hwid":"` + strings.Repeat("h", 300) + `"}`, nil, 400, serializer.EINVALID},
		{"unknown product", "/ioto/serialize", `{"product":"NOPE"}`, nil, 422, serializer.EUNKNOWNPRODUCT},
		{"unknown station", "/ioto/serialize?station=nope", `{}`, nil, 422, serializer.EUNKNOWNSTATION},
		{"missing token", "/ioto/serialize?station=locked", `{}`, nil, 401, serializer.EUNAUTHORIZED},
		{"wrong token", "/ioto/serialize?station=locked&token=guess", `{}`, nil, 401, serializer.EUNAUTHORIZED},
		{"wrong bearer", "/ioto/serialize?station=locked", `{}`, []string{"Authorization", "Bearer guess"}, 401, serializer.EUNAUTHORIZED},
		{"no open batch", "/ioto/serialize?station=manual", `{}`, nil, 409, serializer.ENOBATCH},
		{"batch full", "/ioto/serialize?station=small", `{}`, nil, 409, serializer.EBATCHFULL},
		{"other product than the batch", "/ioto/serialize?station=small", `{"product":"TESTPRODUCT01"}`, nil, 409, serializer.EMISMATCH},
		{"too large", "/ioto/serialize", big, nil, 413, serializer.ETOOLARGE},
		{"no identity at a station that requires one", "/ioto/serialize?station=strict", `{"product":"` + productID + `"}`, nil, 422, serializer.EIDENTITYREQUIRED},
		{"shared URL key names another unit", "/ioto/serialize?key=line1", `{"hwid":"UNIT-B"}`, nil, 409, serializer.ECONFLICT},
		{"header key names another unit", "/ioto/serialize", `{"hwid":"UNIT-B"}`, []string{"Idempotency-Key", "line1"}, 409, serializer.ECONFLICT},
		{"structured body null", "/api/v1/serialize", `null`, nil, 400, serializer.EMALFORMED},
		{"structured key names another unit", "/api/v1/serialize", `{"key":"line1","serial":"S-B"}`, nil, 409, serializer.ECONFLICT},
		{"GET", "/ioto/serialize", ``, nil, 405, serializer.EMETHOD},
		{"no such path", "/ioto/serialise", `{}`, nil, 404, serializer.ENOTFOUND},
		{"public source", "/ioto/serialize", `{}`, []string{"RemoteAddr", "203.0.113.7:4000"}, 403, serializer.EFORBIDDEN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := "POST"
			if tc.name == "GET" {
				method = "GET"
			}
			before, _ := f.db.DeviceCount(context.Background())
			expectError(t, f.do(t, method, tc.target, tc.body, tc.hdr...), tc.status, tc.code)
			if after, _ := f.db.DeviceCount(context.Background()); after != before {
				t.Fatalf("a refused request left %d device rows", after-before)
			}
		})
	}
	// The right token, in either place, is served.
	for _, a := range []answer{
		f.do(t, "POST", "/ioto/serialize?station=locked&token=t0ken", `{}`),
		f.do(t, "POST", "/ioto/serialize?station=locked", `{}`, "Authorization", "Bearer t0ken"),
	} {
		if a.status != 200 || a.str("id") == "" {
			t.Fatalf("right token: %d %s", a.status, a.raw)
		}
	}
}

// A body over the limit without a Content-Length (chunked) is refused too.
func TestIotoSerializeChunkedBodyOverLimit(t *testing.T) {
	f := newFixture(t, web.Options{})
	req := httptest.NewRequest("POST", "/ioto/serialize", io.MultiReader(strings.NewReader(`{"x":"`), strings.NewReader(strings.Repeat("y", web.MaxJigBody)), strings.NewReader(`"}`)))
	req.ContentLength = -1
	req.RemoteAddr = "127.0.0.1:1"
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	if rec.Code != 413 || !strings.Contains(rec.Body.String(), `"code":"too_large"`) {
		t.Fatalf("answer = %d %s", rec.Code, rec.Body.String())
	}
}

func TestIdentityGetsTheSameUCI(t *testing.T) {
	f := newFixture(t, web.Options{})
	for _, tc := range []struct {
		name         string
		first, again []string // target, body, headers...
	}{
		{"hwid", []string{"/ioto/serialize", `{"hwid":"HW-1"}`}, []string{"/ioto/serialize", `{"hwid":"HW-1","name":"other"}`}},
		{"numeric serial", []string{"/ioto/serialize", `{"serial":123456}`}, []string{"/ioto/serialize", `{"serial":"123456"}`}},
		{"MAC in two spellings", []string{"/ioto/serialize", `{"mac":"AA-BB-CC-DD-EE-01"}`}, []string{"/ioto/serialize", `{"mac":"aa:bb:cc:dd:ee:01"}`}},
		{"query key", []string{"/ioto/serialize?key=K1", `{}`}, []string{"/ioto/serialize?key=K1", `{}`}},
		{"header key", []string{"/ioto/serialize", `{}`, "Idempotency-Key", "K2"}, []string{"/ioto/serialize", `{}`, "Idempotency-Key", "K2"}},
		{"key across endpoints", []string{"/ioto/serialize?key=K3", `{}`}, []string{"/api/v1/serialize", `{"key":"K3"}`}},
		{"hwid across endpoints", []string{"/ioto/serialize", `{"hwid":"HW-9"}`}, []string{"/api/v1/serialize", `{"hwid":"HW-9"}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := f.do(t, "POST", tc.first[0], tc.first[1], tc.first[2:]...)
			b := f.do(t, "POST", tc.again[0], tc.again[1], tc.again[2:]...)
			if a.status != 200 || b.status != 200 || a.str("id") == "" || a.str("id") != b.str("id") {
				t.Fatalf("first %d %s, again %d %s: want the same id", a.status, a.raw, b.status, b.raw)
			}
			if b.body["existing"] != true {
				t.Fatalf("the repeat is not marked existing: %s", b.raw)
			}
		})
	}
	// Without identity every request is a new device.
	a, b := f.do(t, "POST", "/ioto/serialize", `{"name":"x"}`), f.do(t, "POST", "/ioto/serialize", `{"name":"x"}`)
	if a.status != 200 || b.status != 200 || a.str("id") == b.str("id") {
		t.Fatal("two requests without identity got the same UCI")
	}
}

func TestAPISerialize(t *testing.T) {
	f := newFixture(t, web.Options{})
	a := f.do(t, "POST", "/api/v1/serialize", `{"station":"demo","product":"`+productID+`","serial":"SN1","attributes":{"fw":"1.2.3"}}`)
	if a.status != 200 || len(a.str("id")) != 16 || a.str("station") != "demo" {
		t.Fatalf("answer = %d %s", a.status, a.raw)
	}
	d, err := f.db.Device(context.Background(), serializer.MustParse(a.str("id")))
	if err != nil || d.Identity != "serial:SN1" || string(d.Attributes) != `{"fw":"1.2.3"}` {
		t.Fatalf("device = %+v, %v", d, err)
	}
	expectError(t, f.do(t, "POST", "/api/v1/serialize", `{"stationn":"demo"}`), 400, serializer.EMALFORMED)
	expectError(t, f.do(t, "POST", "/api/v1/serialize", `{"attributes":[1]}`), 400, serializer.EINVALID)
	expectError(t, f.do(t, "POST", "/api/v1/serialize", `{"station":7}`), 400, serializer.EMALFORMED)
}

func TestDeviceLookup(t *testing.T) {
	f := newFixture(t, web.Options{})
	id := f.do(t, "POST", "/ioto/serialize", `{"hwid":"H1"}`).str("id")
	u := serializer.MustParse(id)
	for _, typed := range []string{id, strings.ToLower(u.Grouped()), u.WithCheck(), strings.ReplaceAll(u.Grouped(), "-", "%20")} {
		a := f.do(t, "GET", "/api/v1/devices/"+typed, "")
		dev, _ := a.body["device"].(map[string]any)
		if a.status != 200 || dev["id"] != id || dev["state"] != "issued" || a.str("display") != u.Grouped() {
			t.Fatalf("lookup %q = %d %s", typed, a.status, a.raw)
		}
		if jobs, _ := a.body["label_jobs"].([]any); len(jobs) != 1 {
			t.Fatalf("lookup %q: label jobs = %v", typed, a.body["label_jobs"])
		}
	}
	expectError(t, f.do(t, "GET", "/api/v1/devices/ZZZZZZZZZZZZZZZZ", ""), 404, serializer.ENOTFOUND)
	expectError(t, f.do(t, "GET", "/api/v1/devices/not-a-uci", ""), 400, serializer.EINVALID)
}

func TestBatchesAPI(t *testing.T) {
	f := newFixture(t, web.Options{}, serializer.Station{ID: "line1", ProductID: productID}, serializer.Station{ID: "line2"})
	a := f.op(t, "POST", "/api/v1/batches", `{"station":"line1","planned":2}`)
	if a.status != 201 || a.str("state") != "open" || a.str("product") != productID {
		t.Fatalf("open = %d %s", a.status, a.raw)
	}
	id := int64(a.body["id"].(float64))
	expectError(t, f.op(t, "POST", "/api/v1/batches", `{"station":"line1"}`), 409, serializer.ECONFLICT)
	expectError(t, f.op(t, "POST", "/api/v1/batches", `{"station":"line2"}`), 400, serializer.EINVALID)
	expectError(t, f.op(t, "POST", "/api/v1/batches", `{"station":"line2","product":"NOPE"}`), 422, serializer.EUNKNOWNPRODUCT)
	expectError(t, f.op(t, "POST", "/api/v1/batches", `{"station":"line9"}`), 422, serializer.EUNKNOWNSTATION)
	expectError(t, f.op(t, "POST", "/api/v1/batches", `{"station":"line2","product":"TESTPRODUCT01","planned":-1}`), 400, serializer.EINVALID)
	expectError(t, f.op(t, "POST", "/api/v1/batches", `{"station":"line2","size":3}`), 400, serializer.EMALFORMED)

	for range 2 {
		if a := f.do(t, "POST", "/ioto/serialize?station=line1", `{}`); a.status != 200 {
			t.Fatalf("serialize: %d %s", a.status, a.raw)
		}
	}
	b := f.do(t, "GET", fmt.Sprintf("/api/v1/batches/%d", id), "")
	counts, _ := b.body["counts"].(map[string]any)
	if b.status != 200 || counts["issued"] != 2.0 || counts["labeled"] != 0.0 || b.body["planned"] != 2.0 {
		t.Fatalf("batch = %d %s", b.status, b.raw)
	}
	list := f.do(t, "GET", "/api/v1/batches?station=line1&state=open", "")
	if got, _ := list.body["batches"].([]any); list.status != 200 || len(got) != 1 {
		t.Fatalf("list = %d %s", list.status, list.raw)
	}
	expectError(t, f.do(t, "GET", "/api/v1/batches?state=half", ""), 400, serializer.EINVALID)
	expectError(t, f.do(t, "GET", "/api/v1/batches?limit=0", ""), 400, serializer.EINVALID)

	c := f.op(t, "POST", fmt.Sprintf("/api/v1/batches/%d/close", id), `{"reason":"shift end"}`)
	if c.status != 200 || c.str("state") != "closed" || c.body["closed_at"] == nil {
		t.Fatalf("close = %d %s", c.status, c.raw)
	}
	expectError(t, f.op(t, "POST", fmt.Sprintf("/api/v1/batches/%d/close", id), ``), 409, serializer.ECONFLICT)
	expectError(t, f.do(t, "GET", "/api/v1/batches/999", ""), 404, serializer.ENOTFOUND)
	expectError(t, f.do(t, "GET", "/api/v1/batches/x", ""), 400, serializer.EINVALID)
	audit, _ := f.db.Audit(context.Background(), fmt.Sprintf("batch:%d", id), 0)
	if len(audit) != 2 || audit[0].Action != "batch.close" || audit[0].Reason != "shift end" || audit[0].Actor != "tester" {
		t.Fatalf("audit = %+v", audit)
	}
	st := f.do(t, "GET", "/api/v1/stations", "")
	if got, _ := st.body["stations"].([]any); st.status != 200 || len(got) != 2 || strings.Contains(st.raw, "token") {
		t.Fatalf("stations = %d %s", st.status, st.raw)
	}
}

func TestLANOnly(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1", true}, {"::1", true}, {"10.1.2.3", true}, {"172.16.0.9", true}, {"172.31.255.1", true},
		{"192.168.0.1", true}, {"169.254.10.10", true}, {"fe80::1", true}, {"fd12:3456::1", true},
		{"::ffff:192.168.1.1", true}, {"8.8.8.8", false}, {"172.32.0.1", false}, {"2001:db8::1", false},
		{"100.64.0.1", false}, {"::ffff:8.8.8.8", false},
	} {
		if got := web.Allowed(netip.MustParseAddr(tc.addr).Unmap(), nil); got != tc.want {
			t.Errorf("Allowed(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	allow, err := web.ParseAllow([]string{"100.64.0.0/10", "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	if !web.Allowed(netip.MustParseAddr("100.64.3.4"), allow) || !web.Allowed(netip.MustParseAddr("203.0.113.7"), allow) || web.Allowed(netip.MustParseAddr("203.0.113.8"), allow) {
		t.Fatal("allow list not applied")
	}
	if _, err := web.ParseAllow([]string{"10.0.0.0/33"}); err == nil {
		t.Fatal("bad network accepted")
	}

	f := newFixture(t, web.Options{Allow: allow})
	for _, remote := range []string{"[fe80::1%eth0]:5000", "100.64.3.4:1", "[::1]:2"} {
		if a := f.do(t, "POST", "/ioto/serialize", `{}`, "RemoteAddr", remote); a.status != 200 {
			t.Errorf("from %s: %d %s", remote, a.status, a.raw)
		}
	}
	for _, remote := range []string{"8.8.8.8:53", "[2001:db8::1]:80"} {
		expectError(t, f.do(t, "GET", "/healthz", "", "RemoteAddr", remote), 403, serializer.EFORBIDDEN)
	}
	// Forwarding headers do not make a public client local.
	expectError(t, f.do(t, "POST", "/ioto/serialize", `{}`, "RemoteAddr", "8.8.8.8:53", "X-Forwarded-For", "127.0.0.1", "X-Real-Ip", "10.0.0.1"), 403, serializer.EFORBIDDEN)
}

func TestHealth(t *testing.T) {
	f := newFixture(t, web.Options{})
	if a := f.do(t, "GET", "/healthz", ""); a.status != 200 || a.str("status") != "ok" {
		t.Fatalf("healthz = %d %s", a.status, a.raw)
	}
	f.db.Close()
	expectError(t, f.do(t, "GET", "/healthz", ""), 503, serializer.EUNAVAILABLE)
}

// 64 jigs issue 1,000 UCIs each over real HTTP: every answer 200, every UCI distinct,
// every one in the database.
func TestConcurrentJigs(t *testing.T) {
	jigs, each := 64, 1000
	if testing.Short() {
		each = 50
	}
	f := newFixture(t, web.Options{})
	ts := httptest.NewServer(f.srv)
	defer ts.Close()
	client := ts.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = jigs

	var (
		mu   sync.Mutex
		ids  = make(map[string]bool, jigs*each)
		wg   sync.WaitGroup
		fail = make(chan string, jigs)
	)
	for j := range jigs {
		wg.Go(func() {
			for i := range each {
				resp, err := client.Post(ts.URL+"/ioto/serialize", "application/json", strings.NewReader(`{"name":"SerialEval","model":"Eval-01"}`))
				if err != nil {
					fail <- err.Error()
					return
				}
				var out struct{ ID string }
				err = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if resp.StatusCode != 200 || err != nil || len(out.ID) != 16 {
					fail <- fmt.Sprintf("jig %d request %d: %d %q %v", j, i, resp.StatusCode, out.ID, err)
					return
				}
				mu.Lock()
				dup := ids[out.ID]
				ids[out.ID] = true
				mu.Unlock()
				if dup {
					fail <- "duplicate UCI " + out.ID
					return
				}
			}
		})
	}
	wg.Wait()
	close(fail)
	for msg := range fail {
		t.Fatal(msg)
	}
	if len(ids) != jigs*each {
		t.Fatalf("%d distinct UCIs, want %d", len(ids), jigs*each)
	}
	n, err := f.db.DeviceCount(context.Background())
	if err != nil || n != int64(jigs*each) {
		t.Fatalf("database holds %d devices (%v), want %d", n, err, jigs*each)
	}
	for id := range ids {
		if _, err := f.db.Device(context.Background(), serializer.MustParse(id)); err != nil {
			t.Fatalf("answered UCI %s is not in the database: %v", id, err)
		}
	}
}
