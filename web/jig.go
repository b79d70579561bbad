package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"serialbox/serializer"
)

// serializeResponse is the answer to a jig. The Ioto agent reads only "id".
type serializeResponse struct {
	ID       string `json:"id"`
	Batch    int64  `json:"batch"`
	Product  string `json:"product"`
	Station  string `json:"station"`
	Existing bool   `json:"existing,omitempty"` // the identity already had this UCI
	Token    string `json:"token,omitempty"`    // provisioning token, for products with a secret
}

// identityFields are the jig's ways of naming the device; the first one present wins.
type identityFields struct {
	Key, HWID, Serial, MAC string
}

// iotoSerialize serves the Ioto agent's factory serialization: the body is the
// agent's device object, answered with 200 {"id": UCI} and nothing else counts as success.
func (s *Server) iotoSerialize(c echo.Context) error {
	body, err := readBody(c, MaxJigBody)
	if err != nil {
		return err
	}
	obj, err := decodeDeviceObject(body)
	if err != nil {
		return err
	}
	var f identityFields
	req := serializer.IssueRequest{StationID: c.QueryParam("station"), Token: jigToken(c)}
	for _, field := range []struct {
		name string
		dst  *string
	}{{"product", &req.ProductID}, {"hwid", &f.HWID}, {"serial", &f.Serial}, {"mac", &f.MAC}} {
		if *field.dst, err = scalarField(obj, field.name); err != nil {
			return err
		}
	}
	if f.Key, err = requestKey(c, ""); err != nil {
		return err
	}
	if req.Identity, req.OtherIdentities, err = identities(f); err != nil {
		return err
	}
	if req.Attributes, err = compactJSON(body); err != nil {
		return err
	}
	return s.issue(c, req)
}

// serializeRequest is the structured body of POST /api/v1/serialize.
type serializeRequest struct {
	Station    string          `json:"station"`
	Product    string          `json:"product"`
	Key        string          `json:"key"`
	HWID       string          `json:"hwid"`
	Serial     string          `json:"serial"`
	MAC        string          `json:"mac"`
	Attributes json.RawMessage `json:"attributes"`
}

// apiSerialize serves jigs that are not Ioto agents, with a structured body.
func (s *Server) apiSerialize(c echo.Context) error {
	var in serializeRequest
	if err := decodeJSON(c, maxAPIBody, &in); err != nil {
		return err
	}
	if len(in.Attributes) > 0 && !bytes.Equal(in.Attributes, []byte("null")) {
		if _, err := decodeDeviceObject(in.Attributes); err != nil {
			return serializer.Errorf(serializer.EINVALID, "attributes must be a JSON object")
		}
	} else {
		in.Attributes = nil
	}
	station := in.Station
	if station == "" {
		station = c.QueryParam("station")
	}
	key, err := requestKey(c, in.Key)
	if err != nil {
		return err
	}
	first, others, err := identities(identityFields{Key: key, HWID: strings.TrimSpace(in.HWID), Serial: strings.TrimSpace(in.Serial), MAC: strings.TrimSpace(in.MAC)})
	if err != nil {
		return err
	}
	return s.issue(c, serializer.IssueRequest{
		StationID:       station,
		ProductID:       strings.TrimSpace(in.Product),
		Identity:        first,
		OtherIdentities: others,
		Attributes:      in.Attributes,
		Token:           jigToken(c),
	})
}

func (s *Server) issue(c echo.Context, req serializer.IssueRequest) error {
	got, err := s.svc.Issue(c.Request().Context(), req)
	if serializer.ErrorCode(err) == serializer.EUNAUTHORIZED {
		s.auditRefusedToken(c, req.StationID)
	}
	if err != nil {
		return err
	}
	if got.Device.UCI.IsZero() {
		// Never answer a jig 200 without a real id: it would store it and stop asking.
		return fmt.Errorf("issuance returned no UCI")
	}
	if !got.Existing {
		s.metrics.issued.WithLabelValues(got.Device.StationID, got.Device.ProductID).Inc()
	}
	return c.JSON(http.StatusOK, serializeResponse{
		ID:       got.Device.UCI.String(),
		Batch:    got.Batch.ID,
		Product:  got.Device.ProductID,
		Station:  got.Device.StationID,
		Existing: got.Existing,
		Token:    got.Token,
	})
}

// readBody reads at most limit bytes of the request body; more is ETOOLARGE.
func readBody(c echo.Context, limit int64) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > limit {
		return nil, serializer.Errorf(serializer.ETOOLARGE, "request body is %d bytes; at most %d are accepted", r.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, serializer.Errorf(serializer.EMALFORMED, "could not read the request body: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, serializer.Errorf(serializer.ETOOLARGE, "request body is over %d bytes", limit)
	}
	return b, nil
}

// decodeDeviceObject parses a device object: a JSON object, or an empty body meaning {}.
func decodeDeviceObject(body []byte) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	if !utf8.Valid(body) {
		return nil, serializer.Errorf(serializer.EMALFORMED, "request body is not valid UTF-8")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, serializer.Errorf(serializer.EMALFORMED, "request body is not a JSON object: %s", jsonProblem(err))
	}
	if obj == nil {
		return nil, serializer.Errorf(serializer.EMALFORMED, "request body is null; send the device object ({} if it is empty)")
	}
	return obj, nil
}

