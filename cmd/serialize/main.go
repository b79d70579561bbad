// Command serialize prints one UCI from a serialbox appliance. It is the Ioto agent's
// command mode: when api.serialize is not a URL the agent runs `serialize "<product>"`
// and stores what it prints.
//
//	SERIALBOX_URL=http://10.0.0.5:4100?station=line1 serialize PRODUCT
//
// SERIALBOX_URL defaults to http://127.0.0.1:4100; its query (station, token, key) is
// passed on. It exits 0 after printing the id, non-zero with the reason on stderr.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultURL is the appliance asked when SERIALBOX_URL is not set.
const DefaultURL = "http://127.0.0.1:4100"

// timeout matches the Ioto agent's own 30 s, plus a margin.
const timeout = 35 * time.Second

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "usage: serialize PRODUCT   (appliance at $SERIALBOX_URL, default "+DefaultURL+")")
		return 2
	}
	base := getenv("SERIALBOX_URL")
	if base == "" {
		base = DefaultURL
	}
	id, err := serialize(ctx, base, args[0])
	if err != nil {
		fmt.Fprintln(stderr, "serialize:", err)
		return 1
	}
	fmt.Fprintln(stdout, id)
	return 0
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

func serialize(ctx context.Context, base, product string) (string, error) {
	target, err := endpoint(base)
	if err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]string{"product": product})
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("reading the answer: %w", err)
	}
	var out struct {
		ID    string `json:"id"`
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	jsonErr := json.Unmarshal(raw, &out)
	if resp.StatusCode != http.StatusOK {
		if jsonErr == nil && out.Error != "" {
			return "", fmt.Errorf("%s (%s, HTTP %d)", out.Error, out.Code, resp.StatusCode)
		}
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if jsonErr != nil {
		return "", fmt.Errorf("the answer is not JSON: %q", raw)
	}
	if out.ID == "" {
		return "", errors.New("the appliance answered without an id")
	}
	return out.ID, nil
}
