package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// No secret from the configuration appears in any log line: station tokens, upstream
// credentials, the provisioning secret and the admin password, also when requests
// carrying them are refused and when the upstream fails.
func TestNoSecretInTheLog(t *testing.T) {
	secrets := map[string]string{
		"STATION_TOKEN":   "st-tok-5e3d91",
		"UP_TOKEN":        "up-bearer-77a1c0",
		"UP_PASSWORD":     "up-basic-pw-19ce",
		"UP_HMAC":         "up-hmac-secret-4b2f",
		"PROVISION":       "c2VyaWFsYm94LXByb3Zpc2lvbmluZy1zZWNyZXQ=",
		"ADMIN_PASSWORD":  "admin-pw-2f8e61c9",
		"WRONG_JIG_TOKEN": "guessed-token-0d4a",
		"MQTT_PASSWORD":   "mqtt-pw-6a0b93",
	}
	for k, v := range secrets {
		t.Setenv("T_"+k, v)
	}
	t.Setenv("SERIALBOX_ADMIN_PASSWORD", secrets["ADMIN_PASSWORD"])
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "registry is down", http.StatusInternalServerError)
	}))
	defer up.Close()
	cfg := writeConfig(t, fmt.Sprintf(`
[[products]]
id = "TESTPRODUCT01"
name = "Serial Eval"
provisioning_secret = "${T_PROVISION}"
[[stations]]
id = "jig1"
product = "TESTPRODUCT01"
auto_batch = true
token = %q
[stations.printer]
transport = "none"
[[upstream]]
name = "cloud"
kind = "http"
url = %q
token = "${T_UP_TOKEN}"
hmac_secret = "${T_UP_HMAC}"
auto = true
allow_http = true
timeout = "1s"
[[upstream]]
name = "basic"
kind = "http"
url = %q
username = "factory"
password = "${T_UP_PASSWORD}"
auto = true
allow_http = true
timeout = "1s"
[mqtt]
url = "tcp://127.0.0.1:1"
topic_prefix = "factory/line1"
username = "serialbox"
password = "${T_MQTT_PASSWORD}"
`, secrets["STATION_TOKEN"], up.URL+"/v1?k=1", up.URL))
	a := startAppliance(t, filepath.Join(t.TempDir(), "data"), cfg)

	// Refused and accepted jig requests carrying tokens.
	serialize(http.DefaultClient, a.url("/ioto/serialize?station=jig1&token="+secrets["WRONG_JIG_TOKEN"]), `{}`)
	req, _ := http.NewRequest("POST", a.url("/ioto/serialize?station=jig1"), strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+secrets["WRONG_JIG_TOKEN"])
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	for i := range 3 {
		if _, code, err := serialize(http.DefaultClient, a.url("/ioto/serialize?station=jig1&token="+secrets["STATION_TOKEN"]), fmt.Sprintf(`{"hwid":"s%d"}`, i)); code != 200 {
			t.Fatalf("right token: %d %v", code, err)
		}
	}
	// A failed login with a password close to the real one, and the batch pushed to a
	// failing upstream.
	login(t, a, "admin", secrets["ADMIN_PASSWORD"]+"x")
	postJSON(t, a, "/api/v1/batches/1/close", `{"reason":"end"}`)
	waitLog(t, a, "upstream", 1)
	time.Sleep(1500 * time.Millisecond) // let the syncer fail and log

	logs := a.Logs()
	if !strings.Contains(logs, "level=ERROR") && !strings.Contains(logs, "level=WARN") {
		t.Fatalf("the run logged no failure at all, so it proves little:\n%s", logs)
	}
	for name, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("%s appears in the log", name)
		}
	}
}