// decodeJSON decodes a structured API body into v, refusing unknown fields.
func decodeJSON(c echo.Context, limit int64, v any) error {
	body, err := readBody(c, limit)
	if err != nil {
		return err
	}
	switch trimmed := bytes.TrimSpace(body); {
	case len(trimmed) == 0:
		body = []byte("{}")
	case bytes.Equal(trimmed, []byte("null")):
		return serializer.Errorf(serializer.EMALFORMED, "request body is null; send a JSON object ({} if it is empty)")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return serializer.Errorf(serializer.EMALFORMED, "request body: %s", jsonProblem(err))
	}
	if dec.More() {
		return serializer.Errorf(serializer.EMALFORMED, "request body: more than one JSON value")
	}
	return nil
}

// jsonProblem describes a JSON decoding error for the person who sent the body.
func jsonProblem(err error) string {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q must be %s, not %s", typ.Field, typ.Type, typ.Value)
		}
		return fmt.Sprintf("expected %s, got %s", typ.Type, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the JSON ends too early"
	default:
		return err.Error()
	}
}

// scalarField returns a string or number field of a device object, "" when absent or null.
func scalarField(obj map[string]json.RawMessage, name string) (string, error) {
	raw, ok := obj[name]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s), nil
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), nil
	}
	return "", serializer.Errorf(serializer.EINVALID, "field %q must be a string", name)
}

// requestKey returns the idempotency key from ?key=, the Idempotency-Key header or
// the body; two different keys in one request are refused.
func requestKey(c echo.Context, fromBody string) (string, error) {
	key := ""
	for _, k := range []string{c.QueryParam("key"), c.Request().Header.Get("Idempotency-Key"), fromBody} {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		if key != "" && k != key {
			return "", serializer.Errorf(serializer.EINVALID, "two different idempotency keys in one request (%q and %q)", key, k)
		}
		key = k
	}
	return key, nil
}

// identities turns the jig's identity fields into the registry's identity keys, in
// the order key, hwid, serial, mac: first is the one shown for the device, and every
// one of them finds it later. A MAC address is normalised so that AA-BB-… and aa:bb:…
// name the same device.
func identities(f identityFields) (first string, others []string, err error) {
	var all []string
	for _, id := range []struct{ kind, value string }{{"key", f.Key}, {"hwid", f.HWID}, {"serial", f.Serial}, {"mac", f.MAC}} {
		if id.value == "" {
			continue
		}
		v := id.value
		if id.kind == "mac" {
			hw, err := net.ParseMAC(v)
			if err != nil {
				return "", nil, serializer.Errorf(serializer.EINVALID, "mac %q is not a MAC address", v)
			}
			v = hw.String()
		}
		all = append(all, id.kind+":"+v)
	}
	if len(all) == 0 {
		return "", nil, nil
	}
	return all[0], all[1:], nil
}

// jigToken returns the station token from ?token= or Authorization: Bearer.
func jigToken(c echo.Context) string {
	if t := c.QueryParam("token"); t != "" {
		return t
	}
	auth := c.Request().Header.Get(echo.HeaderAuthorization)
	if len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		return strings.TrimSpace(auth[7:])
	}
	return ""
}

// compactJSON returns body without insignificant white space, or nil for an empty body.
func compactJSON(body []byte) (json.RawMessage, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, body); err != nil {
		return nil, serializer.Errorf(serializer.EMALFORMED, "request body: %s", jsonProblem(err))
	}
	return buf.Bytes(), nil
}

// tokenAuditEvery limits the audit entries of refused jig tokens to one per station
// and source address in this time: a misconfigured jig retries every 2 s.
const tokenAuditEvery = time.Minute

// auditRefusedToken records a jig request refused for its station token.
func (s *Server) auditRefusedToken(c echo.Context, stationID string) {
	addr, _ := peerAddr(c.Request().RemoteAddr)
	key := stationID + "|" + addr.String()
	now := time.Now()
	s.tokenAuditMu.Lock()
	last, seen := s.tokenAudits[key]
	if seen && now.Sub(last) < tokenAuditEvery {
		s.tokenAuditMu.Unlock()
		return
	}
	if len(s.tokenAudits) > 10_000 {
		clear(s.tokenAudits) // bounded memory; at worst one extra entry per station and address
	}
	s.tokenAudits[key] = now
	s.tokenAuditMu.Unlock()
	subject := "station:" + stationID
	if stationID == "" {
		subject = "station:(default)"
	}
	err := s.svc.Record(c.Request().Context(), serializer.AuditEntry{
		Actor: "jig@" + addr.String(), Action: "jig.token.refused", Subject: subject,
		Detail: "missing or wrong station token (further refusals from this address are not recorded for a minute)",
	})
	if err != nil {
		s.logger.Error("could not record a refused jig token", "err", err)
	}
}
