package serializer

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
)

// MaxIdentityLen bounds a device identity (hwid, serial, MAC or idempotency key).
const MaxIdentityLen = 200

// MaxBatchSize bounds the planned size of one batch.
const MaxBatchSize = 100_000_000

// IssueRequest is a jig's request for a UCI.
type IssueRequest struct {
	StationID string // "" = the appliance's only or default station
	ProductID string // "" = the station's product
	Identity  string // "" = none: every request gets a new UCI
	// OtherIdentities are further identities the request named (hwid, serial, mac
	// beside a key); all must belong to the device Identity names.
	OtherIdentities []string
	Attributes      json.RawMessage // the device object the jig sent, stored as is
	Token           string          // the station token the jig presented
}

// OpenBatchRequest asks for a new batch at a station.
type OpenBatchRequest struct {
	StationID string `json:"station"`
	ProductID string `json:"product"` // "" = the station's product
	Planned   int    `json:"planned"` // 0 = no limit
}

// Catalog is the configured set of products and stations, with the limits that
// come with the configuration.
type Catalog struct {
	Products []Product
	Stations []Station
	// PregenMax is the most UCIs one pre-generation may ask for; 0 = DefaultPregenMax.
	PregenMax int
}

// DefaultPregenMax is the most UCIs one pre-generation may ask for unless the
// configuration says otherwise (pregen_max).
const DefaultPregenMax = 1_000_000

type catalog struct {
	Catalog
	products map[string]Product
	stations map[string]Station
}

// Service applies the issuance rules on top of a Repository. It is safe for
// concurrent use; the catalog can be replaced while requests are in flight.
type Service struct {
	// defaultSource is true while newUCI is NewUCI, so bulk runs may buffer crypto/rand.
	defaultSource bool
	repo          Repository
	queue         PrintQueue
	newUCI        func() (UCI, error)
	catalog       atomic.Pointer[catalog]
	targets       atomic.Pointer[syncTargets] // replaced whole on reload
	// tokens holds the SHA-256 of rotated jig tokens by station; they replace the
	// configured ones. Kept in memory: the check runs on every jig request.
	tokens  atomic.Pointer[map[string][sha256.Size]byte]
	tokenMu sync.Mutex // serialises rotations
}

// syncTargets are the upstream targets and the queue that serves them, swapped as
// one on reload while requests read them.
type syncTargets struct {
	all, auto []string
	queue     SyncQueue // nil: nobody to tell
}

// noSyncTargets is the state before SetSyncTargets.
var noSyncTargets = &syncTargets{}

// syncConfig returns the current targets and queue, never nil.
func (s *Service) syncConfig() *syncTargets {
	if t := s.targets.Load(); t != nil {
		return t
	}
	return noSyncTargets
}

// SetSyncTargets names the configured upstream targets and those of them that take
// every batch when it closes, and the queue to tell when a batch was queued. It may be
// called while requests are served.
func (s *Service) SetSyncTargets(all, auto []string, q SyncQueue) {
	s.targets.Store(&syncTargets{all: slices.Clone(all), auto: slices.Clone(auto), queue: q})
}

// SetAutoSync is SetSyncTargets for targets that all take every closed batch.
func (s *Service) SetAutoSync(targets []string, q SyncQueue) { s.SetSyncTargets(targets, targets, q) }

func (s *Service) autoSyncTargets() []string { return s.syncConfig().auto }

// SyncTargets returns the names of the configured upstream targets.
func (s *Service) SyncTargets() []string { return s.syncConfig().all }

// RequestSync queues a batch for upstream targets (none named: every configured one).
// Devices a target accepted before are not sent again; devices it refused are.
func (s *Service) RequestSync(ctx context.Context, batchID int64, targets []string, actor, reason string) (map[string]int, error) {
	all := s.SyncTargets()
	if len(all) == 0 {
		return nil, Errorf(EINVALID, "no upstream target is configured ([[upstream]] in the config file)")
	}
	if len(targets) == 0 {
		targets = all
	}
	for _, t := range targets {
		if !slices.Contains(all, t) {
			return nil, Errorf(EINVALID, "unknown upstream target %q (configured: %s)", t, strings.Join(all, ", "))
		}
	}
	queued, err := s.repo.EnqueueSync(ctx, batchID, targets, actor, strings.TrimSpace(reason))
	if err == nil {
		s.syncQueued()
	}
	return queued, err
}

