package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"serialbox/serializer/loop"
	"serialbox/station"
	"serialbox/store"
	"serialbox/web"
)

// ReplicateConfig is the [replicate] table: the database is streamed continuously to
// a replica off the box by Litestream, run beside the appliance as its own process.
type ReplicateConfig struct {
	URL string `toml:"url"` // file:///mnt/nas/serialbox, s3://bucket/path, sftp://user@host/path
	// SyncInterval is how often new commits are shipped (default 1s).
	SyncInterval station.Duration `toml:"sync_interval"`
	// LagLimit raises the banner when the replica is further behind (default 10s).
	LagLimit station.Duration `toml:"lag_limit"`
	// S3-compatible storage (MinIO, a NAS): endpoint, region and keys, or "${VAR}"s.
	Endpoint        string `toml:"endpoint"`
	Region          string `toml:"region"`
	AccessKeyID     string `toml:"access_key_id"`
	SecretAccessKey string `toml:"secret_access_key"`
	ForcePathStyle  bool   `toml:"force_path_style"` // bucket in the path, as MinIO wants
	SkipVerify      bool   `toml:"skip_verify"`      // accept the endpoint's self-signed certificate
	// KeyPath is the SSH private key for sftp:// replicas.
	KeyPath string `toml:"key_path"`
	// Litestream is the litestream executable (default: "litestream" on the PATH).
	Litestream string `toml:"litestream"`
}

// Configured reports whether the block is present.
func (r *ReplicateConfig) Configured() bool { return r.URL != "" }

func (r *ReplicateConfig) expandEnv(getenv func(string) string) error {
	for _, f := range []struct {
		key string
		v   *string
	}{{"url", &r.URL}, {"endpoint", &r.Endpoint}, {"region", &r.Region},
		{"access_key_id", &r.AccessKeyID}, {"secret_access_key", &r.SecretAccessKey}} {
		v, err := expandVars(*f.v, getenv)
		if err != nil {
			return fmt.Errorf("replicate.%s: %v", f.key, err)
		}
		*f.v = v
	}
	return nil
}

// validate checks the block and fills in its defaults.
func (r *ReplicateConfig) validate() error {
	if !r.Configured() {
		return nil
	}
	if err := checkReplicaURL(r.URL); err != nil {
		return fmt.Errorf("replicate.url: %v", err)
	}
	if r.SyncInterval == 0 {
		r.SyncInterval = station.Duration(time.Second)
	}
	if r.LagLimit == 0 {
		r.LagLimit = station.Duration(10 * time.Second)
	}
	switch {
	case time.Duration(r.SyncInterval) < 100*time.Millisecond:
		return fmt.Errorf("replicate.sync_interval: %v is too short (at least 100ms)", time.Duration(r.SyncInterval))
	case r.LagLimit < r.SyncInterval:
		return fmt.Errorf("replicate.lag_limit: %v is shorter than sync_interval %v", time.Duration(r.LagLimit), time.Duration(r.SyncInterval))
	case (r.AccessKeyID == "") != (r.SecretAccessKey == ""):
		return errors.New("replicate.access_key_id and replicate.secret_access_key: give both or neither")
	}
	if r.Litestream == "" {
		r.Litestream = "litestream"
	}
	return nil
}

func checkReplicaURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", redactURL(s))
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" || !filepath.IsAbs(u.Path) {
			return fmt.Errorf("%q: a file replica is file:///absolute/folder", s)
		}
	case "s3":
		if u.Host == "" {
			return fmt.Errorf("%q: an S3 replica is s3://bucket/path", s)
		}
	case "sftp":
		if u.Host == "" {
			return fmt.Errorf("%q: an SFTP replica is sftp://user@host/path", redactURL(s))
		}
	default:
		return fmt.Errorf("%q: the replica is file://, s3:// or sftp://", redactURL(s))
	}
	if _, ok := u.User.Password(); ok {
		return errors.New("no password in the URL: use access_key_id/secret_access_key (S3) or key_path (SFTP)")
	}
	return nil
}

// litestreamConfig writes Litestream's configuration for the database at dbPath. It
// holds no secret: the S3 keys go to the process's environment (litestreamEnv).
func (r *ReplicateConfig) litestreamConfig(dbPath, socket string) string {
	var b strings.Builder
	q := strconv.Quote
	b.WriteString("logging:\n  level: info\n  type: text\n  stderr: true\n")
	if socket != "" {
		fmt.Fprintf(&b, "socket:\n  enabled: true\n  path: %s\n  permissions: 384\n", q(socket))
	}
	fmt.Fprintf(&b, "dbs:\n  - path: %s\n    monitor-interval: %s\n    replica:\n      url: %s\n      sync-interval: %s\n",
		q(dbPath), time.Duration(r.SyncInterval), q(r.URL), time.Duration(r.SyncInterval))
	if r.Endpoint != "" {
		fmt.Fprintf(&b, "      endpoint: %s\n", q(r.Endpoint))
	}
	if r.Region != "" {
		fmt.Fprintf(&b, "      region: %s\n", q(r.Region))
	}
	if r.ForcePathStyle {
		b.WriteString("      force-path-style: true\n")
	}
	if r.SkipVerify {
		b.WriteString("      skip-verify: true\n")
	}
	if r.KeyPath != "" {
		fmt.Fprintf(&b, "      key-path: %s\n", q(r.KeyPath))
	}
	return b.String()
}

