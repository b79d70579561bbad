package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitLog waits until the appliance has logged want n times in all.
func waitLog(t *testing.T, a *appliance, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for strings.Count(a.Logs(), want) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %q (%d) in the log:\n%s", want, n, a.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The configuration is reloaded on SIGHUP and from the API while jigs are served: a
// new station serves at once, a broken file is refused with its key and the running
// configuration stays, and no jig request fails meanwhile.
func TestConfigReloadUnderLoad(t *testing.T) {
	path := writeConfig(t, iotoProductConfig)
	a := startAppliance(t, filepath.Join(t.TempDir(), "data"), path)

	load := startJigs(a.url("/ioto/serialize?station=jig1"), `{}`, 8, 0)

	// A second station appears on SIGHUP.
	second := iotoProductConfig + `
[[stations]]
id = "jig2"
product = "TESTPRODUCT01"
auto_batch = true
[stations.printer]
transport = "none"
`
	if err := os.WriteFile(path, []byte(second), 0o600); err != nil {
		t.Fatal(err)
	}
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, a, "configuration reloaded", 1)
	if id, code, err := serialize(http.DefaultClient, a.url("/ioto/serialize?station=jig2"), `{}`); err != nil || code != 200 || id == "" {
		t.Fatalf("new station after reload: %q %d %v", id, code, err)
	}

	// A broken file is refused and the running configuration stays.
	if err := os.WriteFile(path, []byte(second+"\n[[stations]]\nid = \"jig3\"\nproduct = \"NOPE\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, a, "configuration reload refused", 1)
	if !strings.Contains(a.Logs(), `stations[2].product: unknown product \"NOPE\"`) {
		t.Fatalf("the refusal does not name the key:\n%s", a.Logs())
	}
	if _, code, _ := serialize(http.DefaultClient, a.url("/ioto/serialize?station=jig2"), `{}`); code != 200 {
		t.Fatalf("jig2 after a refused reload: %d", code)
	}
	if _, code, _ := serialize(http.DefaultClient, a.url("/ioto/serialize?station=jig3"), `{}`); code != 422 {
		t.Fatalf("jig3 from the refused file answers %d, want 422", code)
	}

	// From the API, as a supervisor: the file is fixed, jig2 goes again.
	if err := os.WriteFile(path, []byte(iotoProductConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	postJSON(t, a, "/api/v1/config/reload", `{}`)
	if _, code, _ := serialize(http.DefaultClient, a.url("/ioto/serialize?station=jig2"), `{}`); code != 422 {
		t.Fatalf("jig2 after it was removed answers %d, want 422", code)
	}
	ucis, failures := load.stop()
	served := len(ucis) + len(failures)
	if len(failures) > 0 || served < 50 {
		t.Fatalf("%d of %d jig requests failed during reloads: %v", len(failures), served, failures[:min(len(failures), 5)])
	}
	var audit struct {
		Audit []struct{ Action, Actor, Detail string }
	}
	getJSON(t, a.url("/api/v1/audit?subject=config"), &audit)
	var actions []string
	for _, e := range audit.Audit {
		actions = append(actions, e.Action+" by "+e.Actor)
	}
	if got := strings.Join(actions, ", "); got != "config.reload by tester, config.reload.refused by signal:SIGHUP, config.reload by signal:SIGHUP" {
		t.Fatalf("audit trail of reloads: %s", got)
	}
	t.Logf("%d jig requests served through three reloads", served)
}