// SyncStatus returns a batch's progress with each target it was queued for.
func (s *Service) SyncStatus(ctx context.Context, batchID int64) ([]TargetSync, error) {
	return s.repo.SyncStatus(ctx, batchID)
}

// SyncFailures returns a batch's devices that a target refused.
func (s *Service) SyncFailures(ctx context.Context, batchID int64, limit int) ([]SyncFailure, error) {
	return s.repo.SyncFailures(ctx, batchID, limit)
}

// EachDevice calls fn for every device of a batch in issue order.
func (s *Service) EachDevice(ctx context.Context, batchID int64, fn func(Device) error) error {
	if _, err := s.repo.Batch(ctx, batchID); err != nil {
		return err
	}
	return s.repo.EachDevice(ctx, batchID, fn)
}

// syncQueued tells the current queue, after a commit, that batches were queued.
func (s *Service) syncQueued() {
	if q := s.syncConfig().queue; q != nil {
		q.Wake()
	}
}

// NewService returns a Service over repo. queue may be nil.
func NewService(repo Repository, queue PrintQueue) *Service {
	s := &Service{repo: repo, queue: queue, newUCI: NewUCI, defaultSource: true}
	s.tokens.Store(&map[string][sha256.Size]byte{})
	s.catalog.Store(&catalog{products: map[string]Product{}, stations: map[string]Station{}})
	return s
}

// SetUCISource replaces the random source of new UCIs; tests use it to force collisions.
func (s *Service) SetUCISource(f func() (UCI, error)) { s.newUCI, s.defaultSource = f, false }

// SetCatalog checks c, records it in the repository and makes it current.
func (s *Service) SetCatalog(ctx context.Context, c Catalog) error {
	next, err := newCatalog(c)
	if err != nil {
		return err
	}
	if err := s.repo.SyncCatalog(ctx, c.Products, c.Stations); err != nil {
		return err
	}
	s.catalog.Store(next)
	return nil
}

// Catalog returns the current products and stations.
func (s *Service) Catalog() Catalog { return s.catalog.Load().Catalog }

// Station returns the configured station with the given id.
func (s *Service) Station(id string) (Station, bool) {
	st, ok := s.catalog.Load().stations[id]
	return st, ok
}

// Product returns the configured product with the given id.
func (s *Service) Product(id string) (Product, bool) {
	p, ok := s.catalog.Load().products[id]
	return p, ok
}

func newCatalog(c Catalog) (*catalog, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	next := &catalog{Catalog: c, products: map[string]Product{}, stations: map[string]Station{}}
	for _, p := range c.Products {
		next.products[p.ID] = p
	}
	for _, st := range c.Stations {
		next.stations[st.ID] = st
	}
	return next, nil
}

// station resolves a requested station id: "" means the only station, or the one
// marked default.
func (c *catalog) station(id string) (Station, error) {
	if id != "" {
		st, ok := c.stations[id]
		if !ok {
			return Station{}, Errorf(EUNKNOWNSTATION, "unknown station %q", id)
		}
		return st, nil
	}
	if len(c.Stations) == 1 {
		return c.Stations[0], nil
	}
	for _, st := range c.Stations {
		if st.Default {
			return st, nil
		}
	}
	return Station{}, Errorf(EUNKNOWNSTATION, "no station named: this appliance has %d stations and none is the default; add ?station=ID", len(c.Stations))
}

