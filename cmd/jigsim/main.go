// Command jigsim is the jig load simulator: it behaves like N test jigs running the
// Ioto agent at once, each posting its device object to a serialbox appliance and
// waiting for a UCI, and then says how fast the UCIs came and whether every one of
// them was unique (and, with --verify-db, durable).
//
//	jigsim --url http://127.0.0.1:4100/ioto/serialize --jigs 64 --duration 10s --product ID
//	jigsim --url URL --jigs 200 --count 200 --identities --retries 3 --verify-db data/serialbox.db
//
// Each jig loops: it posts {"product":ID,"name":"SerialEval","model":"Eval-01"} (with
// --identities also a unique "hwid") and counts the device as serialized only on a 200
// answer with a non-empty id, as the agent does. On anything else it waits
// --retry-delay and asks again for the same device. With --retries K each device asks K
// more times after its answer, as if the answer had been lost, and must get the same
// UCI each time.
//
// Flags:
//
//	--url URL            serialize endpoint (required); its query is kept
//	--jigs N             concurrent jigs (64)
//	--duration D         start no new device after D (10s when --count is not given)
//	--count N            serialize N devices in total; --duration, if given, still caps it
//	--product ID         product in the device object (none: the station's default)
//	--stations a,b,c     jig i adds ?station=<list[i % len]>
//	--identities         each device carries a unique hwid jigsim-<run>-<jig>-<n>
//	--retries K          ask K more times per device with the same identity (needs --identities)
//	--rate N             start N new devices per second over all jigs (0: flat out)
//	--arrivals A         with --rate: even (fixed gaps) or poisson (random gaps, the default)
//	--mode M             http (the agent's URL mode, default) or command: run the
//	                     serialize binary for every ask as the agent's command mode does
//	                     and take its whole output as the id (implies --identities,
//	                     passed as SERIALBOX_HWID; needs --product)
//	--serialize PATH     the serialize binary for --mode command ("serialize" on PATH)
//	--timeout D          per request (30s, like the agent)
//	--retry-delay D      pause after a failed request (2s, like the agent)
//	--run-id S           the <run> part of hwids (random)
//	--verify-db FILE     afterwards check every UCI is in the appliance's SQLite file (read-only)
//	--out FILE           write every acknowledged UCI, one a line
//	--json               print the summary as JSON
//	--allow-remote       allow a target outside loopback, private and link-local addresses
//
// The summary ends with one line of the form
//
//	12345 ucis/s p50=1.2ms p90=2.0ms p99=4.1ms max=9.8ms errors=0 duplicates=0
//
// where ucis/s is distinct UCIs per second of the run and the latencies are those of
// the successful requests. Failed requests are counted by the appliance's JSON error
// code, or http_<status>, transport, timeout, no_id (200 without an id),
// identity_mismatch (an identity got two UCIs), and in command mode command_failed
// (serialize exited non-zero) and bad_output (the output is not exactly a UCI, so the
// agent would store a wrong id).
//
// Exit status: 0 all good; 1 a UCI was acknowledged twice, an identity got two UCIs, a
// UCI is missing from the database, or the results could not be checked or written;
// 2 usage (including a target outside the local network); 3 some requests failed but
// nothing was duplicated or lost.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // duplicates, identity mismatches, missing UCIs, or no proof possible
	exitUsage  = 2
	exitErrors = 3 // requests failed, but every acknowledged UCI is sound
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command line.
type options struct {
	cfg         Config
	stations    string
	verifyDB    string
	out         string
	json        bool
	allowRemote bool
	arrivals    string
	mode        string
	serialize   string
}

