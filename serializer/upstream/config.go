package upstream

import (
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"serialbox/serializer"
	"serialbox/serializer/loop"
)

// Target kinds accepted in TargetConfig.Kind.
const (
	KindHTTP = "http" // POST chunks of devices as JSON to a URL
	KindIoto = "ioto" // register each device with the Ioto Builder
	KindFile = "file" // write manifest files into a folder
)

// Manifest formats accepted in TargetConfig.Format and NewManifestWriter.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// Configuration defaults and limits.
const (
	DefaultChunkSize = 100
	MaxChunkSize     = 1000
	DefaultTimeout   = 30 * time.Second
	MinTimeout       = time.Second
	MaxTimeout       = 10 * time.Minute
)

// TargetConfig is one upstream target: a [[upstream]] table of the configuration file.
// Secrets are left out of JSON and logs.
type TargetConfig struct {
	Name       string   `toml:"name" json:"name"`                       // how batches and the operator page name the target
	Kind       string   `toml:"kind" json:"kind"`                       // http, ioto or file
	URL        string   `toml:"url" json:"-"`                           // http: the endpoint; ioto: the Builder API base
	Token      string   `toml:"token" json:"-"`                         // http: bearer token; ioto: the product token
	Username   string   `toml:"username" json:"username,omitempty"`     // http: basic auth user
	Password   string   `toml:"password" json:"-"`                      // http: basic auth password
	HMACSecret string   `toml:"hmac_secret" json:"-"`                   // http: key of the X-Serialbox-Signature header
	CAFile     string   `toml:"ca_file" json:"ca_file,omitempty"`       // PEM certificates trusted instead of the system's
	CertFile   string   `toml:"cert_file" json:"cert_file,omitempty"`   // PEM client certificate
	KeyFile    string   `toml:"key_file" json:"key_file,omitempty"`     // PEM key of the client certificate
	Auto       bool     `toml:"auto" json:"auto"`                       // push each batch when it closes
	AllowHTTP  bool     `toml:"allow_http" json:"allow_http,omitempty"` // allow plain http:// (LAN targets)
	ChunkSize  int      `toml:"chunk_size" json:"chunk_size"`           // devices per push, 1 to 1000
	Timeout    Duration `toml:"timeout" json:"timeout"`                 // per HTTP request
	Dir        string   `toml:"dir" json:"dir,omitempty"`               // file: the folder manifests go to
	Format     string   `toml:"format" json:"format,omitempty"`         // file: csv or jsonl
	Test       bool     `toml:"test" json:"test,omitempty"`             // ioto: register devices as test devices
	Account    string   `toml:"account" json:"account,omitempty"`       // ioto: account of pre-claimed devices
	Cloud      string   `toml:"cloud" json:"cloud,omitempty"`           // ioto: cloud of pre-claimed devices
}

// Duration is a time.Duration written as a Go duration string ("30s", "1m30s") in
// configuration files; it is the one duration type of every configuration section.
type Duration = loop.Duration

// Defaults fills in the unset fields: chunks of 100, a 30 s timeout, CSV files.
func (c *TargetConfig) Defaults() {
	c.Name = strings.TrimSpace(c.Name)
	c.Kind = strings.ToLower(strings.TrimSpace(c.Kind))
	c.Format = strings.ToLower(strings.TrimSpace(c.Format))
	c.URL = strings.TrimSpace(c.URL)
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.Timeout == 0 {
		c.Timeout = Duration(DefaultTimeout)
	}
	if c.Kind == KindFile && c.Format == "" {
		c.Format = FormatCSV
	}
}

// ExpandEnv replaces ${NAME} in url, token, password and hmac_secret with the value of
// the environment variable NAME, as getenv returns it. A variable that is unset or
// empty is an error naming the key; a $ not followed by { is kept as it is.
func (c *TargetConfig) ExpandEnv(getenv func(string) string) error {
	for _, f := range []struct {
		key string
		v   *string
	}{
		{"url", &c.URL}, {"token", &c.Token}, {"password", &c.Password}, {"hmac_secret", &c.HMACSecret},
	} {
		v, err := expandEnv(*f.v, getenv)
		if err != nil {
			return invalid(f.key, "%v", err)
		}
		*f.v = v
	}
	return nil
}

func expandEnv(s string, getenv func(string) string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i+2:]
		j := strings.IndexByte(s, '}')
		if j < 0 {
			return "", fmt.Errorf("unterminated ${ (write ${NAME})")
		}
		name := s[:j]
		s = s[j+1:]
		if !envName(name) {
			return "", fmt.Errorf("${%s}: not an environment variable name", name)
		}
		v := getenv(name)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		b.WriteString(v)
	}
}

