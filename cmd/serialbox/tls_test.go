package main

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

var tlsRE = regexp.MustCompile(`msg="serving TLS" addr=(\S+) sha256=(\S+)`)

// The page and API are served over HTTPS with a self-signed certificate made on first
// start and kept across restarts; the fingerprint in the log is the certificate's; the
// jig port stays plain HTTP.
func TestTLSWithSelfSignedCertificate(t *testing.T) {
	cfg := writeConfig(t, iotoProductConfig+"\n[tls]\nlisten = \"127.0.0.1:0\"\n")
	data := filepath.Join(t.TempDir(), "data")
	var prints []string
	for range 2 {
		a := startAppliance(t, data, cfg)
		waitLog(t, a, "serving TLS", 1)
		m := tlsRE.FindStringSubmatch(a.Logs())
		addr, want := m[1], m[2]
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // pinned to the logged fingerprint instead
			VerifyConnection: func(cs tls.ConnectionState) error {
				sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
				if fingerprint(sum[:]) != want {
					return errors.New("certificate does not match the logged fingerprint")
				}
				return nil
			},
		}}}
		resp, err := client.Get("https://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
			t.Fatalf("HTTPS healthz: %d %+v", resp.StatusCode, resp.TLS)
		}
		if id, code, err := serialize(http.DefaultClient, a.url("/ioto/serialize"), `{}`); err != nil || code != 200 || id == "" {
			t.Fatalf("plain HTTP jig port: %q %d %v", id, code, err)
		}
		prints = append(prints, want)
		a.cmd.Process.Signal(syscall.SIGTERM)
		<-a.done
	}
	if prints[0] != prints[1] || len(strings.Split(prints[0], ":")) != 32 {
		t.Fatalf("fingerprints %v: want the same 32-byte fingerprint after a restart", prints)
	}
}
