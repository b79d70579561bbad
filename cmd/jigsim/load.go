package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Error codes the simulator records besides the appliance's own JSON codes.
const (
	CodeTransport        = "transport"         // no answer: refused, reset, closed
	CodeTimeout          = "timeout"           // no answer within Config.Timeout
	CodeNoID             = "no_id"             // 200 without a non-empty string id
	CodeIdentityMismatch = "identity_mismatch" // identity got two UCIs
	CodeCommandFailed    = "command_failed"    // command mode: serialize exited non-zero
	CodeBadOutput        = "bad_output"        // command mode: the output is not exactly a UCI
)

// maxAnswer bounds how much of an answer is read; the appliance's are under 200 bytes.
const maxAnswer = 1 << 20

// Config describes one load run: who the jigs are and how long they work.
type Config struct {
	URL        string        // serialize endpoint, e.g. http://127.0.0.1:4100/ioto/serialize
	Product    string        // product id sent in the device object; empty sends none
	Stations   []string      // jig i adds ?station=Stations[i%len]; empty adds none
	Jigs       int           // concurrent jigs
	Duration   time.Duration // no new device after this long; 0 = no limit
	Count      int           // devices to serialize in total; 0 = no limit
	Identities bool          // each device carries a unique hwid
	Retries    int           // extra asks per device after its answer, as if it were lost
	Timeout    time.Duration // per request, like the agent's 30 s
	RetryDelay time.Duration // pause after a failed request, like the agent's 2 s
	RunID      string        // prefix of hwids: jigsim-<RunID>-<jig>-<n>
	Client     *http.Client  // nil builds one with keep-alive for Jigs connections
	// Rate is how many new devices start per second over all jigs; 0 = as fast as
	// the jigs go. Repeat asks and retries after a failure are not paced.
	Rate float64
	// Poisson spaces the starts at random (exponential gaps, as units reaching
	// independent jigs do) instead of evenly.
	Poisson bool
	// Command, when set, is a serialize binary run for each ask as the Ioto agent's
	// command mode runs it, instead of an HTTP request: SERIALBOX_URL is the jig's
	// URL, SERIALBOX_HWID the device's hwid, and the whole output is the id.
	Command string
}

// Ack is one UCI acknowledged to a device.
type Ack struct {
	UCI  string
	HWID string // empty without identities
}

// Mismatch is an identity that was answered two different UCIs.
type Mismatch struct {
	HWID        string
	First, Then string
}

// Result is what a load run saw.
type Result struct {
	Elapsed    time.Duration
	Requests   int             // HTTP requests sent, failed ones included
	OK         int             // 200 answers with a non-empty id
	Devices    int             // devices that got a UCI
	Repeats    int             // successful repeat asks of an identity (--retries)
	Errors     map[string]int  // failed requests by code
	Latencies  []time.Duration // of the successful requests, sorted
	Acks       []Ack           // one per device, in no particular order
	Mismatches []Mismatch
	Distinct   int      // distinct UCIs among Acks
	Duplicates int      // acks of a UCI another device already had
	DupUCIs    []string // the first few UCIs acknowledged twice
}