// Issue returns the UCI for one device: the identity's existing UCI when it has
// one, otherwise a new UCI that is durable, with its label job queued, before
// Issue returns.
func (s *Service) Issue(ctx context.Context, req IssueRequest) (Issued, error) {
	c := s.catalog.Load()
	st, err := c.station(req.StationID)
	if err != nil {
		return Issued{}, err
	}
	if err := s.checkToken(st, req.Token); err != nil {
		return Issued{}, err
	}
	productID := req.ProductID
	if productID == "" {
		productID = st.ProductID
	}
	if productID == "" {
		return Issued{}, Errorf(EUNKNOWNPRODUCT, "no product named and station %q has no default product", st.ID)
	}
	if _, ok := c.products[productID]; !ok {
		return Issued{}, Errorf(EUNKNOWNPRODUCT, "unknown product %q", productID)
	}
	if req.Identity == "" && len(req.OtherIdentities) > 0 {
		return Issued{}, fmt.Errorf("issue request with further identities but no first one")
	}
	if st.RequireIdentity && req.Identity == "" {
		return Issued{}, Errorf(EIDENTITYREQUIRED, "station %q requires a device identity: put a \"hwid\", \"serial\" or \"mac\" field in the device object (Ioto: device.json5), or use the serialize command, which reads the device's own", st.ID)
	}
	for _, id := range append([]string{req.Identity}, req.OtherIdentities...) {
		if err := ValidateIdentity(id); err != nil {
			return Issued{}, err
		}
	}
	issued, err := s.repo.IssueDevice(ctx, IssueParams{
		Station:         st,
		ProductID:       productID,
		Identity:        req.Identity,
		OtherIdentities: req.OtherIdentities,
		Attributes:      req.Attributes,
		NewUCI:          s.newUCI,
		AutoSync:        s.autoSyncTargets(),
	})
	if err != nil {
		return Issued{}, err
	}
	if issued.ClosedBatchID != 0 {
		s.syncQueued()
	}
	if p := c.products[productID]; len(p.ProvisioningSecret) > 0 {
		issued.Token = ProvisioningToken(p.ProvisioningSecret, issued.Device.UCI.String())
	}
	if !issued.Existing && s.queue != nil {
		s.queue.Queued(st.ID)
	}
	return issued, nil
}

// ValidateIdentity checks a device identity: printable, at most MaxIdentityLen bytes.
func ValidateIdentity(id string) error {
	if len(id) > MaxIdentityLen {
		return Errorf(EINVALID, "device identity is %d bytes long; at most %d are allowed", len(id), MaxIdentityLen)
	}
	if strings.IndexFunc(id, func(r rune) bool { return !unicode.IsPrint(r) || r == unicode.ReplacementChar }) >= 0 {
		return Errorf(EINVALID, "device identity %q has characters that are not printable", id)
	}
	return nil
}

// Device returns the device with the given UCI.
func (s *Service) Device(ctx context.Context, uci UCI) (Device, error) {
	return s.repo.Device(ctx, uci)
}

// PrintJobs returns the label jobs of a device, oldest first.
func (s *Service) PrintJobs(ctx context.Context, uci UCI) ([]PrintJob, error) {
	return s.repo.PrintJobs(ctx, uci)
}

// Batch returns the batch with the given id, with its counters.
func (s *Service) Batch(ctx context.Context, id int64) (Batch, error) { return s.repo.Batch(ctx, id) }

// Batches lists batches, newest first.
func (s *Service) Batches(ctx context.Context, f BatchFilter) ([]Batch, error) {
	return s.repo.Batches(ctx, f)
}

// OpenBatch opens a batch at a station; a station has at most one open batch.
func (s *Service) OpenBatch(ctx context.Context, req OpenBatchRequest, actor string) (Batch, error) {
	c := s.catalog.Load()
	if req.StationID == "" {
		return Batch{}, Errorf(EINVALID, "station is required")
	}
	st, err := c.station(req.StationID)
	if err != nil {
		return Batch{}, err
	}
	productID := req.ProductID
	if productID == "" {
		productID = st.ProductID
	}
	if productID == "" {
		return Batch{}, Errorf(EINVALID, "product is required: station %q has no default product", st.ID)
	}
	if _, ok := c.products[productID]; !ok {
		return Batch{}, Errorf(EUNKNOWNPRODUCT, "unknown product %q", productID)
	}
	if req.Planned < 0 || req.Planned > MaxBatchSize {
		return Batch{}, Errorf(EINVALID, "planned size %d is out of range (0 for no limit, up to %d)", req.Planned, MaxBatchSize)
	}
	return s.repo.OpenBatch(ctx, Batch{ProductID: productID, StationID: st.ID, Planned: req.Planned}, actor)
}

