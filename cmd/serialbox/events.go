package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"serialbox/serializer/events"
	"serialbox/station"
	"serialbox/store"
	"serialbox/web"
)

// MQTTConfig is the [mqtt] table: the line's events go to the factory's broker.
type MQTTConfig struct {
	URL         string `toml:"url"`          // tcp://broker:1883, ssl://broker:8883, ws://, wss://
	TopicPrefix string `toml:"topic_prefix"` // e.g. "factory/line1"
	ClientID    string `toml:"client_id"`    // default "serialbox-<host name>"
	Username    string `toml:"username"`
	Password    string `toml:"password"` // or "${VAR}"
	// CAFile verifies the broker's certificate (ssl:// and wss://); CertFile and KeyFile
	// are the appliance's client certificate.
	CAFile    string           `toml:"ca_file"`
	CertFile  string           `toml:"cert_file"`
	KeyFile   string           `toml:"key_file"`
	KeepAlive station.Duration `toml:"keepalive"` // default 30s
}

// Configured reports whether the block is present.
func (m *MQTTConfig) Configured() bool { return m.URL != "" }

// expandEnv fills ${VAR} in the broker's URL, user and password.
func (m *MQTTConfig) expandEnv(getenv func(string) string) error {
	for _, f := range []struct {
		key string
		v   *string
	}{{"url", &m.URL}, {"username", &m.Username}, {"password", &m.Password}} {
		v, err := expandVars(*f.v, getenv)
		if err != nil {
			return fmt.Errorf("mqtt.%s: %v", f.key, err)
		}
		*f.v = v
	}
	return nil
}

var mqttSchemes = []string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}

// validate checks the block and fills in its defaults.
func (m *MQTTConfig) validate() error {
	if !m.Configured() {
		return nil
	}
	u, err := url.Parse(m.URL)
	if err != nil || u.Host == "" || !slices.Contains(mqttSchemes, u.Scheme) {
		return fmt.Errorf("mqtt.url: %q is not a broker URL (tcp://host:1883, ssl://host:8883, ws:// or wss://)", redactURL(m.URL))
	}
	if u.User != nil {
		return errors.New("mqtt.url: put the user and password in mqtt.username and mqtt.password, not in the URL")
	}
	if strings.ContainsAny(m.TopicPrefix, "+#") || strings.HasPrefix(m.TopicPrefix, "/") {
		return fmt.Errorf("mqtt.topic_prefix: %q may not contain + or # nor start with /", m.TopicPrefix)
	}
	if (m.CertFile == "") != (m.KeyFile == "") {
		return errors.New("mqtt.cert_file and mqtt.key_file: give both or neither")
	}
	if m.KeepAlive == 0 {
		m.KeepAlive = station.Duration(30 * time.Second)
	}
	if time.Duration(m.KeepAlive) < time.Second {
		return fmt.Errorf("mqtt.keepalive: %v is too short (at least 1s)", time.Duration(m.KeepAlive))
	}
	if m.ClientID == "" {
		host, _ := os.Hostname()
		m.ClientID = "serialbox-" + host
	}
	return nil
}

// statusTopic is the retained topic that says whether the appliance is online: the
// broker publishes "offline" there when the connection dies without a goodbye.
func (m *MQTTConfig) statusTopic() string {
	if m.TopicPrefix == "" {
		return "status"
	}
	return strings.TrimSuffix(m.TopicPrefix, "/") + "/status"
}

// mqttBroker is the events.Broker of an MQTT broker: QoS 1, reconnecting by itself.
type mqttBroker struct {
	client paho.Client
	url    string
	status string
	up     atomic.Bool
}

// publishTimeout bounds the wait for the broker's acknowledgements of one batch.
const publishTimeout = 10 * time.Second

