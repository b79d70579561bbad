package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAppliance answers POST /ioto/serialize like serialbox: a random 16-symbol UCI per
// device, the same one again for a known hwid. Its hooks break it on purpose.
type fakeAppliance struct {
	t *testing.T

	// Fail, when set, may answer request n (from 1) itself and return true.
	Fail func(n int, w http.ResponseWriter, r *http.Request) bool
	// NextID, when set, chooses the UCI of a new device instead of a random one.
	NextID func(n int) string
	// IgnoreIdentity issues a new UCI for every request, hwid or not.
	IgnoreIdentity bool
	// Record, when set, is called with each new device under the lock.
	Record func(uci, hwid string)

	mu       sync.Mutex
	requests int
	byHWID   map[string]string
	asks     map[string]int // requests per hwid that got an answer
	issued   []string
	queries  map[string]int // raw query strings seen
	bodies   map[string]int // request bodies seen, hwid removed
	badReqs  []string
}

func newFake(t *testing.T) *fakeAppliance {
	return &fakeAppliance{
		t:       t,
		byHWID:  map[string]string{},
		asks:    map[string]int{},
		queries: map[string]int{},
		bodies:  map[string]int{},
	}
}

// start serves the fake on a loopback port until the test ends.
func (f *fakeAppliance) start() *httptest.Server {
	srv := httptest.NewServer(f)
	f.t.Cleanup(srv.Close)
	return srv
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

func randomUCI() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = crockford[b[i]%32]
	}
	return string(b[:])
}

func (f *fakeAppliance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests++
	n := f.requests
	f.queries[r.URL.RawQuery]++
	var obj map[string]any
	if r.Method != http.MethodPost || r.URL.Path != "/ioto/serialize" ||
		r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &obj) != nil {
		f.badReqs = append(f.badReqs, fmt.Sprintf("%s %s %q %s", r.Method, r.URL, r.Header.Get("Content-Type"), body))
	}
	hwid, _ := obj["hwid"].(string)
	f.bodies[strings.Replace(string(body), `,"hwid":"`+hwid+`"`, "", 1)]++
	f.mu.Unlock()

	if f.Fail != nil && f.Fail(n, w, r) {
		return
	}

	f.mu.Lock()
	id, known := f.byHWID[hwid]
	if !known || hwid == "" || f.IgnoreIdentity {
		id = randomUCI()
		if f.NextID != nil {
			id = f.NextID(n)
		}
		if hwid != "" {
			f.byHWID[hwid] = id
		}
		f.issued = append(f.issued, id)
		if f.Record != nil {
			f.Record(id, hwid)
		}
	}
	if hwid != "" {
		f.asks[hwid]++
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":%q,"batch":1,"product":"P1","station":"demo","existing":%v}`, id, known)
}

// dropConnection closes the connection without an answer, as a crashing appliance would.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

func jsonError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":"the database cannot be written","code":%q}`, code)
}