// litestreamEnv is the environment of the litestream process: the appliance's, with
// the S3 keys in the variables Litestream reads. AWS_CA_BUNDLE is left out: Litestream
// brings its own HTTP client, with which the AWS SDK refuses to start when it is set;
// the endpoint's certificate is checked against the system's authorities.
func (r *ReplicateConfig) litestreamEnv() []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "AWS_CA_BUNDLE=") })
	if r.AccessKeyID != "" {
		env = append(env, "LITESTREAM_ACCESS_KEY_ID="+r.AccessKeyID, "LITESTREAM_SECRET_ACCESS_KEY="+r.SecretAccessKey)
	}
	return env
}

// replicator runs `litestream replicate` for the database while the appliance serves,
// restarts it when it dies, and reads how far the replica is behind from its control
// socket.
type replicator struct {
	cfg    ReplicateConfig
	db     string
	conf   string // litestream's configuration file
	socket string
	logger *slog.Logger
	client *http.Client
	runner loop.Runner

	mu        sync.Mutex
	proc      *os.Process
	running   bool
	started   time.Time // when the running process started
	lastSync  time.Time // the replica's last successful sync
	lastError string
}

// startReplication starts the replicator for the database at dbPath (nil without
// [replicate]).
func startReplication(cfg *Config, dbPath string, logger *slog.Logger) (*replicator, error) {
	if !cfg.Replicate.Configured() {
		return nil, nil
	}
	r := &replicator{cfg: cfg.Replicate, db: dbPath, logger: logger}
	bin, err := exec.LookPath(r.cfg.Litestream)
	if err != nil {
		return nil, fmt.Errorf("replicate.litestream: %w (install Litestream: see the README)", err)
	}
	r.cfg.Litestream = bin
	// A Unix socket path has a short limit (108 bytes): keep it out of deep data folders.
	r.socket = filepath.Join(os.TempDir(), fmt.Sprintf("serialbox-litestream-%d.sock", os.Getpid()))
	r.conf = filepath.Join(filepath.Dir(dbPath), "litestream.yml")
	if err := os.WriteFile(r.conf, []byte(r.cfg.litestreamConfig(dbPath, r.socket)), 0o600); err != nil {
		return nil, fmt.Errorf("replicate: %w", err)
	}
	r.client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", r.socket)
		},
	}}
	backoff := loop.Backoff{Min: time.Second, Max: 30 * time.Second}
	failures := 0
	r.runner.Start(
		func(ctx context.Context, stop <-chan struct{}) {
			loop.Loop{Step: func(ctx context.Context) time.Duration {
				if err := r.runOnce(ctx, stop); err != nil {
					failures++
					r.logger.Error("litestream stopped; restarting it", "err", err, "failures_in_a_row", failures)
					return backoff.Wait(failures)
				}
				failures = 0
				return time.Second
			}}.Run(ctx, stop)
		},
		func(ctx context.Context, stop <-chan struct{}) {
			loop.Loop{Step: func(ctx context.Context) time.Duration {
				r.poll(ctx)
				return 250 * time.Millisecond
			}}.Run(ctx, stop)
		})
	logger.Info("replicating", "url", redactURL(r.cfg.URL), "sync_interval", time.Duration(r.cfg.SyncInterval), "litestream", bin)
	return r, nil
}

// runOnce runs litestream until it exits or the replicator stops; a stop ends it with
// SIGTERM, so that it ships what it has before it goes.
func (r *replicator) runOnce(ctx context.Context, stop <-chan struct{}) error {
	cmd := exec.Command(r.cfg.Litestream, "replicate", "-no-expand-env", "-config", r.conf)
	cmd.Env = r.cfg.litestreamEnv()
	// When the appliance dies, so does its litestream: the next start runs a new one.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		r.setError(err.Error())
		return err
	}
	r.mu.Lock()
	r.proc, r.running, r.started, r.lastSync = cmd.Process, true, time.Now(), time.Time{}
	r.mu.Unlock()
	logged := make(chan struct{})
	go func() { defer close(logged); r.relayLog(out) }()
	exited := make(chan error, 1)
	go func() { <-logged; exited <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-exited:
	case <-stop:
		werr = r.terminate(cmd.Process, exited)
	case <-ctx.Done():
		werr = r.terminate(cmd.Process, exited)
	}
	r.mu.Lock()
	r.running, r.proc = false, nil
	r.mu.Unlock()
	select {
	case <-stop:
		return nil
	case <-ctx.Done():
		return nil
	default:
	}
	if werr == nil {
		werr = errors.New("exited")
	}
	r.setError("litestream exited: " + werr.Error())
	return werr
}

// terminate asks litestream to stop and kills it if it takes more than 10 s.
func (r *replicator) terminate(p *os.Process, exited <-chan error) error {
	p.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		return err
	case <-time.After(10 * time.Second):
		p.Kill()
		return <-exited
	}
}

