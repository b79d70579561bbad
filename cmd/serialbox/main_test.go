package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"serialbox/serializer"
)

// binary is the serialbox executable built once for the tests that run it as a process.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "serialbox-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "serialbox")
	build := exec.Command("go", buildArgs(binary)...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building serialbox:", err)
		os.Exit(1)
	}
	if err := coverDir(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := mergeDaemonCover(); err != nil {
		fmt.Fprintln(os.Stderr, "coverage of the appliance processes:", err)
		code = max(code, 1)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildArgs builds the appliance the way the tests themselves are built: with the
// race detector under -race and instrumented for coverage under -cover, so that the
// daemon's own code is checked and measured, not only the code the tests call.
func buildArgs(out string) []string {
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	if mode := testing.CoverMode(); mode != "" {
		args = append(args, "-cover", "-covermode="+mode)
	}
	return append(args, ".")
}

// daemonCover is the folder the appliance processes write their coverage data to
// (GOCOVERDIR); "" when coverage is not measured.
var daemonCover struct {
	dir  string
	temp bool // removed after the run; SERIALBOX_COVERDIR keeps it
}

// coverDir gives the appliance processes a GOCOVERDIR: SERIALBOX_COVERDIR when set,
// to keep the raw data for go tool covdata, else a temporary folder.
func coverDir() error {
	if testing.CoverMode() == "" {
		return nil
	}
	dir := os.Getenv("SERIALBOX_COVERDIR")
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	} else {
		var err error
		if dir, err = os.MkdirTemp("", "serialbox-cover"); err != nil {
			return err
		}
		daemonCover.temp = true
	}
	daemonCover.dir = dir
	return os.Setenv("GOCOVERDIR", dir)
}

// mergeDaemonCover adds what the appliance processes covered to the test's coverage
// profile (-coverprofile), which otherwise holds only the test binary's own counts;
// go tool cover adds up blocks that appear twice.
func mergeDaemonCover() error {
	if daemonCover.dir == "" {
		return nil
	}
	if daemonCover.temp {
		defer os.RemoveAll(daemonCover.dir)
	}
	f := flag.Lookup("test.coverprofile")
	if f == nil || f.Value.String() == "" {
		return nil
	}
	if files, _ := filepath.Glob(filepath.Join(daemonCover.dir, "covcounters.*")); len(files) == 0 {
		return nil // no appliance process ran to its end
	}
	text := filepath.Join(daemonCover.dir, "profile.txt")
	if out, err := exec.Command("go", "tool", "covdata", "textfmt", "-i="+daemonCover.dir, "-o="+text).CombinedOutput(); err != nil {
		return fmt.Errorf("go tool covdata: %v: %s", err, out)
	}
	b, err := os.ReadFile(text)
	if err != nil {
		return err
	}
	os.Remove(text)
	_, counts, _ := bytes.Cut(b, []byte("\n")) // the mode line is in the profile already
	profile := f.Value.String()
	if dir := flag.Lookup("test.outputdir"); dir != nil && dir.Value.String() != "" && !filepath.IsAbs(profile) {
		profile = filepath.Join(dir.Value.String(), profile)
	}
	out, err := os.OpenFile(profile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := out.Write(counts); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// The appliance the tests run is built as the tests are: with the race detector under
// -race, instrumented under -cover.
func TestApplianceIsBuiltLikeTheTests(t *testing.T) {
	out, err := exec.Command("go", "version", "-m", binary).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v: %s", err, out)
	}
	for setting, want := range map[string]bool{"-race=true": raceEnabled, "-cover=true": testing.CoverMode() != ""} {
		if got := strings.Contains(string(out), "build\t"+setting); got != want {
			t.Errorf("binary built with %s: %v, want %v", setting, got, want)
		}
	}
}

// raceReport is how the race detector starts a report on stderr; a process that made
// one exits with status raceExit, which startAppliance notes in the log as raceNote.
const (
	raceReport = "WARNING: DATA RACE"
	raceExit   = 66
	raceNote   = "serialbox exited with the race detector's status 66"
)

// checkNoRace fails the test if what a serialbox process wrote holds a race report.
func checkNoRace(t testing.TB, what, output string) {
	t.Helper()
	if i := strings.Index(output, raceReport); i >= 0 {
		t.Errorf("%s reported a data race:\n%s", what, output[i:])
	} else if strings.Contains(output, raceNote) {
		t.Errorf("%s exited as after a data race:\n%s", what, output)
	}
}

// appliance is a serialbox process started by a test.
type appliance struct {
	cmd  *exec.Cmd
	addr string
	data string
	done chan error

	mu   sync.Mutex
	logs bytes.Buffer
}

// Logs returns what the appliance has logged so far.
func (a *appliance) Logs() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.logs.String()
}

var servingRE = regexp.MustCompile(`msg=serving addr=(\S+)`)

// startAppliance runs `serialbox serve` on a free loopback port and waits until it serves.
func startAppliance(t *testing.T, dataDir, configPath string) *appliance {
	t.Helper()
	args := []string{"serve", "--listen", "127.0.0.1:0", "--data", dataDir}
	if configPath != "" {
		args = append(args, "--config", configPath)
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "SERIALBOX_CONFIG=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &appliance{cmd: cmd, data: dataDir, done: make(chan error, 1)}
	found := make(chan string, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			a.mu.Lock()
			a.logs.WriteString(line + "\n")
			a.mu.Unlock()
			if m := servingRE.FindStringSubmatch(line); m != nil {
				found <- m[1]
			}
		}
		io.Copy(io.Discard, stderr) // a line too long for the scanner
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == raceExit {
			a.mu.Lock()
			a.logs.WriteString(raceNote + "\n")
			a.mu.Unlock()
		}
		a.done <- err
	}()
	t.Cleanup(func() {
		// A clean stop, so that a daemon built for coverage writes its counters.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		checkNoRace(t, "serialbox serve", a.Logs())
	})
	select {
	case a.addr = <-found:
		return a
	case err := <-a.done:
		t.Fatalf("serialbox exited before serving: %v\n%s", err, a.Logs())
	case <-time.After(20 * time.Second):
		t.Fatalf("serialbox did not serve within 20 s\n%s", a.Logs())
	}
	return nil
}

func (a *appliance) url(path string) string { return "http://" + a.addr + path }

var (
	keysMu sync.Mutex
	keys   = map[string]string{} // data folder → API key of its supervisor "tester"
)

var apiKeyRE = regexp.MustCompile(`api key: (\S+)`)

// operatorKey returns the API key of a supervisor of the appliance's registry,
// creating the supervisor with `serialbox user add` the first time.
func (a *appliance) operatorKey(t *testing.T) string {
	t.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := keys[a.data]; ok {
		return k
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"user", "add", "tester", "--role", "supervisor", "--api-key", "--data", a.data}, &stdout, &stderr)
	m := apiKeyRE.FindStringSubmatch(stdout.String())
	if code != 0 || m == nil {
		t.Fatalf("user add: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	keys[a.data] = m[1]
	return m[1]
}

// serialize asks for a UCI as a jig would; it returns the id or the refusal.
func serialize(client *http.Client, url, body string) (string, int, error) {
	resp, err := client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", resp.StatusCode, err
	}
	return out.ID, resp.StatusCode, nil
}

const iotoProductConfig = `
[[products]]
id = "TESTPRODUCT01"
name = "Serial Eval"
model = "Eval-01"
[[stations]]
id = "jig1"
product = "TESTPRODUCT01"
auto_batch = true
[stations.printer]
transport = "file"
`

// The appliance answers the Ioto agent's request exactly as the agent sends it:
// headers and body in separate writes, no User-Agent, no Accept.
func TestIotoAgentEndToEnd(t *testing.T) {
	dir := t.TempDir()
	a := startAppliance(t, filepath.Join(dir, "data"), writeConfig(t, iotoProductConfig))

	conn, err := net.Dial("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"product":"TESTPRODUCT01","name":"SerialEval","description":"Factory serialization evaluation","model":"Eval-01"}`
	head := "POST /ioto/serialize HTTP/1.1\r\nContent-Type: application/json\r\nHost: " + a.addr + "\r\nContent-Length: 114\r\n\r\n"
	if len(body) != 114 {
		t.Fatalf("reference body is %d bytes", len(body))
	}
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := conn.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if resp.StatusCode != 200 || json.Unmarshal(raw, &out) != nil {
		t.Fatalf("answer %d %s", resp.StatusCode, raw)
	}
	id, _ := out["id"].(string)
	uci, err := serializer.Parse(id)
	if err != nil || uci.String() != id {
		t.Fatalf("id %q is not a canonical UCI: %v", id, err)
	}
	if out["product"] != "TESTPRODUCT01" || out["station"] != "jig1" {
		t.Fatalf("answer = %s", raw)
	}

	// Its label comes out of the station's file printer.
	labelFile := filepath.Join(dir, "data", "labels", id+".zpl")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(labelFile)
		if err == nil {
			if !bytes.Contains(b, []byte("^FDQA,"+id+"^FS")) {
				t.Fatalf("label %s does not carry the UCI's QR code:\n%s", labelFile, b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no label file %s: %v\n%s", labelFile, err, a.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The lookup sees the device labeled.
	resp2, err := http.Get(a.url("/api/v1/devices/" + strings.ToLower(uci.Grouped())))
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	var dev struct {
		Device serializer.Device `json:"device"`
	}
	if err := json.NewDecoder(resp2.Body).Decode(&dev); err != nil || dev.Device.UCI != uci {
		t.Fatalf("lookup = %+v, %v", dev, err)
	}
}

// The same hwid gets the same UCI after the appliance restarts; SIGTERM stops it cleanly.
func TestIdentityAcrossRestart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	cfg := writeConfig(t, iotoProductConfig)
	body := `{"product":"TESTPRODUCT01","hwid":"HW-0042"}`

	a := startAppliance(t, data, cfg)
	first, code, err := serialize(http.DefaultClient, a.url("/ioto/serialize"), body)
	if err != nil || code != 200 || first == "" {
		t.Fatalf("first: %q %d %v", first, code, err)
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.done:
		if err != nil {
			t.Fatalf("serialbox exited with %v after SIGTERM\n%s", err, a.Logs())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serialbox did not stop after SIGTERM")
	}
	if !strings.Contains(a.Logs(), "shutting down") {
		t.Fatalf("no shutdown logged:\n%s", a.Logs())
	}

	b := startAppliance(t, data, cfg)
	again, code, err := serialize(http.DefaultClient, b.url("/ioto/serialize"), body)
	if err != nil || code != 200 || again != first {
		t.Fatalf("after restart: %q %d %v; want %q", again, code, err, first)
	}
}

// The appliance refuses to start on a bad configuration and names the key.
func TestBadConfigIsRefusedAtStart(t *testing.T) {
	cfg := writeConfig(t, strings.Replace(iotoProductConfig, `transport = "file"`, `transport = "fax"`, 1))
	out, err := exec.Command(binary, "serve", "--config", cfg, "--data", t.TempDir()).CombinedOutput()
	checkNoRace(t, "serialbox serve", string(out))
	if err == nil || !strings.Contains(string(out), "stations[0].printer.transport") {
		t.Fatalf("exit %v, output %s", err, out)
	}
}

// Crash test: jigs load the appliance, which is killed with SIGKILL mid-load again
// and again and restarted. After every restart, every UCI any jig got a 200 for is in
// the database with its batch and one label job, none twice, and the database is sound.
func TestCrashUnderLoad(t *testing.T) {
	rounds, jigs := 20, 64
	if testing.Short() {
		rounds, jigs = 3, 16
	}
	data := filepath.Join(t.TempDir(), "data")
	cfg := writeConfig(t, iotoProductConfig)
	acked := map[string]int{} // UCI → how many 200s carried it
	var mu sync.Mutex

	for round := range rounds {
		a := startAppliance(t, data, cfg)
		checkRegistry(t, data, acked, fmt.Sprintf("after restart %d", round))
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: jigs}}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range jigs {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					id, code, err := serialize(client, a.url("/ioto/serialize"), `{"product":"TESTPRODUCT01"}`)
					if err != nil {
						continue // the process died under us: that answer never arrived
					}
					if code == 200 {
						mu.Lock()
						acked[id]++
						mu.Unlock()
					}
				}
			})
		}
		time.Sleep(time.Duration(300+round*97%400) * time.Millisecond)
		if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-a.done
		close(stop)
		wg.Wait()
	}

	startAppliance(t, data, cfg)
	checkRegistry(t, data, acked, "after the last restart")

	mu.Lock()
	defer mu.Unlock()
	if len(acked) < rounds*10 {
		t.Fatalf("only %d UCIs were answered in %d rounds: the load did not run", len(acked), rounds)
	}
	for id, n := range acked {
		if n != 1 {
			t.Fatalf("UCI %s was answered %d times", id, n)
		}
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(data, "serialbox.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
	var total, distinct int
	db.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT uci) FROM devices`).Scan(&total, &distinct)
	if total != distinct {
		t.Fatalf("%d device rows but %d distinct UCIs", total, distinct)
	}
	missing := 0
	for id := range acked {
		var batch sql.NullInt64
		var jobs int
		err := db.QueryRow(`SELECT d.batch_id, (SELECT COUNT(*) FROM print_jobs j WHERE j.uci = d.uci) FROM devices d WHERE uci = ?`, id).Scan(&batch, &jobs)
		if err != nil || !batch.Valid || jobs != 1 {
			missing++
			t.Errorf("acknowledged UCI %s: batch %v, label jobs %d, %v", id, batch, jobs, err)
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged UCIs are missing or incomplete", missing, len(acked))
	}
	t.Logf("%d rounds of kill -9: %d acknowledged UCIs, %d device rows, all present", rounds, len(acked), total)
}

// The demo (no config file) serves the documented curl request.
func TestDemoServesTheREADMERequest(t *testing.T) {
	a := startAppliance(t, filepath.Join(t.TempDir(), "data"), "")
	id, code, err := serialize(http.DefaultClient, a.url("/ioto/serialize"), `{"product":"01H4R15D3478JD26YDYK408XE6"}`)
	if err != nil || code != 200 || len(id) != 16 {
		t.Fatalf("demo: %q %d %v", id, code, err)
	}
}

// `serialbox label` writes one label to stdout.
func TestLabelCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"label", "--uci", "04hm-asw9-nf6y-y093", "--batch", "7"}, &stdout, &stderr)
	if code != 0 || !bytes.HasPrefix(stdout.Bytes(), []byte("^XA")) || !bytes.Contains(stdout.Bytes(), []byte("QA,04HMASW9NF6YY093")) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	for _, format := range []string{"tspl", "pdf", "png"} {
		stdout.Reset()
		if code := run(context.Background(), []string{"label", "--uci", "04HMASW9NF6YY093", "--format", format}, &stdout, &stderr); code != 0 || stdout.Len() == 0 {
			t.Fatalf("%s: exit %d, stderr %q", format, code, stderr.String())
		}
	}
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"label", "--uci", "not-a-uci"}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "not-a-uci") || stdout.Len() != 0 {
		t.Fatalf("bad UCI: exit %d, stderr %q", code, stderr.String())
	}
	if code := run(context.Background(), []string{"label", "--uci", "04HMASW9NF6YY093", "--format", "bmp"}, &stdout, &stderr); code == 0 {
		t.Fatal("unknown format accepted")
	}
}
