package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

func TestRateSpacesTheDevices(t *testing.T) {
	f := newFake(t)
	srv := f.start()
	// 20 devices at 40 a second, evenly: 19 gaps of 25 ms, however many jigs wait.
	start := time.Now()
	res, err := Run(context.Background(), Config{URL: srv.URL + "/ioto/serialize", Jigs: 8, Count: 20, Rate: 40})
	if err != nil {
		t.Fatal(err)
	}
	if res.Devices != 20 || res.ErrorCount() != 0 {
		t.Fatalf("devices %d, errors %v", res.Devices, res.Errors)
	}
	if took := time.Since(start); took < 19*25*time.Millisecond {
		t.Fatalf("20 devices at 40/s took %s; at least 475 ms expected", took)
	}
	// The command line takes the rate and the arrival law.
	code, _, stderr := jigsim(t, "--url", srv.URL+"/ioto/serialize", "--jigs", "4", "--count", "6", "--rate", "100", "--arrivals", "poisson")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, bad := range [][]string{{"--rate", "-1"}, {"--rate", "10", "--arrivals", "burst"}} {
		if code, _, _ := jigsim(t, append([]string{"--url", srv.URL + "/ioto/serialize"}, bad...)...); code != exitUsage {
			t.Errorf("%v: exit %d, want usage", bad, code)
		}
	}
}

func buildSerialize(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "serialize")
	if out, err := exec.Command("go", "build", "-o", bin, "serialbox/cmd/serialize").CombinedOutput(); err != nil {
		t.Fatalf("building serialize: %v\n%s", err, out)
	}
	return bin
}

func TestCommandModeRunsSerializeAsTheAgentDoes(t *testing.T) {
	f := newFake(t)
	srv := f.start()
	bin := buildSerialize(t)
	code, stdout, stderr := jigsim(t, "--url", srv.URL+"?station=line1", "--mode", "command", "--serialize", bin,
		"--jigs", "4", "--count", "12", "--retries", "1", "--product", "P1", "--run-id", "cm", "--json")
	if code != exitOK {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	s := parseJSON(t, stdout)
	if s.Devices != 12 || s.UCIs != 12 || s.Repeats != 12 || s.IdentityMismatches != 0 || s.ErrorCount != 0 {
		t.Fatalf("summary %+v", s)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Each simulated device sent its own hwid, through the station of the URL.
	for hwid, n := range f.asks {
		if n != 2 || !regexp.MustCompile(`^jigsim-cm-\d+-\d+$`).MatchString(hwid) {
			t.Errorf("identity %q asked %d times, want 2", hwid, n)
		}
	}
	if f.queries["station=line1"] != 24 {
		t.Errorf("queries %v", f.queries)
	}
}

// A serialize that ends its output with a newline would give every device a wrong id.
func TestCommandModeCatchesOutputTheAgentWouldMisstore(t *testing.T) {
	script := filepath.Join(t.TempDir(), "serialize")
	os.WriteFile(script, []byte("#!/bin/sh\necho 04HMASW9NF6YY093\n"), 0o755)
	res, err := Run(context.Background(), Config{URL: "http://127.0.0.1:1/", Jigs: 2, Duration: 300 * time.Millisecond,
		Product: "P1", Identities: true, Command: script, RetryDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Devices != 0 || res.Errors[CodeBadOutput] == 0 {
		t.Fatalf("devices %d, errors %v; want only bad_output", res.Devices, res.Errors)
	}
	failing := filepath.Join(t.TempDir(), "serialize")
	os.WriteFile(failing, []byte("#!/bin/sh\necho 'serialize: no open batch' >&2\nexit 1\n"), 0o755)
	res, _ = Run(context.Background(), Config{URL: "http://127.0.0.1:1/", Jigs: 1, Duration: 200 * time.Millisecond,
		Product: "P1", Identities: true, Command: failing, RetryDelay: 10 * time.Millisecond})
	if res.Devices != 0 || res.Errors[CodeCommandFailed] == 0 {
		t.Fatalf("devices %d, errors %v; want command_failed", res.Devices, res.Errors)
	}
}
