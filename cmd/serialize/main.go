// Command serialize gets one UCI from a serialbox appliance. It is the Ioto agent's
// command mode: when api.serialize is not a URL the agent runs `serialize "<product>"`
// on the device and stores the command's whole output, stdout and stderr together
// and untrimmed, as the device id. So on success serialize writes exactly the UCI to
// stdout, without a newline, and nothing to stderr; on failure it writes nothing to
// stdout, the reason to stderr, and exits non-zero (the agent then asks again).
//
//	SERIALBOX_URL='http://10.0.0.5:4100?station=line1&token=…' serialize PRODUCT
//
// It runs on the device, so it sends the device's own hardware identity and the same
// device always gets the same UCI: the --hwid flag or SERIALBOX_HWID, else the DMI
// product UUID or serial, the device-tree or Raspberry Pi CPU serial, the MAC address
// of the first physical network interface, or /etc/machine-id (--print-identity shows
// which). Transient failures (appliance down, 5xx) are retried for --timeout.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"serialbox/serializer"
)

// DefaultURL is the appliance asked when neither --url nor SERIALBOX_URL is set.
const DefaultURL = "http://127.0.0.1:4100"

// DefaultTimeout bounds all attempts together; the Ioto agent gives up a request
// after 30 s and asks again 2 s later.
const DefaultTimeout = 30 * time.Second

const usage = `usage: serialize [flags] PRODUCT

Gets one UCI for this device from a serialbox appliance and writes it to stdout,
with no newline; on failure writes the reason to stderr and exits 1.

flags:
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// options are the command's settings after flags and environment.
type options struct {
	url, product, root string
	identity           Identity
	hasIdentity        bool
	timeout            time.Duration
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("serialize", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, usage); fl.PrintDefaults() }
	base := fl.String("url", envOr(getenv, "SERIALBOX_URL", DefaultURL), "the appliance, with ?station= and ?token= when needed (env SERIALBOX_URL)")
	hwid := fl.String("hwid", "", "this device's identity, instead of reading it from the hardware (env SERIALBOX_HWID)")
	timeout := fl.Duration("timeout", DefaultTimeout, "give up after this long, retrying transient failures until then")
	printIdentity := fl.Bool("print-identity", false, "print the identity that would be sent and where it was read, and exit")
	root := fl.String("root", "/", "read the hardware identity under this folder (a container that mounts the host's /sys, /proc and /etc there)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	givenSource := "--hwid"
	if *hwid == "" {
		*hwid, givenSource = getenv("SERIALBOX_HWID"), "SERIALBOX_HWID"
	}
	id, ok := findIdentity(*root, *hwid, givenSource)
	if *printIdentity {
		text, err := describeIdentity(id, ok)
		if err != nil {
			fmt.Fprintln(stderr, "serialize:", err)
			return 1
		}
		fmt.Fprint(stdout, text)
		return 0
	}
	if fl.NArg() != 1 || strings.TrimSpace(fl.Arg(0)) == "" {
		fl.Usage()
		return 2
	}
	uci, err := serialize(ctx, options{url: *base, product: fl.Arg(0), identity: id, hasIdentity: ok, timeout: *timeout})
	if err != nil {
		fmt.Fprintln(stderr, "serialize:", err)
		return 1
	}
	fmt.Fprint(stdout, uci)
	return 0
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// endpoint returns the serialize URL for an appliance URL: a bare host gets the
// /ioto/serialize path; a URL with a path is used as it is.
func endpoint(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("SERIALBOX_URL %q is not an http(s) URL", base)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/ioto/serialize"
	}
	return u.String(), nil
}

// errTransient marks a failure worth asking again for: the appliance may answer
// the same request a moment later.
type errTransient struct{ error }

func (e errTransient) Unwrap() error { return e.error }

// serialize asks until it has a UCI, a final refusal, or the time is up. Attempts
// go quiet: anything written to stderr before a success would become part of the
// id the agent stores.
func serialize(ctx context.Context, o options) (string, error) {
	target, err := endpoint(o.url)
	if err != nil {
		return "", err
	}
	obj := map[string]string{"product": o.product}
	if o.hasIdentity {
		obj[o.identity.Field] = o.identity.Value
	}
	body, err := json.Marshal(obj)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		uci, err := ask(ctx, target, body)
		if err == nil {
			return uci, nil
		}
		if !errors.As(err, new(errTransient)) {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w (gave up after %d attempts in %s)", err, attempt, o.timeout)
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// ask makes one request.
func ask(ctx context.Context, target string, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", errTransient{err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", errTransient{fmt.Errorf("reading the answer: %w", err)}
	}
	var out struct {
		ID    string `json:"id"`
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	jsonErr := json.Unmarshal(raw, &out)
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
		if jsonErr == nil && out.Error != "" {
			err = fmt.Errorf("%s (%s, HTTP %d)", out.Error, out.Code, resp.StatusCode)
		}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout {
			return "", errTransient{err}
		}
		return "", err
	}
	if jsonErr != nil {
		return "", fmt.Errorf("the answer is not JSON: %q", raw)
	}
	if out.ID == "" {
		return "", errors.New("the appliance answered without an id")
	}
	// The agent stores whatever is printed: print only a canonical UCI.
	if u, err := serializer.Parse(out.ID); err != nil || u.String() != out.ID {
		return "", fmt.Errorf("the appliance answered %q, which is not a claim ID", out.ID)
	}
	return out.ID, nil
}