// CloseBatch closes an open batch; its devices can then be registered upstream.
func (s *Service) CloseBatch(ctx context.Context, id int64, actor, reason string) (Batch, error) {
	b, err := s.repo.CloseBatch(ctx, id, actor, reason, s.autoSyncTargets())
	if err == nil {
		s.syncQueued()
	}
	return b, err
}

// MaxReasonLen bounds the reason an operator gives for an audited action.
const MaxReasonLen = 500

// validReason checks the reason an audited action requires.
func validReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return "", Errorf(EINVALID, "a reason is required")
	case len(reason) > MaxReasonLen:
		return "", Errorf(EINVALID, "the reason is %d bytes long; at most %d are allowed", len(reason), MaxReasonLen)
	}
	return reason, nil
}

// stationOrEmpty checks an optional station id.
func (c *catalog) stationOrEmpty(id string) error {
	if id == "" {
		return nil
	}
	_, err := c.station(id)
	return err
}

// Reprint queues another label for a device, at its own station or the one named.
// A reason is required; the reprint is audited.
func (s *Service) Reprint(ctx context.Context, uci UCI, stationID, actor, reason string) (PrintJob, error) {
	reason, err := validReason(reason)
	if err != nil {
		return PrintJob{}, err
	}
	if err := s.catalog.Load().stationOrEmpty(stationID); err != nil {
		return PrintJob{}, err
	}
	j, err := s.repo.Reprint(ctx, uci, stationID, actor, reason)
	if err == nil && s.queue != nil {
		s.queue.Queued(j.StationID)
	}
	return j, err
}

// Void withdraws a UCI: it is never issued again and its unprinted labels are
// cancelled. A reason is required; the void is audited.
func (s *Service) Void(ctx context.Context, uci UCI, actor, reason string) (Device, error) {
	reason, err := validReason(reason)
	if err != nil {
		return Device{}, err
	}
	return s.repo.Void(ctx, uci, actor, reason)
}

// VerifyRequest names the batch a scanned label must belong to: the batch, else the
// open batch of the station, else the open batch of the device's own station.
type VerifyRequest struct {
	BatchID   int64  `json:"batch"`
	StationID string `json:"station"`
}

// Verify checks a label scanned on a finished unit: its UCI must be issued, not
// voided, of the open batch, and not verified before. The device is then marked
// verified; the check is audited.
func (s *Service) Verify(ctx context.Context, uci UCI, req VerifyRequest, actor string) (Device, error) {
	if req.BatchID < 0 {
		return Device{}, Errorf(EINVALID, "batch %d is not a batch number", req.BatchID)
	}
	if err := s.catalog.Load().stationOrEmpty(req.StationID); err != nil {
		return Device{}, err
	}
	return s.repo.Verify(ctx, uci, req.BatchID, req.StationID, actor)
}

// BatchLabel queues a batch (carton) label, at the batch's station or the one named.
func (s *Service) BatchLabel(ctx context.Context, batchID int64, stationID, actor, reason string) (PrintJob, error) {
	if err := s.catalog.Load().stationOrEmpty(stationID); err != nil {
		return PrintJob{}, err
	}
	j, err := s.repo.BatchLabel(ctx, batchID, stationID, actor, strings.TrimSpace(reason))
	if err == nil && s.queue != nil {
		s.queue.Queued(j.StationID)
	}
	return j, err
}

// ResolveJob applies an operator's decision to a failed or uncertain label job. A
// reason is required; the decision is audited.
func (s *Service) ResolveJob(ctx context.Context, id int64, action JobAction, actor, reason string) (PrintJob, error) {
	reason, err := validReason(reason)
	if err != nil {
		return PrintJob{}, err
	}
	j, err := s.repo.ResolveJob(ctx, id, action, actor, reason)
	if err == nil && j.State == JobQueued && s.queue != nil {
		s.queue.Queued(j.StationID)
	}
	return j, err
}