// jigsim runs the command and returns its exit status, standard output and error.
func jigsim(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

var summaryLine = regexp.MustCompile(`^(\d+) ucis/s p50=(\d+\.\d)ms p90=(\d+\.\d)ms p99=(\d+\.\d)ms max=(\d+\.\d)ms errors=(\d+) duplicates=(\d+)$`)

// finalLine is the summary's last line, parsed back.
type finalLine struct {
	rate               int
	p50, p90, p99, max float64
	errors, duplicates int
}

func parseFinal(t *testing.T, stdout string) finalLine {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	last := lines[len(lines)-1]
	m := summaryLine.FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q is not a summary line; output:\n%s", last, stdout)
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	atof := func(s string) float64 { f, _ := strconv.ParseFloat(s, 64); return f }
	f := finalLine{rate: atoi(m[1]), p50: atof(m[2]), p90: atof(m[3]), p99: atof(m[4]), max: atof(m[5]),
		errors: atoi(m[6]), duplicates: atoi(m[7])}
	if f.p50 > f.p90 || f.p90 > f.p99 || f.p99 > f.max {
		t.Errorf("latencies out of order in %q", last)
	}
	return f
}

func parseJSON(t *testing.T, stdout string) Summary {
	t.Helper()
	var s Summary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("--json output is not a summary: %v\n%s", err, stdout)
	}
	return s
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func TestCountDistinctAndSummary(t *testing.T) {
	f := newFake(t)
	srv := f.start()
	out := filepath.Join(t.TempDir(), "ucis.txt")
	code, stdout, stderr := jigsim(t, "--url", srv.URL+"/ioto/serialize", "--jigs", "16", "--count", "500",
		"--product", "P1", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d, want 0; stderr: %s", code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr not empty: %s", stderr)
	}
	fl := parseFinal(t, stdout)
	if fl.errors != 0 || fl.duplicates != 0 || fl.rate <= 0 || fl.max <= 0 {
		t.Errorf("final line %+v", fl)
	}
	if !strings.Contains(stdout, "500 distinct from 500 devices") {
		t.Errorf("summary does not count 500 UCIs:\n%s", stdout)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.requests != 500 || len(f.issued) != 500 {
		t.Errorf("appliance saw %d requests, issued %d; want 500", f.requests, len(f.issued))
	}
	if len(f.badReqs) > 0 {
		t.Errorf("not Ioto-agent requests: %q", f.badReqs[0])
	}
	want := `{"product":"P1","name":"SerialEval","model":"Eval-01"}`
	if f.bodies[want] != 500 {
		t.Errorf("bodies = %v, want %d times %s", f.bodies, 500, want)
	}

	lines := readLines(t, out)
	if len(lines) != 500 {
		t.Fatalf("--out has %d lines, want 500", len(lines))
	}
	issued := map[string]bool{}
	for _, id := range f.issued {
		issued[id] = true
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if !issued[l] || seen[l] {
			t.Fatalf("--out line %q not issued or repeated", l)
		}
		seen[l] = true
	}
}

func TestDuration(t *testing.T) {
	f := newFake(t)
	srv := f.start()
	start := time.Now()
	code, stdout, stderr := jigsim(t, "--url", srv.URL+"/ioto/serialize", "--jigs", "8", "--duration", "300ms", "--json")
	if code != exitOK {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a 300ms run took %v", took)
	}
	s := parseJSON(t, stdout)
	if s.UCIs == 0 || s.UCIs != s.Devices || s.Requests != s.OK || s.ElapsedSeconds < 0.3 {
		t.Errorf("summary %+v", s)
	}
	if s.LatencyMS.P50 <= 0 || s.LatencyMS.Max < s.LatencyMS.P99 || s.UCIsPerSecond <= 0 {
		t.Errorf("latency %+v, rate %v", s.LatencyMS, s.UCIsPerSecond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Without --product the device object names none, and the station's default applies.
	if want := `{"name":"SerialEval","model":"Eval-01"}`; f.bodies[want] != f.requests {
		t.Errorf("bodies = %v, want only %s", f.bodies, want)
	}
}

func TestRetriesWithIdentitiesGetTheSameUCI(t *testing.T) {
	f := newFake(t)
	srv := f.start()
	code, stdout, stderr := jigsim(t, "--url", srv.URL+"/ioto/serialize", "--jigs", "20", "--count", "100",
		"--product", "P1", "--identities", "--retries", "3", "--run-id", "t1", "--json")
	if code != exitOK {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	s := parseJSON(t, stdout)
	if s.Requests != 400 || s.OK != 400 || s.Devices != 100 || s.UCIs != 100 || s.Repeats != 300 ||
		s.IdentityMismatches != 0 || s.Duplicates != 0 || s.ErrorCount != 0 {
		t.Errorf("summary %+v", s)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.asks) != 100 || len(f.issued) != 100 {
		t.Fatalf("%d identities, %d UCIs; want 100 each", len(f.asks), len(f.issued))
	}
	for hwid, n := range f.asks {
		if n != 4 || !regexp.MustCompile(`^jigsim-t1-\d+-\d+$`).MatchString(hwid) {
			t.Errorf("identity %q asked %d times, want 4", hwid, n)
		}
	}
}

func TestIdentityGotTwoUCIs(t *testing.T) {
	f := newFake(t)
	f.IgnoreIdentity = true
	srv := f.start()
	code, stdout, stderr := jigsim(t, "--url", srv.URL+"/ioto/serialize", "--jigs", "2", "--count", "4",
		"--identities", "--retries", "1")
	if code != exitFailed {
		t.Fatalf("exit %d, want 1; stderr: %s", code, stderr)
	}
	if !strings.Contains(stderr, "got two UCIs") {
		t.Errorf("stderr does not name the mismatch: %s", stderr)
	}
	if !strings.Contains(stdout, "identity_mismatch=4") {
		t.Errorf("mismatches not counted:\n%s", stdout)
	}
}

func TestDuplicateUCI(t *testing.T) {
	f := newFake(t)
	f.NextID = func(n int) string {
		if n <= 2 {
			return "AAAAAAAAAAAAAAAA"
		}
		return randomUCI()
	}
	srv := f.start()
	code, stdout, stderr := jigsim(t, "--url", srv.URL+"/ioto/serialize", "--jigs", "4", "--count", "50")
	if code != exitFailed {
		t.Fatalf("exit %d, want 1; stderr: %s", code, stderr)
	}
	fl := parseFinal(t, stdout)
	if fl.duplicates != 1 || fl.errors != 0 {
		t.Errorf("final line %+v, want duplicates=1 errors=0", fl)
	}
	if !strings.Contains(stderr, "AAAAAAAAAAAAAAAA was acknowledged to two devices") {
		t.Errorf("stderr does not name the duplicate: %s", stderr)
	}
	if !strings.Contains(stdout, "49 distinct from 50 devices") {
		t.Errorf("summary:\n%s", stdout)
	}
}

func TestErrorsAreCountedAndRetried(t *testing.T) {
	f := newFake(t)
	f.Fail = func(n int, w http.ResponseWriter, r *http.Request) bool {
		switch {
		case n%5 == 0:
			jsonError(w, http.StatusServiceUnavailable, "unavailable")
		case n%7 == 0:
			dropConnection(w)
		case n == 3:
			http.Error(w, "boom", http.StatusInternalServerError)
		case n == 4:
			w.WriteHeader(http.StatusCreated) // the agent takes only 200
			fmt.Fprint(w, `{"id":"ZZZZZZZZZZZZZZZZ"}`)
		default:
			return false
		}
		return true
	}
	srv := f.start()
	code, stdout, stderr := jigsim(t, "--url", srv.URL+"/ioto/serialize", "--jigs", "8", "--count", "200",
		"--identities", "--retry-delay", "1ms", "--json")
	if code != exitErrors {
		t.Fatalf("exit %d, want 3; stderr: %s\n%s", code, stderr, stdout)
	}
	s := parseJSON(t, stdout)
	if s.Devices != 200 || s.UCIs != 200 || s.Duplicates != 0 {
		t.Errorf("summary %+v", s)
	}
	if s.Errors["unavailable"] == 0 || s.Errors["transport"] == 0 || s.Errors["http_500"] != 1 || s.Errors["http_201"] != 1 {
		t.Errorf("errors by code = %v", s.Errors)
	}
	if s.Requests != s.OK+s.ErrorCount || s.OK != 200 {
		t.Errorf("requests %d = ok %d + errors %d?", s.Requests, s.OK, s.ErrorCount)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.requests != s.Requests {
		t.Errorf("appliance saw %d requests, jigsim counted %d", f.requests, s.Requests)
	}
	// Every failed request was asked again for the same device: each identity got one UCI.
	if len(f.issued) != 200 {
		t.Errorf("%d UCIs issued for 200 devices", len(f.issued))
	}
}

func TestEmptyIDIsAnError(t *testing.T) {
	f := newFake(t)
	f.Fail = func(n int, w http.ResponseWriter, r *http.Request) bool {
		switch n {
		case 1:
			fmt.Fprint(w, `{"id":""}`)
		case 2:
			fmt.Fprint(w, `{"id":null}`)
		case 3:
			fmt.Fprint(w, `{"id":42}`)
		case 4:
			fmt.Fprint(w, `not json`)
		default:
			return false
		}
		return true
	}
	srv := f.start()
	code, stdout, stderr := jigsim(t, "--url", srv.URL+"/ioto/serialize", "--jigs", "1", "--count", "3",
		"--retry-delay", "1ms")
	if code != exitErrors {
		t.Fatalf("exit %d, want 3; stderr: %s", code, stderr)
	}
	if fl := parseFinal(t, stdout); fl.errors != 4 || fl.duplicates != 0 {
		t.Errorf("final line %+v, want errors=4", fl)
	}
	if !strings.Contains(stdout, "no_id=4") || !strings.Contains(stdout, "3 distinct from 3 devices") {
		t.Errorf("summary:\n%s", stdout)
	}
}

func TestTimeout(t *testing.T) {
	f := newFake(t)
	f.Fail = func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n != 1 {
			return false
		}
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
		return true
	}
	srv := f.start()
	code, stdout, stderr := jigsim(t, "--url", srv.URL+"/ioto/serialize", "--jigs", "1", "--count", "2",
		"--timeout", "100ms", "--retry-delay", "1ms")
	if code != exitErrors {
		t.Fatalf("exit %d, want 3; stderr: %s", code, stderr)
	}
	if !strings.Contains(stdout, "errors     timeout=1") {
		t.Errorf("summary:\n%s", stdout)
	}
}

func TestStations(t *testing.T) {
	f := newFake(t)
	srv := f.start()
	code, _, stderr := jigsim(t, "--url", srv.URL+"/ioto/serialize?token=s3cret", "--jigs", "4", "--count", "40",
		"--stations", "line1, line2")
	if code != exitOK {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) != 2 || f.queries["station=line1&token=s3cret"] == 0 || f.queries["station=line2&token=s3cret"] == 0 {
		t.Errorf("queries = %v", f.queries)
	}
}

// recordingDB is a small stand-in for the appliance's registry.
func recordingDB(t *testing.T) (string, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "serialbox.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE devices (
		id INTEGER PRIMARY KEY, uci TEXT NOT NULL UNIQUE, batch_id INTEGER NOT NULL,
		product_id TEXT NOT NULL, station_id TEXT NOT NULL, identity TEXT)`); err != nil {
		t.Fatal(err)
	}
	return path, db
}

func TestVerifyDB(t *testing.T) {
	tests := []struct {
		name       string
		identities bool
		skip       int // the n-th new device is not recorded
		wrongIdent int // the n-th new device is recorded under another identity
		wantCode   int
		wantLine   string
	}{
		{"all present", false, 0, 0, exitOK, "database   120 UCIs checked, 0 missing, 0 under another identity"},
		{"all present with identities", true, 0, 0, exitOK, "database   120 UCIs checked, 0 missing, 0 under another identity"},
		{"one missing", false, 7, 0, exitFailed, "database   120 UCIs checked, 1 missing, 0 under another identity"},
		{"one under another identity", true, 0, 9, exitFailed, "database   120 UCIs checked, 0 missing, 1 under another identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, db := recordingDB(t)
			f := newFake(t)
			n := 0
			f.Record = func(uci, hwid string) {
				n++
				if n == tt.skip {
					return
				}
				var ident any
				if hwid != "" {
					ident = "hwid:" + hwid
				}
				if n == tt.wrongIdent {
					ident = "hwid:someone-else"
				}
				if _, err := db.Exec(`INSERT INTO devices (uci, batch_id, product_id, station_id, identity) VALUES (?, 1, 'P1', 'demo', ?)`, uci, ident); err != nil {
					t.Error(err)
				}
			}
			srv := f.start()
			args := []string{"--url", srv.URL + "/ioto/serialize", "--jigs", "6", "--count", "120", "--verify-db", path}
			if tt.identities {
				args = append(args, "--identities", "--retries", "1")
			}
			code, stdout, stderr := jigsim(t, args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s\n%s", code, tt.wantCode, stderr, stdout)
			}
			if !strings.Contains(stdout, tt.wantLine+"\n") {
				t.Errorf("summary lacks %q:\n%s", tt.wantLine, stdout)
			}
			if tt.skip > 0 && !strings.Contains(stderr, "acknowledged but not in the database") {
				t.Errorf("stderr does not name the missing UCI: %s", stderr)
			}
			if tt.wrongIdent > 0 && !strings.Contains(stderr, `recorded for "hwid:someone-else"`) {
				t.Errorf("stderr does not name the wrong identity: %s", stderr)
			}
		})
	}
}

func TestVerifyDBUnreadable(t *testing.T) {
	f := newFake(t)
	srv := f.start()
	missing := filepath.Join(t.TempDir(), "nothing-here.db")
	code, _, stderr := jigsim(t, "--url", srv.URL+"/ioto/serialize", "--jigs", "1", "--count", "1", "--verify-db", missing)
	if code != exitFailed || !strings.Contains(stderr, "--verify-db") {
		t.Errorf("exit %d, stderr %q; want 1 and the reason", code, stderr)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("--verify-db created %s", missing)
	}
}

func TestUsage(t *testing.T) {
	srvURL := "http://127.0.0.1:1/ioto/serialize" // never dialled: every case fails before
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no url", []string{"--count", "1"}, "--url is required"},
		{"retries without identities", []string{"--url", srvURL, "--retries", "2"}, "--retries needs --identities"},
		{"no jigs", []string{"--url", srvURL, "--jigs", "0"}, "--jigs"},
		{"stray argument", []string{"--url", srvURL, "extra"}, "unexpected argument"},
		{"unknown flag", []string{"--url", srvURL, "--nope"}, "flag provided but not defined"},
		{"not http", []string{"--url", "ftp://127.0.0.1/ioto/serialize"}, "not an http(s) URL"},
		{"public address", []string{"--url", "http://203.0.113.7:4100/ioto/serialize"}, "refusing to load 203.0.113.7"},
		{"public IPv6 address", []string{"--url", "http://[2001:db8::1]:4100/ioto/serialize"}, "refusing to load 2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := jigsim(t, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q lacks %q", stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout not empty: %q", stdout)
			}
		})
	}
}

func TestCheckTarget(t *testing.T) {
	tests := []struct {
		url    string
		remote bool
		ok     bool
	}{
		{"http://127.0.0.1:4100/ioto/serialize", false, true},
		{"http://localhost:4100/ioto/serialize", false, true},
		{"http://[::1]:4100/ioto/serialize", false, true},
		{"http://10.0.0.5:4100/ioto/serialize", false, true},
		{"http://192.168.1.10:4100/ioto/serialize?station=a", false, true},
		{"http://172.16.0.1/ioto/serialize", false, true},
		{"http://169.254.10.1/ioto/serialize", false, true},
		{"https://[fd00::5]/ioto/serialize", false, true},
		{"http://8.8.8.8/ioto/serialize", false, false},
		{"http://172.32.0.1/ioto/serialize", false, false},
		{"http://[::ffff:8.8.8.8]/ioto/serialize", false, false},
		{"http://8.8.8.8/ioto/serialize", true, true},
		{"http:///ioto/serialize", false, false},
		{"127.0.0.1:4100", false, false},
	}
	for _, tt := range tests {
		err := checkTarget(context.Background(), tt.url, tt.remote)
		if (err == nil) != tt.ok {
			t.Errorf("checkTarget(%q, remote=%v) = %v, want ok=%v", tt.url, tt.remote, err, tt.ok)
		}
	}
}

func TestRefuseRemoteDial(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:4100":     true,
		"[::1]:4100":         true,
		"10.1.2.3:80":        true,
		"[fe80::1%eth0]:80":  true,
		"203.0.113.7:4100":   false,
		"[2001:db8::1]:4100": false,
		"nonsense":           false,
	} {
		if err := refuseRemote("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("refuseRemote(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}

func TestInterruptEndsTheRun(t *testing.T) {
	f := newFake(t)
	srv := f.start()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	// A count run without a duration ends when it is interrupted.
	code := run(ctx, []string{"--url", srv.URL + "/ioto/serialize", "--jigs", "4", "--count", "100000000"}, &stdout, &stderr)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("interrupt took %v to end the run", took)
	}
	if code != exitOK {
		t.Errorf("exit %d; stderr: %s", code, stderr.String())
	}
	parseFinal(t, stdout.String())
}
