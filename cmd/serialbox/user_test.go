package main

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// user runs `serialbox user ...` in-process.
func user(t *testing.T, data string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append(append([]string{"user"}, args...), "--data", data), &out, &errb)
	return code, out.String(), errb.String()
}

var passwordRE = regexp.MustCompile(`password: (\S+)`)

func TestUserCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	code, out, errs := user(t, data, "add", "anna", "--role", "operator")
	if code != 0 || !strings.Contains(out, "added operator anna") || !passwordRE.MatchString(out) || strings.Contains(out, "api key") {
		t.Fatalf("add anna: %d %q %q", code, out, errs)
	}
	code, out, _ = user(t, data, "add", "mes", "--role", "supervisor", "--api-key")
	if code != 0 || !apiKeyRE.MatchString(out) {
		t.Fatalf("add mes: %d %q", code, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"add", "anna", "--role", "operator"}, 1, "already exists"},
		{[]string{"add", "bob", "--role", "boss"}, 1, "must be operator or supervisor"},
		{[]string{"add", "bad name", "--role", "operator"}, 1, "letters, digits"},
		{[]string{"add", "--role", "operator"}, 2, "NAME is required"},
		{[]string{"passwd", "nobody"}, 1, "no operator named"},
		{[]string{"fly"}, 2, "unknown command"},
	} {
		code, out, errs := user(t, data, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("user %v: exit %d, stdout %q, stderr %q", tc.args, code, out, errs)
		}
	}
	code, out, _ = user(t, data, "list")
	if code != 0 || !regexp.MustCompile(`anna\s+operator\s+no\s+active`).MatchString(out) || !regexp.MustCompile(`mes\s+supervisor\s+yes\s+active`).MatchString(out) {
		t.Fatalf("list: %d\n%s", code, out)
	}
	code, out, _ = user(t, data, "passwd", "anna")
	if code != 0 || !passwordRE.MatchString(out) {
		t.Fatalf("passwd: %d %q", code, out)
	}
	code, out, _ = user(t, data, "key", "anna")
	if code != 0 || !apiKeyRE.MatchString(out) {
		t.Fatalf("key: %d %q", code, out)
	}

	// A password from standard input is never printed.
	cmd := exec.Command(binary, "user", "add", "carl", "--role", "operator", "--password-stdin", "--data", data)
	cmd.Stdin = strings.NewReader("carls-own-password\n")
	b, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(b), "carls-own-password") || strings.Contains(string(b), "password:") {
		t.Fatalf("--password-stdin: %v %s", err, b)
	}
	cmd = exec.Command(binary, "user", "add", "dora", "--role", "operator", "--password-stdin", "--data", data)
	cmd.Stdin = strings.NewReader("short\n")
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "too short") {
		t.Fatalf("short password accepted: %v %s", err, b)
	}
}

// login posts the login form and reports whether a session cookie came back.
func login(t *testing.T, a *appliance, name, password string) bool {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(a.url("/login"), url.Values{"name": {name}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusSeeOther && strings.Contains(resp.Header.Get("Set-Cookie"), "serialbox_session=")
}

// The first start makes a supervisor "admin" and logs a drawn password once; the
// next start makes none and logs nothing about it.
func TestFirstStartCreatesAdmin(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	a := startAppliance(t, data, "")
	raw, err := os.ReadFile(filepath.Join(data, "admin-password"))
	if err != nil || !strings.Contains(a.Logs(), filepath.Join(data, "admin-password")) {
		t.Fatalf("no admin password file named in the log: %v\n%s", err, a.Logs())
	}
	if fi, _ := os.Stat(filepath.Join(data, "admin-password")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin password file mode %v, want 0600", fi.Mode().Perm())
	}
	pw := strings.TrimSpace(string(raw))
	if strings.Contains(a.Logs(), pw) {
		t.Fatal("the admin password is in the log")
	}
	if login(t, a, "admin", "wrong-password") || !login(t, a, "admin", pw) {
		t.Fatal("admin login with the password from the file failed, or a wrong one worked")
	}
	// State-changing API calls need an operator; reading does not.
	resp, err := http.Post(a.url("/api/v1/batches/1/close"), "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("close without a key: %d", resp.StatusCode)
	}
	a.cmd.Process.Kill()
	<-a.done
	b := startAppliance(t, data, "")
	if strings.Contains(b.Logs(), "created supervisor") {
		t.Fatalf("second start created an admin again:\n%s", b.Logs())
	}
}

func TestAdminPasswordFromEnvironmentIsNotLogged(t *testing.T) {
	const pw = "from-the-environment-42"
	t.Setenv("SERIALBOX_ADMIN_PASSWORD", pw)
	a := startAppliance(t, filepath.Join(t.TempDir(), "data"), "")
	if strings.Contains(a.Logs(), pw) || !strings.Contains(a.Logs(), "created supervisor admin with the password from") {
		t.Fatalf("logs:\n%s", a.Logs())
	}
	if !login(t, a, "admin", pw) {
		t.Fatal("admin cannot log in with the password from the environment")
	}
}
