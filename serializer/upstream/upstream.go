package upstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"serialbox/serializer"
)

// Chunk is one push of devices of one batch to one target.
type Chunk struct {
	Target  string // target name
	Key     string // idempotency key: the same on every retry of this chunk
	Batch   serializer.Batch
	Product serializer.Product
	Devices []serializer.Device
}

// Result is the target's verdict on one device.
type Result struct {
	UCI     serializer.UCI `json:"id"`
	Status  string         `json:"status"` // StatusOK, StatusExists (counts as success) or StatusError
	Message string         `json:"message,omitempty"`
}

// Result statuses.
const (
	StatusOK     = "ok"     // the upstream registered the device
	StatusExists = "exists" // the upstream already held the device; counts as success
	StatusError  = "error"  // the upstream refused the device; Message says why
)

// OK reports whether the device is registered upstream (StatusOK or StatusExists).
func (r Result) OK() bool { return r.Status == StatusOK || r.Status == StatusExists }

// Target registers devices with one upstream system.
type Target interface {
	Name() string
	// Push sends one chunk. A non-nil error means the chunk as a whole did not go
	// through (network, timeout, 5xx, 408, 409, 425, 429, an unreadable answer) and is
	// retried later with the same Key; results then are ignored. A nil error must come
	// with one Result per device of the chunk; a refusal that retrying cannot change
	// (other 4xx, bad credentials included) is a StatusError result per device.
	Push(ctx context.Context, c Chunk) ([]Result, error)
}

// ChunkSizer is implemented by targets that want chunks of a particular size; the
// Syncer asks the Outbox for at most that many devices per chunk.
type ChunkSizer interface {
	ChunkSize() int
}

// Outbox is the durable queue of devices to register, as the syncer sees it.
type Outbox interface {
	// NextChunk returns the next chunk for the target: a chunk already handed out but not
	// settled (same Key, same devices) first, else up to max waiting devices of the oldest
	// queued batch under a new Key. ok=false when nothing waits for this target.
	NextChunk(ctx context.Context, target string, max int) (c Chunk, ok bool, err error)
	// Settle records the per-device results of a chunk.
	Settle(ctx context.Context, target, key string, results []Result) error
	// Defer records that the chunk failed as a whole and may be tried at next.
	Defer(ctx context.Context, target, key, reason string, next time.Time) error
}

// RetryError is a push that failed as a whole and may succeed later with the same key.
type RetryError struct {
	After time.Duration // the wait the upstream asked for (Retry-After); 0 = none
	Err   error
}

// Error implements the error interface.
func (e *RetryError) Error() string {
	if e.After > 0 {
		return fmt.Sprintf("%v (upstream asks to retry in %v)", e.Err, e.After)
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *RetryError) Unwrap() error { return e.Err }

// RetryAfter returns the wait the upstream asked for in err's chain, or 0.
func RetryAfter(err error) time.Duration {
	var re *RetryError
	if errors.As(err, &re) {
		return re.After
	}
	return 0
}

func retryable(after time.Duration, format string, args ...any) error {
	return &RetryError{After: after, Err: fmt.Errorf(format, args...)}
}

// New returns the target that cfg describes. cfg gets its defaults and is validated
// first; certificate and key files are read now, so a bad one is reported at start-up.
func New(cfg TargetConfig) (Target, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Kind {
	case KindHTTP:
		return newHTTPTarget(cfg)
	case KindIoto:
		return newIotoTarget(cfg)
	case KindFile:
		return newFileTarget(cfg)
	}
	return nil, invalid("kind", "unknown kind %q (http, ioto, file)", cfg.Kind)
}

// everyDevice returns the same verdict for every device of c.
func everyDevice(c Chunk, status, msg string) []Result {
	res := make([]Result, len(c.Devices))
	for i, d := range c.Devices {
		res[i] = Result{UCI: d.UCI, Status: status, Message: msg}
	}
	return res
}