func envName(s string) bool {
	if s == "" || ('0' <= s[0] && s[0] <= '9') {
		return false
	}
	for _, c := range []byte(s) {
		if !(c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// Validate checks the configuration and returns an EINVALID error naming the first bad
// key as "upstream.KEY: ...". Unset fields are checked as Defaults would fill them.
func (c TargetConfig) Validate() error {
	c.Defaults()
	if c.Name == "" {
		return invalid("name", "required (e.g. \"cloud\")")
	}
	if !targetName(c.Name) {
		return invalid("name", "%q: use up to 64 letters, digits, '.', '-' and '_'", c.Name)
	}
	switch c.Kind {
	case KindHTTP, KindIoto, KindFile:
	case "":
		return invalid("kind", "required (http, ioto, file)")
	default:
		return invalid("kind", "unknown kind %q (http, ioto, file)", c.Kind)
	}
	for _, f := range []struct {
		key   string
		set   bool
		kinds []string
	}{
		{"url", c.URL != "", []string{KindHTTP, KindIoto}},
		{"token", c.Token != "", []string{KindHTTP, KindIoto}},
		{"username", c.Username != "", []string{KindHTTP}},
		{"password", c.Password != "", []string{KindHTTP}},
		{"hmac_secret", c.HMACSecret != "", []string{KindHTTP}},
		{"ca_file", c.CAFile != "", []string{KindHTTP, KindIoto}},
		{"cert_file", c.CertFile != "", []string{KindHTTP, KindIoto}},
		{"key_file", c.KeyFile != "", []string{KindHTTP, KindIoto}},
		{"allow_http", c.AllowHTTP, []string{KindHTTP, KindIoto}},
		{"dir", c.Dir != "", []string{KindFile}},
		{"format", c.Format != "", []string{KindFile}},
		{"test", c.Test, []string{KindIoto}},
		{"account", c.Account != "", []string{KindIoto}},
		{"cloud", c.Cloud != "", []string{KindIoto}},
	} {
		if f.set && !slices.Contains(f.kinds, c.Kind) {
			return invalid(f.key, "only for kind %s, not %q", strings.Join(f.kinds, " or "), c.Kind)
		}
	}
	if c.ChunkSize < 1 || c.ChunkSize > MaxChunkSize {
		return invalid("chunk_size", "%d: use 1 to %d", c.ChunkSize, MaxChunkSize)
	}
	if t := time.Duration(c.Timeout); t < MinTimeout || t > MaxTimeout {
		return invalid("timeout", "%v: use %v to %v", t, MinTimeout, MaxTimeout)
	}
	switch c.Kind {
	case KindHTTP, KindIoto:
		if err := c.validateURL(); err != nil {
			return err
		}
		if (c.CertFile == "") != (c.KeyFile == "") {
			if c.CertFile == "" {
				return invalid("cert_file", "required with key_file (the client certificate)")
			}
			return invalid("key_file", "required with cert_file (the client certificate's key)")
		}
	}
	switch c.Kind {
	case KindHTTP:
		if c.Password != "" && c.Username == "" {
			return invalid("username", "required with password (basic auth)")
		}
		if c.Token != "" && c.Username != "" {
			return invalid("token", "set either token (bearer) or username/password (basic auth), not both")
		}
	case KindIoto:
		if c.Token == "" {
			return invalid("token", "required: the Ioto product token (e.g. token = \"${IOTO_TOKEN}\")")
		}
		if (c.Account == "") != (c.Cloud == "") {
			if c.Account == "" {
				return invalid("account", "required with cloud (pre-claimed devices)")
			}
			return invalid("cloud", "required with account (pre-claimed devices)")
		}
	case KindFile:
		if c.Dir == "" {
			return invalid("dir", "required: the folder manifests are written to")
		}
		if c.Format != FormatCSV && c.Format != FormatJSONL {
			return invalid("format", "unknown format %q (csv, jsonl)", c.Format)
		}
	}
	return nil
}

func (c TargetConfig) validateURL() error {
	if c.URL == "" {
		if c.Kind == KindIoto {
			return invalid("url", "required: the Ioto Builder API address (https://...)")
		}
		return invalid("url", "required (e.g. \"https://registry.example.com/v1/devices\")")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return invalid("url", "not a URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !c.AllowHTTP {
			return invalid("url", "plain http sends devices and credentials unencrypted: use https, or set allow_http = true for a target on the LAN")
		}
	default:
		return invalid("url", "scheme %q: use https://", u.Scheme)
	}
	if u.Host == "" {
		return invalid("url", "no host in %q", redactURL(u))
	}
	if u.User != nil {
		return invalid("url", "credentials in the URL: use token or username/password")
	}
	if u.Fragment != "" {
		return invalid("url", "a #fragment is not sent to the server")
	}
	return nil
}

func targetName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c == '.' || c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// ValidateAll checks every target and that no two share a name; an error names the
// target by its place in the list, as "upstream[2].url: ...".
func ValidateAll(cfgs []TargetConfig) error {
	seen := make(map[string]int, len(cfgs))
	for i, c := range cfgs {
		if err := c.Validate(); err != nil {
			return serializer.Errorf(serializer.EINVALID, "upstream[%d].%s", i, strings.TrimPrefix(serializer.ErrorMessage(err), "upstream."))
		}
		name := strings.ToLower(strings.TrimSpace(c.Name))
		if j, ok := seen[name]; ok {
			return serializer.Errorf(serializer.EINVALID, "upstream[%d].name: %q is already the name of upstream[%d]", i, c.Name, j)
		}
		seen[name] = i
	}
	return nil
}

// RedactedURL returns the URL without credentials and query, for logs and the API.
func (c TargetConfig) RedactedURL() string {
	if c.URL == "" {
		return ""
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return "(invalid URL)"
	}
	return redactURL(u)
}

// LogValue logs the target without its secrets.
func (c TargetConfig) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("name", c.Name), slog.String("kind", c.Kind)}
	if c.URL != "" {
		attrs = append(attrs, slog.String("url", c.RedactedURL()))
	}
	if c.Dir != "" {
		attrs = append(attrs, slog.String("dir", c.Dir))
	}
	return slog.GroupValue(append(attrs, slog.Bool("auto", c.Auto))...)
}

func redactURL(u *url.URL) string {
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	s := r.String()
	if u.RawQuery != "" {
		s += "?…"
	}
	return s
}

func invalid(key, format string, args ...any) *serializer.Error {
	return serializer.Errorf(serializer.EINVALID, "upstream.%s: %s", key, fmt.Sprintf(format, args...))
}