// Audit returns the audit entries about a subject ("" = all), newest first.
func (s *Service) Audit(ctx context.Context, subject string, limit int) ([]AuditEntry, error) {
	return s.repo.Audit(ctx, subject, limit)
}

// Pregenerate issues count new UCIs into an open batch for pre-printed label runs and
// unique-firmware builds. The database keeps them unique; labels are queued for the
// batch's station or recorded as printed outside the appliance. A count over the
// configured maximum is refused. On error the returned count says how many UCIs were
// issued before it.
func (s *Service) Pregenerate(ctx context.Context, batchID int64, count int, labels PregenLabels, actor string) (int, error) {
	limit := s.catalog.Load().PregenMax
	if limit <= 0 {
		limit = DefaultPregenMax
	}
	if count > limit {
		return 0, Errorf(EINVALID, "count %d is over the limit of %d UCIs per pre-generation (pregen_max in the configuration); split the run", count, limit)
	}
	source := s.newUCI
	if s.defaultSource {
		// One read of the system's random source per 6,553 UCIs instead of one each.
		r := bufio.NewReaderSize(rand.Reader, 1<<16)
		source = func() (UCI, error) { return ReadUCI(r) }
	}
	n, err := s.repo.Pregenerate(ctx, batchID, count, labels, source, actor)
	if n > 0 && labels == PregenQueue && s.queue != nil {
		if b, berr := s.repo.Batch(ctx, batchID); berr == nil {
			s.queue.Queued(b.StationID)
		}
	}
	return n, err
}

// Record appends an entry to the audit trail, for actions outside the service's own
// methods (refused jig tokens, configuration reloads).
func (s *Service) Record(ctx context.Context, e AuditEntry) error { return s.repo.Record(ctx, e) }

// checkToken checks the jig token presented for a station: the rotated one when a
// supervisor rotated it, else the one from the configuration, if any.
func (s *Service) checkToken(st Station, presented string) error {
	ok := true
	if rotated, has := (*s.tokens.Load())[st.ID]; has {
		sum := sha256.Sum256([]byte(presented))
		ok = subtle.ConstantTimeCompare(sum[:], rotated[:]) == 1
	} else if st.Token != "" {
		ok = subtle.ConstantTimeCompare([]byte(presented), []byte(st.Token)) == 1
	}
	switch {
	case ok:
		return nil
	case presented == "":
		return Errorf(EUNAUTHORIZED, "station %q requires a token (?token= or Authorization: Bearer)", st.ID)
	default:
		return Errorf(EUNAUTHORIZED, "wrong token for station %q", st.ID)
	}
}

// LoadStationTokens reads the rotated jig tokens from the repository.
func (s *Service) LoadStationTokens(ctx context.Context) error {
	stored, err := s.repo.StationTokens(ctx)
	if err != nil {
		return err
	}
	tokens := map[string][sha256.Size]byte{}
	for id, h := range stored {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != sha256.Size {
			return fmt.Errorf("stored token of station %q is damaged", id)
		}
		tokens[id] = [sha256.Size]byte(b)
	}
	s.tokens.Store(&tokens)
	return nil
}

// RotateStationToken gives a station a new random jig token and returns it; the
// previous one, configured or rotated, stops working at once. Only its SHA-256 is
// stored, so the token is shown this once.
func (s *Service) RotateStationToken(ctx context.Context, stationID, actor string) (string, error) {
	if _, ok := s.Station(stationID); !ok {
		return "", Errorf(EUNKNOWNSTATION, "unknown station %q", stationID)
	}
	var raw [20]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	token := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw[:]))
	sum := sha256.Sum256([]byte(token))
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	if err := s.repo.SetStationToken(ctx, stationID, hex.EncodeToString(sum[:]), actor); err != nil {
		return "", err
	}
	next := maps.Clone(*s.tokens.Load())
	next[stationID] = sum
	s.tokens.Store(&next)
	return token, nil
}

// TokenRotated reports whether a station's jig token was rotated from the page or API.
func (s *Service) TokenRotated(stationID string) bool {
	_, ok := (*s.tokens.Load())[stationID]
	return ok
}
