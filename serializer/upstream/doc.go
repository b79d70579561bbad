// Package upstream registers serialbox's devices with the clouds that must know them
// before a customer claims a device, and writes batch manifests for factories without
// a way out.
//
// A target is one upstream system: an HTTP endpoint that takes chunks of devices
// (kind "http"), the Ioto Builder's per-device registration (kind "ioto"), or a folder
// that receives manifest files (kind "file"). The Syncer drains a durable Outbox to
// every target, one chunk at a time, and records each device's verdict.
//
// # Exactly once per device
//
// Delivery is at least once on the wire and exactly once in effect. Every chunk keeps
// its idempotency key across retries and restarts: the Outbox hands out an unsettled
// chunk again, with the same key and devices, until its results are recorded. When the
// appliance cannot know whether a push went through (a reply lost, a restart between
// push and Settle), the chunk is pushed again under the same key, and the upstream
// either recognises the key or answers "exists" for devices it already holds. "exists"
// counts as success, so every device ends up registered once and settled once.
//
// # Failures
//
// A push that fails as a whole and may work later (network, timeout, 5xx, 408, 409,
// 425, 429, an answer that is not the JSON expected) is retried with the same key after
// a capped exponential backoff with jitter (1 s doubling to 10 min), or after the delay
// the upstream asked for in Retry-After (at most an hour). A verdict that will not
// change by retrying (any other 4xx, including 401 and 403) is recorded as an error for
// every device of the chunk with the upstream's message, so the operator sees why; after
// fixing the cause the operator queues the batch again.
//
// # Manifests
//
// A manifest lists a batch's devices, one per row, in the columns of ManifestColumns:
//
//	uci,display,batch,product,product_name,model,station,identity,state,created,attributes
//
// as CSV (RFC 4180 quoting, LF line ends, a header row) or JSON lines with the same
// keys. created is RFC 3339 in UTC; attributes is the jig's device object as compact
// JSON. In CSV a value that a spreadsheet would run as a formula (one starting with
// = + - @, a tab or a carriage return) is written with a leading apostrophe, and so is
// a value that starts with an apostrophe, so that UnguardCSV restores every value
// exactly. JSON lines are written unchanged.
package upstream