func parseArgs(args []string, stderr io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("jigsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.cfg.URL, "url", "", "serialize endpoint, e.g. http://127.0.0.1:4100/ioto/serialize (required)")
	fs.IntVar(&o.cfg.Jigs, "jigs", 64, "concurrent jigs")
	fs.DurationVar(&o.cfg.Duration, "duration", 0, "start no new device after this long (10s when --count is not given)")
	fs.IntVar(&o.cfg.Count, "count", 0, "serialize this many devices in total")
	fs.StringVar(&o.cfg.Product, "product", "", "product id in the device object (none: the station's default)")
	fs.StringVar(&o.stations, "stations", "", "comma-separated stations; jig i uses station i % len")
	fs.BoolVar(&o.cfg.Identities, "identities", false, "each device carries a unique hwid")
	fs.IntVar(&o.cfg.Retries, "retries", 0, "ask this many more times per device with the same identity, as after a lost answer")
	fs.Float64Var(&o.cfg.Rate, "rate", 0, "new devices per second over all jigs (0: as fast as the jigs go)")
	fs.StringVar(&o.arrivals, "arrivals", "poisson", "with --rate: even or poisson")
	fs.StringVar(&o.mode, "mode", "http", "http (URL mode) or command (run the serialize binary as the agent's command mode)")
	fs.StringVar(&o.serialize, "serialize", "serialize", "the serialize binary for --mode command")
	fs.DurationVar(&o.cfg.Timeout, "timeout", 30*time.Second, "per request")
	fs.DurationVar(&o.cfg.RetryDelay, "retry-delay", 2*time.Second, "pause after a failed request")
	fs.StringVar(&o.cfg.RunID, "run-id", "", "the run part of hwids (default random)")
	fs.StringVar(&o.verifyDB, "verify-db", "", "check every UCI is in this SQLite file (opened read-only)")
	fs.StringVar(&o.out, "out", "", "write every acknowledged UCI to this file, one a line")
	fs.BoolVar(&o.json, "json", false, "print the summary as JSON")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "allow a target outside loopback, private and link-local addresses")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: jigsim --url URL [--jigs N] [--duration D | --count N] [--product ID] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.mode == "command" {
		// Every simulated device has hardware of its own: give each its hwid.
		o.cfg.Identities = true
	}
	switch {
	case o.cfg.URL == "":
		return nil, errors.New("--url is required")
	case o.cfg.Jigs < 1:
		return nil, errors.New("--jigs must be at least 1")
	case o.cfg.Count < 0:
		return nil, errors.New("--count must not be negative")
	case o.cfg.Duration < 0:
		return nil, errors.New("--duration must not be negative")
	case o.cfg.Retries < 0:
		return nil, errors.New("--retries must not be negative")
	case o.cfg.Retries > 0 && !o.cfg.Identities:
		return nil, errors.New("--retries needs --identities: without an identity every request is a new device")
	case o.cfg.Timeout <= 0:
		return nil, errors.New("--timeout must be positive")
	case o.cfg.RetryDelay < 0:
		return nil, errors.New("--retry-delay must not be negative")
	case o.cfg.Rate < 0 || math.IsNaN(o.cfg.Rate) || math.IsInf(o.cfg.Rate, 0):
		return nil, errors.New("--rate must be a number of devices per second, 0 or more")
	case o.arrivals != "even" && o.arrivals != "poisson":
		return nil, fmt.Errorf("--arrivals %q: use even or poisson", o.arrivals)
	case o.mode != "http" && o.mode != "command":
		return nil, fmt.Errorf("--mode %q: use http or command", o.mode)
	case o.mode == "command" && o.cfg.Product == "":
		return nil, errors.New("--mode command needs --product: the agent runs serialize \"<product>\"")
	}
	o.cfg.Poisson = o.arrivals == "poisson"
	if o.mode == "command" {
		path, err := exec.LookPath(o.serialize)
		if err != nil {
			return nil, fmt.Errorf("--serialize: %v", err)
		}
		o.cfg.Command = path
	}
	if o.cfg.Count == 0 && o.cfg.Duration == 0 {
		o.cfg.Duration = 10 * time.Second
	}
	for s := range strings.SplitSeq(o.stations, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.cfg.Stations = append(o.cfg.Stations, s)
		}
	}
	if o.cfg.RunID == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		o.cfg.RunID = hex.EncodeToString(b[:])
	}
	return &o, nil
}

// checkTarget refuses a URL that is not http(s), or whose host is outside the local
// network unless remote is allowed: the simulator must never load public addresses.
func checkTarget(ctx context.Context, raw string, remote bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("--url: %v", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("--url %q is not an http(s) URL", raw)
	}
	if remote {
		return nil
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
			return fmt.Errorf("--url: %v", err)
		}
	}
	for _, ip := range addrs {
		if !localIP(ip) {
			name := host
			if ip.String() != host {
				name += " (" + ip.String() + ")"
			}
			return fmt.Errorf("refusing to load %s: not a loopback, private or link-local address; pass --allow-remote if it really is the appliance", name)
		}
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "jigsim:", err)
		return exitUsage
	}
	if err := checkTarget(ctx, o.cfg.URL, o.allowRemote); err != nil {
		fmt.Fprintln(stderr, "jigsim:", err)
		return exitUsage
	}
	o.cfg.Client = NewClient(o.cfg.Jigs, o.allowRemote)

	res, err := Run(ctx, o.cfg)
	if err != nil {
		fmt.Fprintln(stderr, "jigsim:", err)
		return exitUsage
	}
	o.cfg.Client.CloseIdleConnections()

	failed := false
	if o.out != "" {
		if err := writeUCIs(o.out, res.Acks); err != nil {
			fmt.Fprintln(stderr, "jigsim: --out:", err)
			failed = true
		}
	}
	var ver *Verification
	if o.verifyDB != "" {
		// Identities are checked only when the URL names no key, which would win over the hwid.
		u, _ := url.Parse(o.cfg.URL)
		checkIdentity := !u.Query().Has("key")
		if ver, err = Verify(context.WithoutCancel(ctx), o.verifyDB, res.Acks, checkIdentity); err != nil {
			fmt.Fprintln(stderr, "jigsim: --verify-db:", err)
			failed = true
		}
	}

	for _, uci := range res.DupUCIs {
		fmt.Fprintf(stderr, "jigsim: %s was acknowledged to two devices\n", uci)
	}
	for i, m := range res.Mismatches {
		if i == maxExamples {
			break
		}
		fmt.Fprintf(stderr, "jigsim: identity %s got two UCIs: %s, then %s\n", m.HWID, m.First, m.Then)
	}
	if ver != nil {
		for _, e := range ver.Examples {
			fmt.Fprintln(stderr, "jigsim:", e)
		}
	}

	code := exitOK
	switch {
	case failed || res.Duplicates > 0 || len(res.Mismatches) > 0 ||
		(ver != nil && (ver.Missing > 0 || ver.WrongIdentity > 0)):
		code = exitFailed
	case res.ErrorCount() > 0:
		code = exitErrors
	}

	s := summarize(o, res, ver, code)
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s)
	} else {
		printSummary(stdout, s)
	}
	return code
}