func newMQTTBroker(m *MQTTConfig, logger *slog.Logger) (*mqttBroker, error) {
	b := &mqttBroker{url: m.URL, status: m.statusTopic()}
	opts := paho.NewClientOptions().AddBroker(m.URL).SetClientID(m.ClientID)
	opts.SetCleanSession(true) // the outbox, not the client, keeps what is not acknowledged
	opts.SetOrderMatters(true)
	opts.SetKeepAlive(time.Duration(m.KeepAlive))
	opts.SetConnectTimeout(10 * time.Second)
	opts.SetWriteTimeout(2 * time.Second) // a publish waits at most this long on a dying connection
	opts.SetAutoReconnect(true)
	opts.SetConnectRetry(true) // the first connection is retried too, in the background
	opts.SetConnectRetryInterval(2 * time.Second)
	opts.SetMaxReconnectInterval(30 * time.Second)
	opts.SetWill(b.status, "offline", 1, true)
	if m.Username != "" {
		opts.SetUsername(m.Username)
	}
	if m.Password != "" {
		opts.SetPassword(m.Password)
	}
	if m.CAFile != "" || m.CertFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if m.CAFile != "" {
			pem, err := os.ReadFile(m.CAFile)
			if err != nil {
				return nil, fmt.Errorf("mqtt.ca_file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("mqtt.ca_file: %s holds no PEM certificate", m.CAFile)
			}
		}
		if m.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(m.CertFile, m.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("mqtt.cert_file: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts.SetTLSConfig(tc)
	}
	opts.SetOnConnectHandler(func(c paho.Client) {
		b.up.Store(true)
		logger.Info("connected to the MQTT broker", "url", m.URL)
		// Birth message, retained: the appliance is online.
		c.Publish(b.status, 1, true, "online")
	})
	opts.SetConnectionLostHandler(func(_ paho.Client, err error) {
		b.up.Store(false)
		logger.Warn("lost the MQTT broker", "url", m.URL, "err", err)
	})
	b.client = paho.NewClient(opts)
	b.client.Connect() // with ConnectRetry it keeps trying in the background
	return b, nil
}

// Publish sends msgs at QoS 1, in order, and counts the acknowledged ones from the first.
func (b *mqttBroker) Publish(ctx context.Context, msgs []events.Message) (int, error) {
	tokens := make([]paho.Token, 0, len(msgs))
	for _, m := range msgs {
		// Publish blocks for up to the write timeout while a connection dies: stop
		// handing messages over as soon as it is gone.
		if !b.Connected() {
			break
		}
		tokens = append(tokens, b.client.Publish(m.Topic, 1, m.Retained, m.Payload))
	}
	deadline := time.NewTimer(publishTimeout)
	defer deadline.Stop()
	// A connection that drops ends the wait: what was not acknowledged is sent again
	// from the outbox once the client is back.
	check := time.NewTicker(100 * time.Millisecond)
	defer check.Stop()
	for i, t := range tokens {
	wait:
		for {
			select {
			case <-t.Done():
				break wait
			case <-ctx.Done():
				return i, ctx.Err()
			case <-check.C:
				if !b.Connected() {
					return i, fmt.Errorf("the connection to the broker dropped with %d of %d events unacknowledged", len(msgs)-i, len(msgs))
				}
			case <-deadline.C:
				return i, fmt.Errorf("the broker did not acknowledge event %d of %d within %v", i+1, len(msgs), publishTimeout)
			}
		}
		if err := t.Error(); err != nil {
			return i, err
		}
	}
	if len(tokens) < len(msgs) {
		return len(tokens), fmt.Errorf("the connection to the broker dropped with %d of %d events not sent", len(msgs)-len(tokens), len(msgs))
	}
	return len(msgs), nil
}

// Connected reports whether the broker connection is up.
func (b *mqttBroker) Connected() bool { return b.up.Load() && b.client.IsConnectionOpen() }

// Close says goodbye: the status topic reads "offline", then the connection ends.
func (b *mqttBroker) Close() {
	if b.client.IsConnectionOpen() {
		b.client.Publish(b.status, 1, true, "offline").WaitTimeout(2 * time.Second)
	}
	b.client.Disconnect(500)
}

// eventPublisher is the running [mqtt] block: the broker and the outbox's publisher.
type eventPublisher struct {
	broker *mqttBroker
	pub    *events.Publisher
}

// startEvents switches the event outbox on (with [mqtt]) or off (without) and runs
// its publisher.
func startEvents(ctx context.Context, cfg *Config, db *store.DB, logger *slog.Logger) (*eventPublisher, error) {
	if err := db.SetEventOutbox(ctx, cfg.MQTT.Configured()); err != nil {
		return nil, err
	}
	if !cfg.MQTT.Configured() {
		return nil, nil
	}
	broker, err := newMQTTBroker(&cfg.MQTT, logger)
	if err != nil {
		return nil, err
	}
	pub := &events.Publisher{Outbox: db, Broker: broker, Prefix: cfg.MQTT.TopicPrefix, Logger: logger}
	pub.Start()
	return &eventPublisher{broker: broker, pub: pub}, nil
}

// Close stops publishing; what is not acknowledged stays in the outbox for the next start.
func (e *eventPublisher) Close() {
	if e == nil {
		return
	}
	e.pub.Close()
	e.broker.Close()
}

// status is the broker's part of the operator page and /metrics.
func (e *eventPublisher) status() *web.BrokerStatus {
	if e == nil {
		return nil
	}
	s := e.pub.Status()
	return &web.BrokerStatus{URL: e.broker.url, Connected: s.Connected, Published: s.Published, Backlog: s.Backlog(), LastError: s.LastError}
}

// expandVars replaces ${NAME} in s with the environment variable NAME; an unset or
// empty one is an error naming it. A $ not followed by { is kept.
func expandVars(s string, getenv func(string) string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.Index(s[i:], "}")
		if j < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", redactURL(s))
		}
		name := s[i+2 : i+j]
		v := getenv(name)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+j+1:]
	}
}

// redactURL hides a password in a URL, for messages and the page.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
