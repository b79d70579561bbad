package main

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"serialbox/serializer"
)

// answer is the appliance's reply to one serialize request.
type answer struct {
	Status   int    `json:"-"`
	ID       string `json:"id"`
	Existing bool   `json:"existing"`
	Code     string `json:"code"`
	Error    string `json:"error"`
}

func (a answer) String() string {
	if a.Status == http.StatusOK {
		return fmt.Sprintf("200 id=%s existing=%v", a.ID, a.Existing)
	}
	return fmt.Sprintf("%d code=%q error=%q", a.Status, a.Code, a.Error)
}

// ask sends one serialize request and decodes whatever JSON comes back.
func ask(client *http.Client, url, body string) (answer, error) {
	resp, err := client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	got := answer{Status: resp.StatusCode}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return got, err
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		return got, fmt.Errorf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return got, nil
}

// askAll sends the bodies concurrently, all released at the same moment, and
// returns the answers in the order of the bodies.
func askAll(t *testing.T, client *http.Client, url string, bodies []string) []answer {
	t.Helper()
	answers := make([]answer, len(bodies))
	errs := make([]error, len(bodies))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, body := range bodies {
		wg.Go(func() {
			<-start
			answers[i], errs[i] = ask(client, url, body)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d (%s) got no answer: %v", i, bodies[i], err)
		}
	}
	return answers
}

func repeat(body string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = body
	}
	return out
}

const plainDevice = `{"product":"TESTPRODUCT01"}`

// checkRegistry opens the appliance's database read-only and fails the test unless
// it is sound: integrity_check ok, no UCI twice, every device in an existing batch
// whose issued counter matches its devices, exactly one label job per device, and
// every acknowledged UCI present and acknowledged once. It returns the number of devices.
func checkRegistry(t *testing.T, dataDir string, acked map[string]int, when string) int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dataDir, "serialbox.db")+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	var problems []string
	report := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	fail := func() {
		t.Helper()
		if len(problems) > 0 {
			t.Fatalf("registry %s:\n  %s", when, strings.Join(problems, "\n  "))
		}
	}
	query := func(q string, row func(*sql.Rows) error) {
		t.Helper()
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("registry %s: %s: %v", when, q, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := row(rows); err != nil {
				t.Fatalf("registry %s: %s: %v", when, q, err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("registry %s: %s: %v", when, q, err)
		}
	}

	var integrity []string
	query(`PRAGMA integrity_check`, func(r *sql.Rows) error {
		var line string
		err := r.Scan(&line)
		integrity = append(integrity, line)
		return err
	})
	if !slices.Equal(integrity, []string{"ok"}) {
		report("integrity_check = %q, want [ok]", integrity)
	}

	inBatch := map[string]bool{} // UCI → its batch exists
	rows := 0
	query(`SELECT d.uci, b.id IS NOT NULL FROM devices d LEFT JOIN batches b ON b.id = d.batch_id`, func(r *sql.Rows) error {
		var uci string
		var ok bool
		err := r.Scan(&uci, &ok)
		rows++
		if _, dup := inBatch[uci]; dup {
			report("UCI %s is recorded twice", uci)
		}
		inBatch[uci] = ok
		if !ok {
			report("device %s has no batch", uci)
		}
		return err
	})

	jobs := map[string]int{}
	query(`SELECT uci, COUNT(*) FROM print_jobs WHERE kind = 'device' GROUP BY uci`, func(r *sql.Rows) error {
		var uci string
		var n int
		err := r.Scan(&uci, &n)
		jobs[uci] = n
		if _, ok := inBatch[uci]; !ok {
			report("label job for UCI %s, which is not a device", uci)
		}
		return err
	})
	for uci := range inBatch {
		if jobs[uci] != 1 {
			report("device %s has %d label jobs, want 1", uci, jobs[uci])
		}
	}

	query(`SELECT b.id, b.issued, (SELECT COUNT(*) FROM devices d WHERE d.batch_id = b.id) FROM batches b`, func(r *sql.Rows) error {
		var id, issued, counted int
		err := r.Scan(&id, &issued, &counted)
		if issued != counted {
			report("batch %d counts %d issued but holds %d devices", id, issued, counted)
		}
		return err
	})

	missing := 0
	for uci, n := range acked {
		if n != 1 {
			report("UCI %s was answered %d times", uci, n)
		}
		if _, ok := inBatch[uci]; !ok {
			missing++
			report("acknowledged UCI %s is not in the registry", uci)
		}
	}
	if missing > 0 {
		report("%d of %d acknowledged UCIs are missing", missing, len(acked))
	}
	fail()
	return rows
}

// mountVolume mounts a file system at dir for the test and lazily unmounts it at
// cleanup. Where mounting is not permitted the test is skipped, except in CI, where
// the proof runs must run.
func mountVolume(t *testing.T, dir string, args ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", append(args, dir)...).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("mount %s %s: %v: %s", strings.Join(args, " "), dir, err, out)
		if os.Getenv("CI") != "" {
			t.Fatalf("%s (the proof runs need root in CI)", msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount -l %s: %v: %s", dir, err, out)
		}
	})
}

