package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"serialbox/serializer"
)

// iotoTarget registers each device with the Ioto Builder as the Ioto agent itself
// would: POST {url}/device/register with the product token.
//
// Devices are registered one after the other. When the Builder fails in a way that
// may pass (5xx, 408, 425, 429, the network), the chunk as a whole is retried later;
// the devices it had registered already then answer "exists", which counts as success.
type iotoTarget struct {
	cfg      TargetConfig
	client   *http.Client
	endpoint string
	safeURL  string
	now      func() time.Time
}

func newIotoTarget(cfg TargetConfig) (*iotoTarget, error) {
	client, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	t := &iotoTarget{cfg: cfg, client: client, now: time.Now}
	t.endpoint = strings.TrimRight(cfg.URL, "/") + "/device/register"
	t.safeURL = TargetConfig{URL: t.endpoint}.RedactedURL()
	return t, nil
}

func (t *iotoTarget) Name() string   { return t.cfg.Name }
func (t *iotoTarget) ChunkSize() int { return t.cfg.ChunkSize }

// Push registers the chunk's devices in order. A refusal that concerns every device
// (bad token, wrong address) is given to the rest of the chunk without asking again.
func (t *iotoTarget) Push(ctx context.Context, c Chunk) ([]Result, error) {
	res := make([]Result, len(c.Devices))
	stop := ""
	for i, d := range c.Devices {
		if stop != "" {
			res[i] = Result{UCI: d.UCI, Status: StatusError, Message: stop}
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, retryable(0, "register with %s: stopped after %d of %d devices: %w", t.safeURL, i, len(c.Devices), err)
		}
		body, err := IotoDevice(d, c.Product, t.cfg)
		if err != nil {
			return nil, err
		}
		r, err := t.register(ctx, d.UCI, body)
		if err != nil {
			return nil, err
		}
		if r.all {
			stop = r.Message
		}
		res[i] = r.Result
	}
	return res, nil
}

type iotoVerdict struct {
	Result
	all bool // the verdict holds for every device of the chunk
}

// register posts one device and classifies the answer.
func (t *iotoTarget) register(ctx context.Context, uci serializer.UCI, body []byte) (iotoVerdict, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, bytes.NewReader(body))
	if err != nil {
		return iotoVerdict{}, fmt.Errorf("register with %s: %w", t.safeURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "serialbox")
	req.Header.Set("Authorization", "bearer "+t.cfg.Token)
	resp, err := t.client.Do(req)
	if err != nil {
		return iotoVerdict{}, retryable(0, "register %s with %s: %w", uci, t.safeURL, transportError(ctx, err))
	}
	defer resp.Body.Close()
	data, _ := readLimited(resp.Body, maxErrorBody)
	code := resp.StatusCode
	v := iotoVerdict{Result: Result{UCI: uci}}
	if code/100 == 2 {
		v.Status = StatusOK
		return v, nil
	}
	msg := serverMessage(resp.Header, data)
	what := statusText(code)
	switch {
	case temporaryStatus(code) && code != http.StatusConflict:
		return iotoVerdict{}, retryable(retryAfter(resp.Header, t.now()), "register %s with %s: %s: %s", uci, t.safeURL, what, msg)
	case code == http.StatusConflict || existsMessage(msg):
		v.Status, v.Message = StatusExists, msg
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		v.Status, v.all = StatusError, true
		v.Message = fmt.Sprintf("the Ioto Builder refused the product token (%s): check the target's token; Builder says: %s", what, msg)
	case code == http.StatusNotFound || code/100 == 3:
		v.Status, v.all = StatusError, true
		v.Message = fmt.Sprintf("no device registration at %s (%s): check the target's url; Builder says: %s", t.safeURL, what, msg)
	default:
		v.Status, v.Message = StatusError, fmt.Sprintf("the Ioto Builder refused the device (%s): %s", what, msg)
	}
	return v, nil
}

// existsMessage reports whether an error message says the device is registered already.
func existsMessage(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "exist") || strings.Contains(m, "already")
}

// IotoDevice returns the registration body of a device: the jig's device object (its
// attributes, when they are a JSON object) with id, product and created set from the
// device, test: true for test targets, and account and cloud for pre-claimed products.
// created is RFC 3339 in UTC with milliseconds, as JavaScript writes dates.
func IotoDevice(d serializer.Device, p serializer.Product, cfg TargetConfig) ([]byte, error) {
	obj := map[string]any{}
	if raw := bytes.TrimSpace(d.Attributes); len(raw) > 0 && raw[0] == '{' {
		var attrs map[string]json.RawMessage
		if json.Unmarshal(raw, &attrs) == nil {
			for k, v := range attrs {
				obj[k] = v
			}
		}
	}
	product := d.ProductID
	if product == "" {
		product = p.ID
	}
	obj["id"] = d.UCI.String()
	obj["product"] = product
	if !d.CreatedAt.IsZero() {
		obj["created"] = d.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	if cfg.Test {
		obj["test"] = true
	}
	if cfg.Account != "" {
		obj["account"] = cfg.Account
		obj["cloud"] = cfg.Cloud
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding device %s: %w", d.UCI, err)
	}
	return b, nil
}