// writeUCIs writes one acknowledged UCI a line.
func writeUCIs(path string, acks []Ack) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, a := range acks {
		w.WriteString(a.UCI)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Summary is the report of a run, as printed or as JSON.
type Summary struct {
	URL                string         `json:"url"`
	Jigs               int            `json:"jigs"`
	ElapsedSeconds     float64        `json:"elapsed_s"`
	Requests           int            `json:"requests"`
	OK                 int            `json:"ok"`
	Devices            int            `json:"devices"`
	UCIs               int            `json:"ucis"`
	Duplicates         int            `json:"duplicates"`
	Repeats            int            `json:"repeats"`
	IdentityMismatches int            `json:"identity_mismatches"`
	UCIsPerSecond      float64        `json:"ucis_per_s"`
	RequestsPerSecond  float64        `json:"requests_per_s"`
	LatencyMS          Latency        `json:"latency_ms"`
	Errors             map[string]int `json:"errors"`
	ErrorCount         int            `json:"error_count"`
	Verify             *Verification  `json:"verify,omitempty"`
	Exit               int            `json:"exit"`
}

// Latency holds the percentiles of successful requests, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func summarize(o *options, res *Result, ver *Verification, code int) *Summary {
	secs := res.Elapsed.Seconds()
	rate := func(n int) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(n) / secs
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return &Summary{
		URL:                o.cfg.URL,
		Jigs:               o.cfg.Jigs,
		ElapsedSeconds:     secs,
		Requests:           res.Requests,
		OK:                 res.OK,
		Devices:            res.Devices,
		UCIs:               res.Distinct,
		Duplicates:         res.Duplicates,
		Repeats:            res.Repeats,
		IdentityMismatches: len(res.Mismatches),
		UCIsPerSecond:      rate(res.Distinct),
		RequestsPerSecond:  rate(res.Requests),
		LatencyMS: Latency{
			P50: ms(Percentile(res.Latencies, 50)),
			P90: ms(Percentile(res.Latencies, 90)),
			P99: ms(Percentile(res.Latencies, 99)),
			Max: ms(Percentile(res.Latencies, 100)),
		},
		Errors:     res.Errors,
		ErrorCount: res.ErrorCount(),
		Verify:     ver,
		Exit:       code,
	}
}

func printSummary(w io.Writer, s *Summary) {
	lat := fmt.Sprintf("p50=%.1fms p90=%.1fms p99=%.1fms max=%.1fms",
		s.LatencyMS.P50, s.LatencyMS.P90, s.LatencyMS.P99, s.LatencyMS.Max)
	fmt.Fprintf(w, "jigsim: %d jigs, %.2fs, %s\n", s.Jigs, s.ElapsedSeconds, s.URL)
	fmt.Fprintf(w, "requests   %d sent, %d answered with an id, %d failed (%.0f/s)\n",
		s.Requests, s.OK, s.ErrorCount, s.RequestsPerSecond)
	fmt.Fprintf(w, "ucis       %d distinct from %d devices, %d duplicates (%.0f ucis/s)\n",
		s.UCIs, s.Devices, s.Duplicates, s.UCIsPerSecond)
	if s.Repeats > 0 || s.IdentityMismatches > 0 {
		fmt.Fprintf(w, "repeats    %d asks again with the same identity, %d got another UCI\n",
			s.Repeats, s.IdentityMismatches)
	}
	fmt.Fprintf(w, "latency    %s (successful requests)\n", lat)
	fmt.Fprintf(w, "errors     %s\n", formatErrors(s.Errors))
	if v := s.Verify; v != nil {
		fmt.Fprintf(w, "database   %d UCIs checked, %d missing, %d under another identity\n",
			v.Checked, v.Missing, v.WrongIdentity)
	}
	fmt.Fprintf(w, "%d ucis/s %s errors=%d duplicates=%d\n",
		int64(math.Round(s.UCIsPerSecond)), lat, s.ErrorCount, s.Duplicates)
}

// formatErrors lists error counts by code, most frequent first.
func formatErrors(errs map[string]int) string {
	if len(errs) == 0 {
		return "none"
	}
	codes := make([]string, 0, len(errs))
	for c := range errs {
		codes = append(codes, c)
	}
	slices.SortFunc(codes, func(a, b string) int {
		if errs[a] != errs[b] {
			return errs[b] - errs[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s=%d", c, errs[c])
	}
	return strings.Join(parts, " ")
}
