package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// broker is a mosquitto process of the test's own on a loopback port.
type broker struct {
	t    *testing.T
	bin  string
	conf string
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

func startBroker(t *testing.T) *broker {
	t.Helper()
	bin := requireTool(t, "mosquitto")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	_, port, _ := net.SplitHostPort(addr)
	// Persistence keeps what the broker accepted for the subscriber across its restart.
	conf := filepath.Join(dir, "mosquitto.conf")
	text := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nautosave_interval 1\nmax_queued_messages 0\nlog_dest stderr\n", port, dir)
	if os.Geteuid() == 0 {
		// Started as root, mosquitto becomes user "mosquitto", who may not write here.
		text += "user root\n"
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "mosquitto.log"))
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{t: t, bin: bin, conf: conf, addr: addr, log: logf}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *broker) start() {
	b.t.Helper()
	b.cmd = exec.Command(b.bin, "-c", b.conf)
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(b.cmd, b.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(b.log.Name())
			b.t.Fatalf("mosquitto does not listen on %s: %v\n%s", b.addr, err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the broker as an operator would (SIGTERM: it saves its queues).
func (b *broker) stop() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd = nil
}

// historian is a subscriber with a persistent session, as a factory's would be.
type historian struct {
	client paho.Client
	mu     sync.Mutex
	first  []int64          // seqs in the order they first arrived
	seen   map[int64]string // seq → kind
	dups   int
	status string // the retained appliance status
	bad    []string
}

func subscribe(t *testing.T, addr, prefix string) *historian {
	t.Helper()
	h := &historian{seen: map[int64]string{}}
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("historian")
	opts.SetCleanSession(false)
	opts.SetAutoReconnect(true)
	opts.SetConnectRetry(true)
	opts.SetConnectRetryInterval(200 * time.Millisecond)
	opts.SetMaxReconnectInterval(time.Second)
	opts.SetOrderMatters(true)
	handler := func(_ paho.Client, m paho.Message) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if m.Topic() == prefix+"/status" {
			h.status = string(m.Payload())
			return
		}
		var ev struct {
			Seq     int64  `json:"seq"`
			Kind    string `json:"kind"`
			Station string `json:"station"`
			At      string `json:"at"`
		}
		if err := json.Unmarshal(m.Payload(), &ev); err != nil || ev.Seq == 0 || ev.At == "" {
			h.bad = append(h.bad, string(m.Payload()))
			return
		}
		if want := prefix + "/" + ev.Station + "/" + strings.ReplaceAll(ev.Kind, ".", "/"); m.Topic() != want {
			h.bad = append(h.bad, "topic "+m.Topic()+" for "+want)
		}
		if _, ok := h.seen[ev.Seq]; ok {
			h.dups++
			return
		}
		h.seen[ev.Seq] = ev.Kind
		h.first = append(h.first, ev.Seq)
	}
	opts.SetOnConnectHandler(func(c paho.Client) {
		c.Subscribe(prefix+"/#", 1, handler)
	})
	h.client = paho.NewClient(opts)
	if tok := h.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: %v", tok.Error())
	}
	t.Cleanup(func() { h.client.Disconnect(100) })
	return h
}

func (h *historian) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen)
}

const mqttStationsConfig = `
[[products]]
id = "TESTPRODUCT01"
name = "Serial Eval"
[[stations]]
id = "jig1"
product = "TESTPRODUCT01"
auto_batch = true
batch_size = 150
[stations.printer]
transport = "file"
[[stations]]
id = "jig2"
product = "TESTPRODUCT01"
auto_batch = true
batch_size = 150
[stations.printer]
transport = "file"
`