// fillVolume writes a file into dir until the volume has no space left and returns its path.
func fillVolume(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, size := range []int{1 << 20, 64 << 10, 4 << 10, 512, 1} {
		chunk := make([]byte, size)
		for {
			if _, err = f.Write(chunk); err != nil {
				break
			}
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("filling %s: %v, want ENOSPC", dir, err)
		}
	}
	return path
}

// stillRunning fails the test if the appliance process has exited.
func stillRunning(t *testing.T, a *appliance, when string) {
	t.Helper()
	select {
	case err := <-a.done:
		t.Fatalf("the appliance exited %s: %v\n%s", when, err, a.Logs())
	default:
	}
}

// Retry storm: 200 jigs with identities start at once, each asking four times for
// its identity without waiting for an answer (a jig whose answers are lost keeps
// asking). Every identity ends with exactly one UCI, given in all four answers.
func TestRetryStormGivesEachIdentityOneUCI(t *testing.T) {
	const jigs, asks = 200, 4
	data := filepath.Join(t.TempDir(), "data")
	a := startAppliance(t, data, writeConfig(t, iotoProductConfig))
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: jigs * asks}}

	var bodies []string
	for jig := range jigs {
		for range asks {
			bodies = append(bodies, fmt.Sprintf(`{"product":"TESTPRODUCT01","hwid":"STORM-%03d"}`, jig))
		}
	}
	answers := askAll(t, client, a.url("/ioto/serialize"), bodies)

	byIdentity := map[string]string{} // "hwid:STORM-000" → UCI
	owner := map[string]string{}      // UCI → identity
	acked := map[string]int{}
	for jig := range jigs {
		hwid := fmt.Sprintf("STORM-%03d", jig)
		mine := answers[jig*asks : (jig+1)*asks]
		created := 0
		for _, ans := range mine {
			if ans.Status != http.StatusOK {
				t.Fatalf("%s: answer %s, want 200", hwid, ans)
			}
			if ans.ID != mine[0].ID {
				t.Fatalf("%s got different UCIs: %v", hwid, mine)
			}
			if !ans.Existing {
				created++
			}
		}
		if created != 1 {
			t.Fatalf("%s: %d of its %d answers created a device, want exactly 1: %v", hwid, created, asks, mine)
		}
		if uci, err := serializer.Parse(mine[0].ID); err != nil || uci.String() != mine[0].ID {
			t.Fatalf("%s: %q is not a canonical UCI: %v", hwid, mine[0].ID, err)
		}
		if other, ok := owner[mine[0].ID]; ok {
			t.Fatalf("UCI %s was given to both %s and %s", mine[0].ID, other, hwid)
		}
		owner[mine[0].ID] = hwid
		byIdentity["hwid:"+hwid] = mine[0].ID
		acked[mine[0].ID] = 1
	}

	if n := checkRegistry(t, data, acked, "after the retry storm"); n != jigs {
		t.Fatalf("the registry holds %d devices after %d identities asked, want %d", n, jigs, jigs)
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(data, "serialbox.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT identity, uci FROM devices`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	recorded := map[string]string{}
	for rows.Next() {
		var identity sql.NullString
		var uci string
		if err := rows.Scan(&identity, &uci); err != nil {
			t.Fatal(err)
		}
		if prev, dup := recorded[identity.String]; dup {
			t.Fatalf("identity %q has two devices: %s and %s", identity.String, prev, uci)
		}
		recorded[identity.String] = uci
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for identity, uci := range byIdentity {
		if recorded[identity] != uci {
			t.Fatalf("identity %s was answered %s but the registry holds %q", identity, uci, recorded[identity])
		}
	}
	t.Logf("%d jigs × %d asks: %d identities, one UCI each", jigs, asks, len(byIdentity))
}

// Full disk: with the data volume full, serialize answers 503 {"code":"unavailable"}
// and records nothing; once space returns the same appliance process issues again,
// its answers reach the readers, its labels print, and they survive kill -9.
func TestFullDiskRefusesAndRecovers(t *testing.T) {
	vol := filepath.Join(t.TempDir(), "vol")
	mountVolume(t, vol, "-t", "tmpfs", "-o", "size=4m", "tmpfs")
	data := filepath.Join(vol, "data")
	cfg := writeConfig(t, iotoProductConfig)
	a := startAppliance(t, data, cfg)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	url := a.url("/ioto/serialize")
	acked := map[string]int{}

	known, err := ask(client, url, `{"product":"TESTPRODUCT01","hwid":"DISK-KNOWN"}`)
	if err != nil || known.Status != http.StatusOK {
		t.Fatalf("before the disk filled: %s, %v", known, err)
	}
	acked[known.ID]++
	for _, ans := range askAll(t, client, url, repeat(plainDevice, 19)) {
		if ans.Status != http.StatusOK {
			t.Fatalf("before the disk filled: %s, want 200", ans)
		}
		acked[ans.ID]++
	}

	filler := fillVolume(t, vol)
	refusedAfter := -1
	for sent := 0; sent < 400 && refusedAfter < 0; sent += 16 {
		for _, ans := range askAll(t, client, url, repeat(plainDevice, 16)) {
			switch {
			case ans.Status == http.StatusOK:
				acked[ans.ID]++ // the write-ahead log still had room: the UCI must be durable
			case ans.Status == http.StatusServiceUnavailable && ans.Code == serializer.EUNAVAILABLE:
				refusedAfter = sent
			default:
				t.Fatalf("with the disk full: %s, want 503 code %q", ans, serializer.EUNAVAILABLE)
			}
		}
	}
	if refusedAfter < 0 {
		t.Fatalf("400 requests after the disk filled were all answered 200\n%s", a.Logs())
	}
	t.Logf("first refusal after %d requests on the full disk", refusedAfter)

	for _, ans := range askAll(t, client, url, repeat(plainDevice, 32)) {
		if ans.Status != http.StatusServiceUnavailable || ans.Code != serializer.EUNAVAILABLE || !strings.Contains(ans.Error, "disk is full") {
			t.Fatalf("with the disk still full: %s, want 503 code %q saying the disk is full", ans, serializer.EUNAVAILABLE)
		}
	}
	again, err := ask(client, url, `{"product":"TESTPRODUCT01","hwid":"DISK-KNOWN"}`)
	if err != nil || !(again.Status == http.StatusOK && again.ID == known.ID || again.Status == http.StatusServiceUnavailable) {
		t.Fatalf("a known identity with the disk full: %s, %v; want its UCI %s or 503", again, err, known.ID)
	}
	stillRunning(t, a, "with the disk full")
	if n := checkRegistry(t, data, acked, "with the disk full"); n != len(acked) {
		t.Fatalf("with the disk full the registry holds %d devices but %d were answered 200: refused requests left devices behind", n, len(acked))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ans, err := ask(client, url, plainDevice)
		if err == nil && ans.Status == http.StatusOK {
			acked[ans.ID]++
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after space returned serialize still answers %s, %v\n%s", ans, err, a.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var after []string
	for _, ans := range askAll(t, client, url, repeat(plainDevice, 32)) {
		if ans.Status != http.StatusOK {
			t.Fatalf("after space returned: %s, want 200", ans)
		}
		acked[ans.ID]++
		after = append(after, ans.ID)
	}
	stillRunning(t, a, "after space returned")
	if n := checkRegistry(t, data, acked, "after space returned"); n != len(acked) {
		t.Fatalf("after space returned the registry holds %d devices, want the %d answered", n, len(acked))
	}
	for _, id := range after[:4] {
		resp, err := client.Get(a.url("/api/v1/devices/" + id))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("lookup of %s issued after space returned: %d, want 200", id, resp.StatusCode)
		}
	}
	waitLabelsPrinted(t, a, len(acked), 45*time.Second)

	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	startAppliance(t, data, cfg)
	if n := checkRegistry(t, data, acked, "after kill -9 and restart"); n != len(acked) {
		t.Fatalf("after kill -9 the registry holds %d devices, want the %d answered", n, len(acked))
	}
}

// waitLabelsPrinted waits until the appliance's registry has want device label jobs,
// all printed, and as many label files in its file printer's folder.
func waitLabelsPrinted(t *testing.T, a *appliance, want int, within time.Duration) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(a.data, "serialbox.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(within)
	for {
		states := map[string]int{}
		rows, err := db.Query(`SELECT state, COUNT(*) FROM print_jobs WHERE kind = 'device' GROUP BY state`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			var n int
			if err := rows.Scan(&s, &n); err != nil {
				t.Fatal(err)
			}
			states[s] = n
		}
		rows.Close()
		if states["failed"]+states["uncertain"] > 0 {
			t.Fatalf("label jobs by state %v: none should be failed or uncertain\n%s", states, a.Logs())
		}
		files, _ := filepath.Glob(filepath.Join(a.data, "labels", "*.zpl"))
		if states["printed"] == want && len(files) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v label jobs by state %v and %d label files; want %d printed\n%s", within, states, len(files), want, a.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// loopDevice returns the block device mounted at dir, from /proc/self/mounts.
func loopDevice(t *testing.T, dir string) string {
	t.Helper()
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 1 && fields[1] == dir {
			return filepath.Base(fields[0])
		}
	}
	t.Fatalf("%s is not in /proc/self/mounts", dir)
	return ""
}

// ext4Volume mounts a fresh ext4 image with errors=remount-ro and returns the mount
// point, the image and the sysfs file that raises a file system error on it.
func ext4Volume(t *testing.T) (vol, image, trigger string) {
	t.Helper()
	for _, tool := range []string{"mkfs.ext4", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is needed for the read-only volume run: %v", tool, err)
			}
			t.Skip(err)
		}
	}
	dir := t.TempDir()
	image = filepath.Join(dir, "volume.ext4")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", image, "32M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	vol = filepath.Join(dir, "vol")
	mountVolume(t, vol, "-o", "loop,errors=remount-ro", image)
	trigger = filepath.Join("/sys/fs/ext4", loopDevice(t, vol), "trigger_fs_error")
	if _, err := os.Stat(trigger); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the kernel offers no way to raise an ext4 error: %v", err)
		}
		t.Skip(err)
	}
	return vol, image, trigger
}