// ErrorCount is the number of failed requests.
func (r *Result) ErrorCount() int {
	n := 0
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// NewClient returns an HTTP client that keeps one idle connection per jig, uses no
// proxy and, unless remote is set, refuses to connect outside the local network.
func NewClient(jigs int, remote bool) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !remote {
		d.Control = refuseRemote
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil, // a proxy would carry the load somewhere else
		DialContext:         d.DialContext,
		MaxIdleConns:        jigs,
		MaxIdleConnsPerHost: jigs,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

// refuseRemote is a dialer's Control: it stops a connection to an address outside the
// local network before anything is sent, whatever a host name resolved to.
func refuseRemote(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !localIP(ap.Addr()) {
		return fmt.Errorf("refusing to connect to %s: not a loopback, private or link-local address", address)
	}
	return nil
}

// localIP reports whether ip is loopback, private or link-local: the factory LAN.
func localIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast()
}

// deviceObject is the Ioto agent's device.json5 as a jig would have it.
type deviceObject struct {
	Product string `json:"product,omitempty"`
	Name    string `json:"name"`
	Model   string `json:"model"`
	HWID    string `json:"hwid,omitempty"`
}

// answer is the part of the appliance's reply the simulator reads.
type answer struct {
	ID   *string `json:"id"`
	Code string  `json:"code"`
}

// Run drives cfg.Jigs concurrent jigs until the duration or count is reached or ctx
// ends. Requests in flight when the duration ends are finished; ctx cancels them.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Jigs < 1 {
		return nil, errors.New("at least one jig is needed")
	}
	if cfg.Duration <= 0 && cfg.Count <= 0 {
		return nil, errors.New("a duration or a count is needed")
	}
	if cfg.Retries > 0 && !cfg.Identities {
		return nil, errors.New("repeat asks need identities: without one every request is a new device")
	}
	if cfg.Command != "" && (cfg.Product == "" || !cfg.Identities) {
		return nil, errors.New("command mode needs a product (the agent passes its own) and identities (serialize would read this machine's, which every simulated device would share)")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.RetryDelay < 0 {
		cfg.RetryDelay = 0
	}
	if cfg.Client == nil {
		cfg.Client = NewClient(cfg.Jigs, false)
	}
	targets, err := jigTargets(cfg.URL, cfg.Stations, cfg.Jigs)
	if err != nil {
		return nil, err
	}

	// soft ends the run: no new device, no new retry. Requests run on ctx so that
	// an answer already on its way is still counted.
	soft, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		soft, cancel = context.WithTimeout(soft, cfg.Duration)
		defer cancel()
	}

	var next atomic.Int64 // devices started, for Count
	pace := newPacer(cfg.Rate, cfg.Poisson)
	jigs := make([]*jig, cfg.Jigs)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range jigs {
		j := &jig{cfg: &cfg, n: i, url: targets[i], errors: map[string]int{}}
		jigs[i] = j
		wg.Go(func() {
			for {
				if soft.Err() != nil {
					return
				}
				if cfg.Count > 0 && next.Add(1) > int64(cfg.Count) {
					return
				}
				if !pace.wait(soft) {
					return
				}
				j.device(ctx, soft)
			}
		})
	}
	wg.Wait()

	res := &Result{Elapsed: time.Since(start), Errors: map[string]int{}}
	for _, j := range jigs {
		res.Requests += j.requests
		res.OK += j.ok
		res.Repeats += j.repeats
		res.Latencies = append(res.Latencies, j.latencies...)
		res.Acks = append(res.Acks, j.acks...)
		res.Mismatches = append(res.Mismatches, j.mismatches...)
		for code, n := range j.errors {
			res.Errors[code] += n
		}
	}
	res.Devices = len(res.Acks)
	slices.Sort(res.Latencies)
	seen := make(map[string]struct{}, len(res.Acks))
	for _, a := range res.Acks {
		if _, dup := seen[a.UCI]; !dup {
			seen[a.UCI] = struct{}{}
			continue
		}
		res.Duplicates++
		if len(res.DupUCIs) < maxExamples {
			res.DupUCIs = append(res.DupUCIs, a.UCI)
		}
	}
	res.Distinct = len(seen)
	return res, nil
}

// jigTargets returns each jig's URL: the endpoint with its station added to the query.
func jigTargets(endpoint string, stations []string, jigs int) ([]string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	out := make([]string, jigs)
	for i := range out {
		if len(stations) == 0 {
			out[i] = u.String()
			continue
		}
		v := *u
		q := v.Query()
		q.Set("station", stations[i%len(stations)])
		v.RawQuery = q.Encode()
		out[i] = v.String()
	}
	return out, nil
}

// jig is one simulated test fixture; its fields are touched only by its own goroutine.
type jig struct {
	cfg  *Config
	n    int
	url  string
	seq  int    // devices this jig has started
	body []byte // the last device object sent; without identities every device's is the same

	requests, ok, repeats int
	errors                map[string]int
	latencies             []time.Duration
	acks                  []Ack
	mismatches            []Mismatch
}

// device serializes one device as the agent would, then repeats the ask
// cfg.Retries times as if each answer had been lost on the way.
func (j *jig) device(ctx, soft context.Context) {
	j.seq++
	obj := deviceObject{Product: j.cfg.Product, Name: "SerialEval", Model: "Eval-01"}
	if j.cfg.Identities {
		obj.HWID = "jigsim-" + j.cfg.RunID + "-" + strconv.Itoa(j.n) + "-" + strconv.Itoa(j.seq)
	}
	if j.body == nil || obj.HWID != "" {
		j.body, _ = json.Marshal(obj)
	}
	body := j.body

	uci, ok := j.ask(ctx, soft, body, obj.HWID)
	if !ok {
		return
	}
	j.acks = append(j.acks, Ack{UCI: uci, HWID: obj.HWID})
	for range j.cfg.Retries {
		again, ok := j.ask(ctx, soft, body, obj.HWID)
		if !ok {
			return
		}
		j.repeats++
		if again != uci {
			j.errors[CodeIdentityMismatch]++
			j.mismatches = append(j.mismatches, Mismatch{HWID: obj.HWID, First: uci, Then: again})
		}
	}
}

