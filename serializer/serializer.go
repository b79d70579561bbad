// Package serializer is serialbox's domain: unique claim IDs (UCIs), the products,
// stations, batches, devices and label jobs they belong to, and the issuance rules.
// It imports nothing of serialbox's own; storage, printers and HTTP implement or call
// the interfaces declared here.
package serializer

import (
	"context"
	"encoding/json"
	"time"
)

// Product is what is being built. ID is the Ioto product id (a ULID) or any id the
// factory uses; jigs name it in their requests.
type Product struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Model string `json:"model,omitempty"`
	// ProvisioningSecret, when set, gives every device a provisioning token
	// (ProvisioningToken); it is never shown.
	ProvisioningSecret []byte `json:"-"`
}

// Station is a place on the line with a jig and a printer.
type Station struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	ProductID string `json:"product,omitempty"` // product made here when a request names none
	AutoBatch bool   `json:"auto_batch"`        // open a batch automatically when none is open
	BatchSize int    `json:"batch_size"`        // planned size of automatic batches; 0 = no limit
	Default   bool   `json:"default,omitempty"` // serves requests that name no station
	Token     string `json:"-"`                 // when set, jig requests must present it
	// RequireIdentity refuses jig requests that name no device identity, so that a
	// jig that cannot be told apart fails loudly instead of minting a UCI per ask.
	RequireIdentity bool `json:"require_identity,omitempty"`
}

// BatchState is the life-cycle state of a batch.
type BatchState string

// Batch states.
const (
	BatchOpen   BatchState = "open"
	BatchClosed BatchState = "closed"
)

// Batch is one production run of one product at one station.
type Batch struct {
	ID        int64       `json:"id"`
	ProductID string      `json:"product"`
	StationID string      `json:"station"`
	Planned   int         `json:"planned"` // planned number of devices; 0 = no limit
	State     BatchState  `json:"state"`
	OpenedAt  time.Time   `json:"opened_at"`
	ClosedAt  *time.Time  `json:"closed_at,omitempty"`
	Counts    BatchCounts `json:"counts"`
}

// Full reports whether the batch has reached its planned size.
func (b Batch) Full() bool { return b.Planned > 0 && b.Counts.Issued >= b.Planned }

// BatchCounts are a batch's device counters. Issued counts every UCI issued into the
// batch, voided ones included; the others count devices that reached that state.
type BatchCounts struct {
	Issued   int `json:"issued"`
	Labeled  int `json:"labeled"`
	Verified int `json:"verified"`
	Voided   int `json:"voided"`
	Synced   int `json:"synced"`
	// Anonymous counts the UCIs issued to jigs that named no identity: each ask of
	// such a jig is a new device, so a jig asking again leaves an orphan UCI.
	Anonymous int `json:"anonymous"`
}

// DeviceState is the life-cycle state of a device's UCI.
type DeviceState string

// Device states.
const (
	DeviceIssued   DeviceState = "issued"   // UCI durable and answered; label not printed yet
	DeviceLabeled  DeviceState = "labeled"  // its label came out of the printer
	DeviceVerified DeviceState = "verified" // an operator scanned the label on the finished unit
	DeviceVoided   DeviceState = "voided"   // withdrawn; the UCI is never issued again
)

// Device is one unit that received a UCI.
type Device struct {
	UCI        UCI             `json:"id"`
	BatchID    int64           `json:"batch"`
	ProductID  string          `json:"product"`
	StationID  string          `json:"station"`
	Identity   string          `json:"identity,omitempty"`   // e.g. "hwid:ABC123"; unique per product
	Attributes json.RawMessage `json:"attributes,omitempty"` // the jig's device object as sent
	State      DeviceState     `json:"state"`
	CreatedAt  time.Time       `json:"created"`
	UpdatedAt  time.Time       `json:"updated"`
}

// JobKind says what a label job prints.
type JobKind string

// Label job kinds.
const (
	JobDevice JobKind = "device" // a device label: UCI as text and QR
	JobBatch  JobKind = "batch"  // a batch (carton) label
)