// relayLog passes litestream's log lines on, and keeps the last error.
func (r *replicator) relayLog(out io.Reader) {
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		level := slog.LevelInfo
		if strings.Contains(line, "level=ERROR") {
			level = slog.LevelError
			r.setError(line)
		} else if strings.Contains(line, "level=WARN") {
			level = slog.LevelWarn
		} else if strings.Contains(line, "level=DEBUG") {
			level = slog.LevelDebug
		}
		r.logger.Log(context.Background(), level, "litestream", "line", line)
	}
	io.Copy(io.Discard, out)
}

func (r *replicator) setError(s string) {
	r.mu.Lock()
	r.lastError = s
	r.mu.Unlock()
}

// poll asks litestream when the replica last took everything the database had.
func (r *replicator) poll(ctx context.Context) {
	r.mu.Lock()
	running := r.running
	r.mu.Unlock()
	if !running {
		return
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://litestream/list", nil)
	resp, err := r.client.Do(req)
	if err != nil {
		return // not listening yet
	}
	defer resp.Body.Close()
	var list struct {
		Databases []struct {
			Path       string     `json:"path"`
			LastSyncAt *time.Time `json:"last_sync_at"`
		} `json:"databases"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return
	}
	for _, d := range list.Databases {
		if d.LastSyncAt != nil {
			r.mu.Lock()
			if d.LastSyncAt.After(r.lastSync) {
				r.lastSync = *d.LastSyncAt
				r.lastError = ""
			}
			r.mu.Unlock()
		}
	}
}

// status is the replica's part of the operator page, /readyz and /metrics. The lag is
// the time since the replica last took every commit litestream had seen; before the
// first sync of a process, the time since it started.
func (r *replicator) status() *web.ReplicaStatus {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &web.ReplicaStatus{URL: redactURL(r.cfg.URL), Limit: time.Duration(r.cfg.LagLimit), Running: r.running, LastError: r.lastError}
	switch {
	case !r.lastSync.IsZero():
		st.Lag = max(time.Since(r.lastSync), 0)
	case !r.started.IsZero():
		st.Lag = time.Since(r.started)
	}
	if st.LastError == "" && !st.Running {
		st.LastError = "litestream is not running"
	}
	return st
}

// Close stops litestream after it shipped what it has, and removes its socket.
func (r *replicator) Close() {
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r.runner.Stop(ctx)
	os.Remove(r.socket)
}

// offsite is what the web's Offsite interface reads: the replicator and the event
// publisher, either of which may be absent.
type offsite struct {
	rep    *replicator
	events *eventPublisher
}

// OffsiteStatus reports the replica and the broker.
func (o offsite) OffsiteStatus() web.OffsiteStatus {
	return web.OffsiteStatus{Replica: o.rep.status(), Broker: o.events.status()}
}

// restoreFromReplica builds the database from the replica at rawURL, as it was at at
// ("" = the newest state), checks it and puts it in place like restore --from. It
// refuses while an appliance serves the data folder.
func restoreFromReplica(ctx context.Context, cfg Config, rawURL, at string, stdout io.Writer) error {
	rc := cfg.Replicate
	rc.URL = rawURL
	if err := rc.validate(); err != nil {
		return fmt.Errorf("--from-replica: %w", err)
	}
	var ts time.Time
	if at != "" {
		var err error
		if ts, err = time.Parse(time.RFC3339, at); err != nil {
			return fmt.Errorf("--at: %q is not an RFC 3339 time (2026-11-21T14:30:00Z)", at)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	release, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("refusing to restore: %w; stop it first", err)
	}
	defer release()
	bin, err := exec.LookPath(rc.Litestream)
	if err != nil {
		return fmt.Errorf("replicate.litestream: %w (install Litestream: see the README)", err)
	}
	dbPath, err := filepath.Abs(filepath.Join(cfg.DataDir, "serialbox.db"))
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(cfg.DataDir, "from-replica-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	conf := filepath.Join(work, "litestream.yml")
	if err := os.WriteFile(conf, []byte(rc.litestreamConfig(dbPath, "")), 0o600); err != nil {
		return err
	}
	out := filepath.Join(work, "serialbox.db")
	args := []string{"restore", "-no-expand-env", "-config", conf, "-o", out, "-integrity-check", "quick"}
	if !ts.IsZero() {
		args = append(args, "-timestamp", ts.UTC().Format(time.RFC3339))
	}
	cmd := exec.CommandContext(ctx, bin, append(args, dbPath)...)
	cmd.Env = rc.litestreamEnv()
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("litestream restore from %s: %v\n%s", redactURL(rawURL), err, strings.TrimSpace(string(msg)))
	}
	if err := store.Restore(ctx, out, dbPath); err != nil {
		return err
	}
	// Litestream's local state described the database that was replaced.
	if err := os.RemoveAll(filepath.Join(filepath.Dir(dbPath), ".serialbox.db-litestream")); err != nil {
		return err
	}
	when := "its newest state"
	if !ts.IsZero() {
		when = ts.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "restored %s (%s) into %s\n", redactURL(rawURL), when, cfg.DataDir)
	return nil
}
