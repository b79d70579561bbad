package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"serialbox/serializer"
)

const commandModeConfig = `
[[products]]
id = "TESTPRODUCT01"
name = "Serial Eval"
[[stations]]
id = "jig1"
product = "TESTPRODUCT01"
auto_batch = true
[stations.printer]
transport = "file"
[[stations]]
id = "strict"
product = "TESTPRODUCT01"
auto_batch = true
require_identity = true
[stations.printer]
transport = "file"
`

// agentRun runs the serialize command the way the Ioto agent's command mode does:
// `serialize "<product>"`, stdout and stderr captured together as the device id.
func agentRun(t *testing.T, bin, applianceURL string, args ...string) (output string, exit int) {
	t.Helper()
	cmd := exec.Command(bin, append(args, "TESTPRODUCT01")...)
	cmd.Env = append(os.Environ(), "SERIALBOX_URL="+applianceURL, "SERIALBOX_HWID=")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func TestCommandModeAsTheIotoAgentRunsIt(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "serialize")
	if out, err := exec.Command("go", "build", "-o", bin, "serialbox/cmd/serialize").CombinedOutput(); err != nil {
		t.Fatalf("building serialize: %v\n%s", err, out)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "serialbox.toml")
	if err := os.WriteFile(cfg, []byte(commandModeConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAppliance(t, filepath.Join(dir, "data"), cfg)

	// A device whose firmware gives it a DMI UUID, as the command reads it by itself.
	device := filepath.Join(t.TempDir(), "root")
	os.MkdirAll(filepath.Join(device, "sys/class/dmi/id"), 0o755)
	os.WriteFile(filepath.Join(device, "sys/class/dmi/id/product_uuid"), []byte("4C4C4544-0042-3510-8052-B4C04F4E4D32\n"), 0o400)

	out, code := agentRun(t, bin, a.url("?station=jig1"), "--root", device)
	uci, err := serializer.Parse(out)
	if code != 0 || err != nil || uci.String() != out {
		t.Fatalf("exit %d, output %q: the agent would store exactly this as the id", code, out)
	}
	// Asked again on the same device (the stock agent asks at every boot): the same UCI.
	if again, code := agentRun(t, bin, a.url("?station=jig1"), "--root", device); code != 0 || again != out {
		t.Fatalf("second run: exit %d, output %q; want %q", code, again, out)
	}
	// The stored id is what the appliance's own lookup takes.
	resp, err := http.Get(a.url("/api/v1/devices/" + out))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Device struct{ Identity string } `json:"device"`
	}
	json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if resp.StatusCode != 200 || d.Device.Identity != "hwid:4c4c4544-0042-3510-8052-b4c04f4e4d32" {
		t.Fatalf("lookup of the stored id: %d, identity %q", resp.StatusCode, d.Device.Identity)
	}

	// A device with no identity at a station that requires one: refused, nothing stored.
	empty := t.TempDir()
	if out, code := agentRun(t, bin, a.url("?station=strict"), "--root", empty); code == 0 || !strings.Contains(out, "identity_required") {
		t.Fatalf("no identity at a strict station: exit %d, output %q", code, out)
	}

	// The appliance is down: non-zero, and nothing on stdout.
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		t.Fatal("serialbox did not stop")
	}
	cmd := exec.Command(bin, "--root", device, "--timeout", "1s", "TESTPRODUCT01")
	cmd.Env = append(os.Environ(), "SERIALBOX_URL="+a.url("?station=jig1"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || stdout.Len() != 0 || stderr.Len() == 0 {
		t.Fatalf("appliance down: %v, stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}
}