// forceReadOnly raises an ext4 error on the volume, which the kernel answers by
// taking it read-only under the files already open for writing.
func forceReadOnly(t *testing.T, vol, trigger string) {
	t.Helper()
	if err := os.WriteFile(trigger, []byte("serialbox read-only volume test"), 0); err != nil {
		t.Fatalf("raising an ext4 error: %v", err)
	}
	if err := os.WriteFile(filepath.Join(vol, "probe"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("after the ext4 error, creating a file: %v; want EROFS", err)
	}
}

// Read-only volume: the kernel takes the data volume read-only under the running
// appliance (ext4 errors=remount-ro after a file system error). Serialize answers 503
// {"code":"unavailable"} and records nothing; after the volume is checked and mounted
// again, the restarted appliance holds every acknowledged UCI and issues again.
func TestReadOnlyVolumeRefusesAndRecovers(t *testing.T) {
	vol, image, trigger := ext4Volume(t)
	data := filepath.Join(vol, "data")
	cfg := writeConfig(t, iotoProductConfig)
	a := startAppliance(t, data, cfg)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	url := a.url("/ioto/serialize")
	acked := map[string]int{}
	for _, ans := range askAll(t, client, url, repeat(plainDevice, 20)) {
		if ans.Status != http.StatusOK {
			t.Fatalf("before the volume went read-only: %s, want 200", ans)
		}
		acked[ans.ID]++
	}

	forceReadOnly(t, vol, trigger)
	for round := range 3 {
		for _, ans := range askAll(t, client, url, repeat(plainDevice, 16)) {
			if ans.Status != http.StatusServiceUnavailable || ans.Code != serializer.EUNAVAILABLE || ans.Error == "" {
				t.Fatalf("read-only volume, round %d: %s, want 503 code %q with a message", round, ans, serializer.EUNAVAILABLE)
			}
		}
	}
	stillRunning(t, a, "with the volume read-only")
	if n := checkRegistry(t, data, acked, "with the volume read-only"); n != len(acked) {
		t.Fatalf("with the volume read-only the registry holds %d devices but %d were answered 200", n, len(acked))
	}

	// The kernel keeps the volume read-only until it is unmounted: stop the
	// appliance, check the file system, mount it again.
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the appliance did not stop after SIGTERM on a read-only volume\n%s", a.Logs())
	}
	if out, err := exec.Command("umount", vol).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v: %s", err, out)
	}
	if out, err := exec.Command("e2fsck", "-f", "-y", image).CombinedOutput(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() > 1 {
			t.Fatalf("e2fsck: %v: %s", err, out)
		}
	}
	if out, err := exec.Command("mount", "-o", "loop,errors=remount-ro", image, vol).CombinedOutput(); err != nil {
		t.Fatalf("mount again: %v: %s", err, out)
	}

	b := startAppliance(t, data, cfg)
	if n := checkRegistry(t, data, acked, "after the volume was mounted again"); n != len(acked) {
		t.Fatalf("after the volume was mounted again the registry holds %d devices, want the %d answered", n, len(acked))
	}
	for _, ans := range askAll(t, client, b.url("/ioto/serialize"), repeat(plainDevice, 16)) {
		if ans.Status != http.StatusOK {
			t.Fatalf("after the volume was mounted again: %s, want 200", ans)
		}
		acked[ans.ID]++
	}
	checkRegistry(t, data, acked, "after issuing again")
}

