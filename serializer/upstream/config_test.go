package upstream_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"serialbox/serializer"
	"serialbox/serializer/upstream"
)

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"CLOUD_TOKEN": "t0k$n", "PW": "pa{ss}", "HOST": "registry.example.com", "EMPTY": ""}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name string
		cfg  upstream.TargetConfig
		want upstream.TargetConfig
		err  string
	}{
		{"replaced",
			upstream.TargetConfig{URL: "https://${HOST}/v1?k=${CLOUD_TOKEN}", Token: "${CLOUD_TOKEN}", Password: "x-${PW}-y", HMACSecret: "${PW}${PW}"},
			upstream.TargetConfig{URL: "https://registry.example.com/v1?k=t0k$n", Token: "t0k$n", Password: "x-pa{ss}-y", HMACSecret: "pa{ss}pa{ss}"}, ""},
		{"dollar kept", upstream.TargetConfig{Password: "$ecret$", Token: "a$b"}, upstream.TargetConfig{Password: "$ecret$", Token: "a$b"}, ""},
		{"other keys untouched", upstream.TargetConfig{Username: "${PW}", Dir: "${HOST}"}, upstream.TargetConfig{Username: "${PW}", Dir: "${HOST}"}, ""},
		{"unset", upstream.TargetConfig{Token: "${NOPE}"}, upstream.TargetConfig{}, "upstream.token: environment variable NOPE is not set"},
		{"empty", upstream.TargetConfig{Password: "${EMPTY}"}, upstream.TargetConfig{}, "upstream.password: environment variable EMPTY is not set"},
		{"in url", upstream.TargetConfig{URL: "https://${NOHOST}/"}, upstream.TargetConfig{}, "upstream.url: environment variable NOHOST is not set"},
		{"unterminated", upstream.TargetConfig{HMACSecret: "${PW"}, upstream.TargetConfig{}, "upstream.hmac_secret: unterminated ${ (write ${NAME})"},
		{"bad name", upstream.TargetConfig{Token: "${A-B}"}, upstream.TargetConfig{}, "upstream.token: ${A-B}: not an environment variable name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			err := cfg.ExpandEnv(getenv)
			switch {
			case tt.err != "":
				if err == nil || err.Error() != "invalid: "+tt.err {
					t.Fatalf("ExpandEnv = %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "t0k") {
					t.Errorf("error shows a value: %v", err)
				}
			case err != nil:
				t.Fatalf("ExpandEnv = %v", err)
			case cfg != tt.want:
				t.Errorf("ExpandEnv =\n%+v\nwant\n%+v", cfg, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	http := func(f func(*upstream.TargetConfig)) upstream.TargetConfig {
		c := upstream.TargetConfig{Name: "cloud", Kind: "http", URL: "https://registry.example.com/v1/devices", Token: "t"}
		if f != nil {
			f(&c)
		}
		return c
	}
	ioto := upstream.TargetConfig{Name: "builder", Kind: "ioto", URL: "https://api.admin.embedthis.com/api", Token: "t"}
	file := upstream.TargetConfig{Name: "usb", Kind: "file", Dir: "/media/usb"}
	with := func(c upstream.TargetConfig, f func(*upstream.TargetConfig)) upstream.TargetConfig { f(&c); return c }
	tests := []struct {
		name string
		cfg  upstream.TargetConfig
		want string // the error; "" = valid
	}{
		{"http", http(nil), ""},
		{"http basic and hmac", http(func(c *upstream.TargetConfig) { c.Token, c.Username, c.Password, c.HMACSecret = "", "u", "p", "s" }), ""},
		{"http lan", http(func(c *upstream.TargetConfig) { c.URL, c.AllowHTTP = "http://10.0.0.5:8080/x", true }), ""},
		{"http tls", http(func(c *upstream.TargetConfig) { c.CAFile, c.CertFile, c.KeyFile = "ca.pem", "c.pem", "k.pem" }), ""},
		{"kind case", http(func(c *upstream.TargetConfig) { c.Kind = " HTTP " }), ""},
		{"ioto", ioto, ""},
		{"ioto pre-claimed test", with(ioto, func(c *upstream.TargetConfig) { c.Account, c.Cloud, c.Test = "a", "c", true }), ""},
		{"file", file, ""},
		{"file jsonl", with(file, func(c *upstream.TargetConfig) { c.Format = "JSONL" }), ""},

		{"no name", http(func(c *upstream.TargetConfig) { c.Name = " " }), "upstream.name: required"},
		{"bad name", http(func(c *upstream.TargetConfig) { c.Name = "my cloud" }), `upstream.name: "my cloud": use up to 64 letters`},
		{"no kind", http(func(c *upstream.TargetConfig) { c.Kind = "" }), "upstream.kind: required (http, ioto, file)"},
		{"unknown kind", http(func(c *upstream.TargetConfig) { c.Kind = "mqtt" }), `upstream.kind: unknown kind "mqtt" (http, ioto, file)`},
		{"no url", http(func(c *upstream.TargetConfig) { c.URL = "" }), "upstream.url: required"},
		{"plain http", http(func(c *upstream.TargetConfig) { c.URL = "http://registry.example.com/v1" }), "upstream.url: plain http sends devices and credentials unencrypted: use https, or set allow_http = true"},
		{"ftp", http(func(c *upstream.TargetConfig) { c.URL = "ftp://x/y" }), `upstream.url: scheme "ftp": use https://`},
		{"no host", http(func(c *upstream.TargetConfig) { c.URL = "https:///v1" }), "upstream.url: no host"},
		{"not a url", http(func(c *upstream.TargetConfig) { c.URL = "https://[::1" }), "upstream.url: not a URL"},
		{"credentials in url", http(func(c *upstream.TargetConfig) { c.URL = "https://u:p@x/v1" }), "upstream.url: credentials in the URL"},
		{"token and basic", http(func(c *upstream.TargetConfig) { c.Username, c.Password = "u", "p" }), "upstream.token: set either token (bearer) or username/password"},
		{"password alone", http(func(c *upstream.TargetConfig) { c.Token, c.Password = "", "p" }), "upstream.username: required with password"},
		{"cert without key", http(func(c *upstream.TargetConfig) { c.CertFile = "c.pem" }), "upstream.key_file: required with cert_file"},
		{"key without cert", http(func(c *upstream.TargetConfig) { c.KeyFile = "k.pem" }), "upstream.cert_file: required with key_file"},
		{"chunk too big", http(func(c *upstream.TargetConfig) { c.ChunkSize = 1001 }), "upstream.chunk_size: 1001: use 1 to 1000"},
		{"chunk negative", http(func(c *upstream.TargetConfig) { c.ChunkSize = -1 }), "upstream.chunk_size: -1"},
		{"timeout short", http(func(c *upstream.TargetConfig) { c.Timeout = upstream.Duration(time.Millisecond) }), "upstream.timeout: 1ms: use 1s to 10m0s"},
		{"dir on http", http(func(c *upstream.TargetConfig) { c.Dir = "/tmp" }), `upstream.dir: only for kind file, not "http"`},
		{"test on http", http(func(c *upstream.TargetConfig) { c.Test = true }), `upstream.test: only for kind ioto, not "http"`},
		{"ioto without token", with(ioto, func(c *upstream.TargetConfig) { c.Token = "" }), "upstream.token: required: the Ioto product token"},
		{"ioto without url", with(ioto, func(c *upstream.TargetConfig) { c.URL = "" }), "upstream.url: required: the Ioto Builder API address"},
		{"ioto plain http", with(ioto, func(c *upstream.TargetConfig) { c.URL = "http://builder/api" }), "upstream.url: plain http"},
		{"ioto account alone", with(ioto, func(c *upstream.TargetConfig) { c.Account = "a" }), "upstream.cloud: required with account"},
		{"ioto cloud alone", with(ioto, func(c *upstream.TargetConfig) { c.Cloud = "c" }), "upstream.account: required with cloud"},
		{"ioto basic", with(ioto, func(c *upstream.TargetConfig) { c.Username = "u" }), `upstream.username: only for kind http, not "ioto"`},
		{"file without dir", with(file, func(c *upstream.TargetConfig) { c.Dir = "" }), "upstream.dir: required"},
		{"file format", with(file, func(c *upstream.TargetConfig) { c.Format = "xlsx" }), `upstream.format: unknown format "xlsx" (csv, jsonl)`},
		{"file url", with(file, func(c *upstream.TargetConfig) { c.URL = "https://x" }), `upstream.url: only for kind http or ioto, not "file"`},
		{"file allow_http", with(file, func(c *upstream.TargetConfig) { c.AllowHTTP = true }), `upstream.allow_http: only for kind http or ioto`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate() = nil, want %q", tt.want)
			case tt.want != "" && !strings.HasPrefix(serializer.ErrorMessage(err), tt.want):
				t.Fatalf("Validate() = %q, want it to start with %q", serializer.ErrorMessage(err), tt.want)
			case err != nil && serializer.ErrorCode(err) != serializer.EINVALID:
				t.Fatalf("error code = %q, want %q", serializer.ErrorCode(err), serializer.EINVALID)
			}
		})
	}
}

func TestValidateAll(t *testing.T) {
	ok := []upstream.TargetConfig{
		{Name: "cloud", Kind: "http", URL: "https://x/v1"},
		{Name: "usb", Kind: "file", Dir: "/media/usb"},
	}
	if err := upstream.ValidateAll(ok); err != nil {
		t.Fatalf("ValidateAll = %v", err)
	}
	bad := append(ok, upstream.TargetConfig{Name: "lan", Kind: "http", URL: "http://10.0.0.5/"})
	if err := upstream.ValidateAll(bad); err == nil || !strings.HasPrefix(serializer.ErrorMessage(err), "upstream[2].url: plain http") {
		t.Errorf("ValidateAll = %v, want upstream[2].url", err)
	}
	dup := append(ok, upstream.TargetConfig{Name: "Cloud", Kind: "file", Dir: "/x"})
	if err := upstream.ValidateAll(dup); err == nil || serializer.ErrorMessage(err) != `upstream[2].name: "Cloud" is already the name of upstream[0]` {
		t.Errorf("ValidateAll = %v, want a duplicate name", err)
	}
}

func TestDefaults(t *testing.T) {
	c := upstream.TargetConfig{Name: " usb ", Kind: "FILE", Dir: "/x"}
	c.Defaults()
	want := upstream.TargetConfig{Name: "usb", Kind: "file", Dir: "/x", Format: "csv", ChunkSize: 100, Timeout: upstream.Duration(30 * time.Second)}
	if c != want {
		t.Errorf("Defaults() =\n%+v\nwant\n%+v", c, want)
	}
}

func TestSecretsStayOut(t *testing.T) {
	c := upstream.TargetConfig{Name: "cloud", Kind: "http", URL: "https://u.example.com/v1?token=SECRET1", Token: "SECRET2",
		Username: "u", Password: "SECRET3", HMACSecret: "SECRET4"}
	b, _ := json.Marshal(c)
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("target", "cfg", c)
	for _, out := range []string{string(b), logged.String(), c.RedactedURL()} {
		if strings.Contains(out, "SECRET") {
			t.Errorf("secret shown: %s", out)
		}
	}
	if got := c.RedactedURL(); got != "https://u.example.com/v1?…" {
		t.Errorf("RedactedURL() = %q", got)
	}
}