// JobState is the life-cycle state of a label job.
type JobState string

// Label job states.
const (
	JobQueued    JobState = "queued"    // waiting for the station's printer
	JobSending   JobState = "sending"   // bytes are on their way to the printer
	JobPrinted   JobState = "printed"   // the printer took the whole job
	JobFailed    JobState = "failed"    // given up; the reason is in LastError
	JobUncertain JobState = "uncertain" // delivery broke off mid-way; an operator decides
	JobCancelled JobState = "cancelled" // withdrawn before printing
)

// JobAction is an operator's decision about a failed or uncertain label job.
type JobAction string

// Job actions.
const (
	JobResend         JobAction = "resend"  // the label did not come out: send it again
	JobConfirmPrinted JobAction = "printed" // the label came out whole: record it printed
	JobCancel         JobAction = "cancel"  // do not print it
)

// PrintJob is one label to print at a station.
type PrintJob struct {
	ID        int64     `json:"id"`
	Kind      JobKind   `json:"kind"`
	UCI       *UCI      `json:"uci,omitempty"` // device labels only
	BatchID   int64     `json:"batch"`
	StationID string    `json:"station"`
	State     JobState  `json:"state"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	Reprint   bool      `json:"reprint,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created"`
	UpdatedAt time.Time `json:"updated"`
}

// AuditEntry records one state-changing action: who did what, when and why.
type AuditEntry struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Subject string    `json:"subject"`
	Reason  string    `json:"reason,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

// IssueParams is what the repository needs to issue one UCI atomically. The Service
// fills it after checking the request against the configuration.
type IssueParams struct {
	Station   Station
	ProductID string
	Identity  string
	// OtherIdentities are further identities the jig named for the device; each
	// finds it later, and all of them must belong to the same device.
	OtherIdentities []string
	Attributes      json.RawMessage
	// NewUCI draws a fresh UCI; the repository calls it again if the database
	// already holds the one drawn.
	NewUCI func() (UCI, error)
	// AutoSync names the upstream targets that take every closed batch, for a batch
	// the station closes because it is full.
	AutoSync []string
}

// PregenLabels says what happens to the labels of pre-generated UCIs.
type PregenLabels string

// Label modes of a pre-generation.
const (
	// PregenQueue queues a label job per device for the batch's station printer.
	PregenQueue PregenLabels = "queue"
	// PregenOutside records that the labels are printed outside the appliance (PDF
	// sheets, a label printing house); the jobs are kept for the record, cancelled.
	PregenOutside PregenLabels = "outside"
)

// Issued is the outcome of an issuance.
type Issued struct {
	Device Device
	Batch  Batch
	// Existing is true when the identity already had a UCI and that one was returned.
	Existing bool
	// ClosedBatchID is the full batch this issuance closed to open Batch (stations
	// that run automatically); 0 when none was closed.
	ClosedBatchID int64
	// Token is the device's provisioning token when its product has a secret.
	Token string
}

// BatchFilter selects batches for listing. Zero fields select everything.
type BatchFilter struct {
	StationID string
	State     BatchState
	Limit     int
}

// Repository stores the registry. Every method is atomic; IssueDevice writes the device
// and its label job in one durable transaction before it returns.
type Repository interface {
	// SyncCatalog records the configured products and stations.
	SyncCatalog(ctx context.Context, products []Product, stations []Station) error
	// IssueDevice returns the identity's existing device, or issues a new UCI into the
	// station's open batch (opening one if the station allows it), together with the
	// device's label job.
	IssueDevice(ctx context.Context, p IssueParams) (Issued, error)
	Device(ctx context.Context, uci UCI) (Device, error)
	Batch(ctx context.Context, id int64) (Batch, error)
	Batches(ctx context.Context, f BatchFilter) ([]Batch, error)
	OpenBatch(ctx context.Context, b Batch, actor string) (Batch, error)
	// CloseBatch closes a batch and, in the same transaction, requests it for the
	// autoSync targets; the devices follow into the outbox in short transactions.
	CloseBatch(ctx context.Context, id int64, actor, reason string, autoSync []string) (Batch, error)
	PrintJobs(ctx context.Context, uci UCI) ([]PrintJob, error)
	// Reprint queues an audited extra label for a device.
	Reprint(ctx context.Context, uci UCI, stationID, actor, reason string) (PrintJob, error)
	// Void withdraws a UCI for good and cancels its unprinted labels.
	Void(ctx context.Context, uci UCI, actor, reason string) (Device, error)
	// BatchLabel queues a batch (carton) label.
	BatchLabel(ctx context.Context, batchID int64, stationID, actor, reason string) (PrintJob, error)
	// Verify marks a device verified: its label was scanned on the finished unit. The
	// device must be issued, not voided, not verified yet, and belong to the open batch
	// named by batchID, else by stationID, else of the device's own station.
	Verify(ctx context.Context, uci UCI, batchID int64, stationID, actor string) (Device, error)
	// ResolveJob applies an operator's decision to a failed or uncertain label job.
	ResolveJob(ctx context.Context, id int64, action JobAction, actor, reason string) (PrintJob, error)
	// Audit returns the audit entries about a subject ("" = all), newest first.
	Audit(ctx context.Context, subject string, limit int) ([]AuditEntry, error)
	// Record appends an entry to the audit trail.
	Record(ctx context.Context, e AuditEntry) error
	// StationTokens returns the SHA-256 (hex) of every rotated jig token, by station.
	StationTokens(ctx context.Context) (map[string]string, error)
	// SetStationToken records a station's new jig token by its SHA-256, audited.
	SetStationToken(ctx context.Context, stationID, hash, actor string) error
	// EnqueueSync queues a batch's devices for upstream targets; it returns how many
	// devices were queued per target.
	EnqueueSync(ctx context.Context, batchID int64, targets []string, actor, reason string) (map[string]int, error)
	// SyncStatus returns a batch's progress with each target it was queued for.
	SyncStatus(ctx context.Context, batchID int64) ([]TargetSync, error)
	// SyncFailures returns a batch's devices that a target refused.
	SyncFailures(ctx context.Context, batchID int64, limit int) ([]SyncFailure, error)
	// Pregenerate issues count new UCIs into an open batch, each with its label job,
	// and returns how many were committed.
	Pregenerate(ctx context.Context, batchID int64, count int, labels PregenLabels, newUCI func() (UCI, error), actor string) (int, error)
	// EachDevice calls fn for every device of a batch in issue order, streaming.
	EachDevice(ctx context.Context, batchID int64, fn func(Device) error) error
}

// SyncQueue is told when batches were queued for upstream registration; the syncer
// then starts at once instead of at its next poll.
type SyncQueue interface {
	Wake()
}

// TargetSync is how far a batch is with one upstream target.
type TargetSync struct {
	Target      string     `json:"target"`
	State       string     `json:"state"` // queued or done
	RequestedAt time.Time  `json:"requested_at"`
	RequestedBy string     `json:"requested_by"`
	DoneAt      *time.Time `json:"done_at,omitempty"`
	Pending     int        `json:"pending"`
	Sending     int        `json:"sending"`
	OK          int        `json:"ok"`
	Exists      int        `json:"exists"`
	Errors      int        `json:"errors"`
	Attempts    int        `json:"attempts"`             // failed tries of the chunk now waiting
	LastError   string     `json:"last_error,omitempty"` // why the chunk now waiting failed
	// Queueing counts the devices of the request not yet put into the outbox: a
	// batch's devices follow its request in short transactions.
	Queueing int `json:"queueing"`
}

// SyncFailure is a device an upstream target refused, with its reason.
type SyncFailure struct {
	UCI     UCI    `json:"id"`
	Target  string `json:"target"`
	Message string `json:"message"`
}

// PrintQueue is told when label jobs were queued so that the station's worker can
// start at once instead of at its next poll. The jobs themselves are already durable.
type PrintQueue interface {
	Queued(stationID string)
}