// readiness returns the status and error code /readyz answers.
func readiness(t *testing.T, a *appliance) (int, string) {
	t.Helper()
	resp, err := http.Get(a.url("/readyz"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Code, Error, Status string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("/readyz %d: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, body.Code
}

// Readiness follows the data volume: while serialize refuses because the disk is
// full or read-only, /readyz answers 503 {"code":"unavailable"} too, and 200 again
// once space returns.
func TestReadinessFollowsTheDataVolume(t *testing.T) {
	t.Run("full", func(t *testing.T) {
		vol := filepath.Join(t.TempDir(), "vol")
		mountVolume(t, vol, "-t", "tmpfs", "-o", "size=4m", "tmpfs")
		a := startAppliance(t, filepath.Join(vol, "data"), writeConfig(t, iotoProductConfig))
		if status, code := readiness(t, a); status != http.StatusOK {
			t.Fatalf("/readyz before the disk filled: %d %q, want 200", status, code)
		}
		filler := fillVolume(t, vol)
		for sent := 0; ; sent++ {
			ans, err := ask(http.DefaultClient, a.url("/ioto/serialize"), plainDevice)
			if err != nil {
				t.Fatal(err)
			}
			if ans.Status == http.StatusServiceUnavailable {
				break
			}
			if sent == 400 {
				t.Fatalf("400 requests after the disk filled were answered, the last %s", ans)
			}
		}
		if status, code := readiness(t, a); status != http.StatusServiceUnavailable || code != serializer.EUNAVAILABLE {
			t.Fatalf("/readyz while serialize refuses for a full disk: %d %q, want 503 %q", status, code, serializer.EUNAVAILABLE)
		}
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		if status, code := readiness(t, a); status != http.StatusOK {
			t.Fatalf("/readyz after space returned: %d %q, want 200", status, code)
		}
	})
	t.Run("read-only", func(t *testing.T) {
		vol, _, trigger := ext4Volume(t)
		a := startAppliance(t, filepath.Join(vol, "data"), writeConfig(t, iotoProductConfig))
		if status, code := readiness(t, a); status != http.StatusOK {
			t.Fatalf("/readyz before the volume went read-only: %d %q, want 200", status, code)
		}
		forceReadOnly(t, vol, trigger)
		if ans, err := ask(http.DefaultClient, a.url("/ioto/serialize"), plainDevice); err != nil || ans.Status != http.StatusServiceUnavailable {
			t.Fatalf("serialize on a read-only volume: %s, %v; want 503", ans, err)
		}
		if status, code := readiness(t, a); status != http.StatusServiceUnavailable || code != serializer.EUNAVAILABLE {
			t.Fatalf("/readyz while serialize refuses for a read-only volume: %d %q, want 503 %q", status, code, serializer.EUNAVAILABLE)
		}
	})
}