// ask posts body until an answer with an id comes back, pausing RetryDelay after
// each failure. It gives up only when the run ends.
func (j *jig) ask(ctx, soft context.Context, body []byte, hwid string) (string, bool) {
	for {
		if soft.Err() != nil {
			return "", false
		}
		t0 := time.Now()
		var uci, code string
		if j.cfg.Command != "" {
			uci, code = j.runCommand(ctx, hwid)
		} else {
			uci, code = j.post(ctx, body)
		}
		took := time.Since(t0)
		if code != "" && ctx.Err() != nil {
			// Cancelled from outside (interrupt): neither an answer nor the appliance's fault.
			return "", false
		}
		j.requests++
		if code == "" {
			j.ok++
			j.latencies = append(j.latencies, took)
			return uci, true
		}
		j.errors[code]++
		if j.cfg.RetryDelay > 0 {
			t := time.NewTimer(j.cfg.RetryDelay)
			select {
			case <-t.C:
			case <-soft.Done():
				t.Stop()
				return "", false
			}
		}
	}
}

// post sends one request and returns the id, or the code of the failure.
func (j *jig) post(ctx context.Context, body []byte) (uci, code string) {
	ctx, cancel := context.WithTimeout(ctx, j.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.url, bytes.NewReader(body))
	if err != nil {
		return "", CodeTransport
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := j.cfg.Client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "", CodeTimeout
		}
		return "", CodeTransport
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	// Drain what is left so that the connection can be used again.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	resp.Body.Close()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "", CodeTimeout
		}
		return "", CodeTransport
	}
	var a answer
	jsonErr := json.Unmarshal(data, &a)
	if resp.StatusCode != http.StatusOK {
		if a.Code != "" && len(a.Code) <= 64 {
			return "", a.Code
		}
		return "", "http_" + strconv.Itoa(resp.StatusCode)
	}
	if jsonErr != nil || a.ID == nil || *a.ID == "" {
		// The agent would store an empty id and never ask again: a failure.
		return "", CodeNoID
	}
	return *a.ID, ""
}

// runCommand runs the serialize binary once as the agent's command mode does and
// returns the id, or the code of the failure. The agent stores stdout and stderr
// together, untrimmed: anything but exactly a UCI would be stored as a wrong id.
func (j *jig) runCommand(ctx context.Context, hwid string) (uci, code string) {
	ctx, cancel := context.WithTimeout(ctx, j.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, j.cfg.Command, j.cfg.Product)
	cmd.Env = append(os.Environ(), "SERIALBOX_URL="+j.url, "SERIALBOX_HWID="+hwid)
	out, err := cmd.CombinedOutput()
	switch {
	case ctx.Err() != nil:
		return "", CodeTimeout
	case err != nil:
		return "", CodeCommandFailed
	case !canonicalUCI(string(out)):
		return "", CodeBadOutput
	}
	return string(out), ""
}

// canonicalUCI reports whether s is exactly 16 Crockford base32 symbols, upper case.
func canonicalUCI(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789ABCDEFGHJKMNPQRSTVWXYZ", r) {
			return false
		}
	}
	return true
}

// pacer spaces the starts of new devices over all jigs to a rate. A start that is
// late (every jig was busy) does not make the following ones come in a burst.
type pacer struct {
	gap     time.Duration // mean time between starts; 0 = no pacing
	poisson bool

	mu   sync.Mutex
	next time.Time
}

func newPacer(rate float64, poisson bool) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	return &pacer{gap: time.Duration(float64(time.Second) / rate), poisson: poisson}
}

// wait blocks until the next start is due; false when ctx ended first.
func (p *pacer) wait(ctx context.Context) bool {
	if p.gap == 0 {
		return true
	}
	p.mu.Lock()
	now := time.Now()
	slot := p.next
	if slot.Before(now) {
		slot = now
	}
	gap := p.gap
	if p.poisson {
		gap = time.Duration(rand.ExpFloat64() * float64(p.gap))
	}
	p.next = slot.Add(gap)
	p.mu.Unlock()
	t := time.NewTimer(time.Until(slot))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