// issueN has 8 jigs (4 per station) serialize n devices in all and returns their UCIs.
func issueN(t *testing.T, a *appliance, n int, tag string) []string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	var (
		mu  sync.Mutex
		got []string
		wg  sync.WaitGroup
	)
	for j := range 8 {
		station := fmt.Sprintf("jig%d", j%2+1)
		wg.Go(func() {
			for i := j; i < n; i += 8 {
				id, code, err := serialize(client, a.url("/ioto/serialize?station="+station), fmt.Sprintf(`{"product":"TESTPRODUCT01","hwid":"%s-%d"}`, tag, i))
				if err != nil || code != 200 {
					t.Errorf("serialize at %s: %d %v", station, code, err)
					return
				}
				mu.Lock()
				got = append(got, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return got
}

// brokerState reads the broker's part of /readyz.
func brokerState(t *testing.T, a *appliance) (connected bool, backlog int64) {
	t.Helper()
	var r struct {
		MQTT struct {
			Connected bool  `json:"connected"`
			Backlog   int64 `json:"backlog"`
		} `json:"mqtt"`
	}
	json.Unmarshal([]byte(get(t, a.url("/readyz"))), &r)
	return r.MQTT.Connected, r.MQTT.Backlog
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The proof of [mqtt]: 1,000 devices are issued while the broker is stopped for a
// while and the appliance is killed and started again once; a subscriber receives
// every event of the outbox at least once, first arrivals in sequence order, with no
// gap, and a device.issued event for every UCI a jig was given.
func TestEventsReachTheBrokerThroughOutageAndRestart(t *testing.T) {
	br := startBroker(t)
	prefix := "factory/line1"
	h := subscribe(t, br.addr, prefix)
	cfg := writeConfig(t, mqttStationsConfig+fmt.Sprintf("[mqtt]\nurl = \"tcp://%s\"\ntopic_prefix = %q\nclient_id = \"serialbox-test\"\n", br.addr, prefix))
	data := filepath.Join(t.TempDir(), "data")

	a := startAppliance(t, data, cfg)
	ucis := issueN(t, a, 300, "a")
	waitFor(t, "events of the first 300 devices at the subscriber", 20*time.Second, func() bool { return h.count() >= 300 })

	br.stop() // the broker goes away for a while
	waitFor(t, "the line view to see the broker gone", 10*time.Second, func() bool { c, _ := brokerState(t, a); return !c })
	ucis = append(ucis, issueN(t, a, 300, "b")...)
	waitFor(t, "/readyz to count the events waiting", 5*time.Second, func() bool { c, backlog := brokerState(t, a); return !c && backlog >= 300 })
	if page := get(t, a.url("/")); !strings.Contains(page, "MQTT broker not connected") {
		t.Fatal("the line view shows no broker banner while the broker is down")
	}
	if m := get(t, a.url("/metrics")); !strings.Contains(m, "serialbox_mqtt_connected 0") {
		t.Fatalf("/metrics while the broker is down:\n%s", grepLines(m, "serialbox_mqtt"))
	}

	// The appliance dies with its backlog unsent, and comes back.
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.done
	a = startAppliance(t, data, cfg)
	ucis = append(ucis, issueN(t, a, 200, "c")...)
	br.start()
	ucis = append(ucis, issueN(t, a, 200, "d")...)
	if len(ucis) != 1000 {
		t.Fatalf("%d UCIs issued, want 1,000", len(ucis))
	}

	db, err := sql.Open("sqlite3", "file:"+filepath.Join(data, "serialbox.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var newest int64
	// Wait for the labels' events as well: the outbox grows until every label is settled
	// (printed, or uncertain when the kill cut one off mid-send).
	var printed, uncertain int
	waitFor(t, "every label settled", 30*time.Second, func() bool {
		var waiting int
		db.QueryRow(`SELECT COUNT(*) FROM print_jobs WHERE state IN ('queued', 'sending')`).Scan(&waiting)
		return waiting == 0
	})
	db.QueryRow(`SELECT COUNT(*) FILTER (WHERE state = 'printed'), COUNT(*) FILTER (WHERE state = 'uncertain') FROM print_jobs`).Scan(&printed, &uncertain)
	db.QueryRow(`SELECT MAX(seq) FROM events`).Scan(&newest)
	for deadline := time.Now().Add(60 * time.Second); h.count() < int(newest); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			h.mu.Lock()
			var missing []int64
			for seq := int64(1); seq <= newest && len(missing) < 20; seq++ {
				if _, ok := h.seen[seq]; !ok {
					missing = append(missing, seq)
				}
			}
			h.mu.Unlock()
			logs, _ := os.ReadFile(br.log.Name())
			t.Fatalf("%d of %d events at the subscriber; missing %v; /readyz %s\nbroker log:\n%s", h.count(), newest, missing, get(t, a.url("/readyz")), logs)
		}
	}
	waitFor(t, "the appliance's backlog to empty", 10*time.Second, func() bool { c, b := brokerState(t, a); return c && b == 0 })

	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.bad) > 0 {
		t.Fatalf("%d malformed messages, e.g. %s", len(h.bad), h.bad[0])
	}
	for i, seq := range h.first {
		if seq != int64(i+1) {
			t.Fatalf("first arrivals out of sequence at %d: got seq %d (a gap or a reordering)", i, seq)
		}
	}
	kinds := map[string]int{}
	rows, err := db.Query(`SELECT seq, kind, payload FROM events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	issued := map[string]bool{}
	for rows.Next() {
		var (
			seq           int64
			kind, payload string
		)
		rows.Scan(&seq, &kind, &payload)
		if h.seen[seq] != kind {
			t.Fatalf("event %d is %s in the outbox, %q at the subscriber", seq, kind, h.seen[seq])
		}
		kinds[kind]++
		if kind == "device.issued" {
			var p struct{ UCI string }
			json.Unmarshal([]byte(payload), &p)
			issued[p.UCI] = true
		}
	}
	rows.Close()
	for _, u := range ucis {
		if !issued[u] {
			t.Fatalf("UCI %s was answered but has no device.issued event", u)
		}
	}
	if kinds["device.issued"] != 1000 || kinds["label.printed"] != printed || kinds["label.uncertain"] != uncertain ||
		printed+uncertain != 1000 || kinds["batch.opened"] < 6 || kinds["batch.closed"] < 4 {
		t.Fatalf("events by kind: %v", kinds)
	}
	if h.status != "online" {
		t.Fatalf("retained status = %q, want online", h.status)
	}
	t.Logf("%d events (%v) received in sequence, %d repeats dropped by seq", newest, kinds, h.dups)
}

// Without [mqtt] the outbox stays empty: the issuing path writes no event rows.
func TestNoEventsWithoutMQTT(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	a := startAppliance(t, data, writeConfig(t, mqttStationsConfig))
	issueN(t, a, 40, "x")
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(data, "serialbox.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM events`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d events written without [mqtt] (%v)", n, err)
	}
	if strings.Contains(get(t, a.url("/readyz")), "mqtt") {
		t.Fatal("/readyz reports a broker that is not configured")
	}
}
