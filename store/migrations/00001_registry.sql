-- The UCI registry: products, stations, batches, devices, label jobs and the audit trail.
-- Times are Unix milliseconds (UTC).

-- +goose Up
CREATE TABLE products (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	model      TEXT NOT NULL DEFAULT '',
	updated_at INTEGER NOT NULL
);

CREATE TABLE stations (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL DEFAULT '',
	product_id TEXT REFERENCES products (id),
	updated_at INTEGER NOT NULL
);

CREATE TABLE batches (
	id         INTEGER PRIMARY KEY,
	product_id TEXT NOT NULL REFERENCES products (id),
	station_id TEXT NOT NULL REFERENCES stations (id),
	planned    INTEGER NOT NULL DEFAULT 0 CHECK (planned >= 0),
	state      TEXT NOT NULL CHECK (state IN ('open', 'closed')),
	opened_at  INTEGER NOT NULL,
	closed_at  INTEGER,
	-- Counters: issued is counted where devices are inserted (see 00004); the others
	-- follow device state through the trigger on devices below.
	issued     INTEGER NOT NULL DEFAULT 0,
	labeled    INTEGER NOT NULL DEFAULT 0,
	verified   INTEGER NOT NULL DEFAULT 0,
	voided     INTEGER NOT NULL DEFAULT 0,
	synced     INTEGER NOT NULL DEFAULT 0
);
-- A station runs at most one batch at a time.
CREATE UNIQUE INDEX batches_one_open_per_station ON batches (station_id) WHERE state = 'open';

CREATE TABLE devices (
	id         INTEGER PRIMARY KEY,
	uci        TEXT NOT NULL UNIQUE CHECK (length(uci) = 16),
	batch_id   INTEGER NOT NULL REFERENCES batches (id),
	product_id TEXT NOT NULL REFERENCES products (id),
	station_id TEXT NOT NULL REFERENCES stations (id),
	identity   TEXT CHECK (identity IS NULL OR identity <> ''),
	attributes TEXT,
	state      TEXT NOT NULL DEFAULT 'issued' CHECK (state IN ('issued', 'labeled', 'verified', 'voided')),
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
-- The same device identity always maps to the same UCI within a product.
CREATE UNIQUE INDEX devices_product_identity ON devices (product_id, identity) WHERE identity IS NOT NULL;
CREATE INDEX devices_batch ON devices (batch_id, id);

-- +goose StatementBegin
CREATE TRIGGER devices_count_insert AFTER INSERT ON devices
BEGIN
	UPDATE batches SET
		issued   = issued + 1,
		labeled  = labeled + (NEW.state IN ('labeled', 'verified')),
		verified = verified + (NEW.state = 'verified'),
		voided   = voided + (NEW.state = 'voided')
	WHERE id = NEW.batch_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER devices_count_state AFTER UPDATE OF state ON devices WHEN OLD.state <> NEW.state
BEGIN
	UPDATE batches SET
		labeled  = labeled - (OLD.state IN ('labeled', 'verified')) + (NEW.state IN ('labeled', 'verified')),
		verified = verified - (OLD.state = 'verified') + (NEW.state = 'verified'),
		voided   = voided - (OLD.state = 'voided') + (NEW.state = 'voided')
	WHERE id = NEW.batch_id;
END;
-- +goose StatementEnd

CREATE TABLE print_jobs (
	id         INTEGER PRIMARY KEY,
	kind       TEXT NOT NULL CHECK (kind IN ('device', 'batch')),
	uci        TEXT REFERENCES devices (uci),
	batch_id   INTEGER NOT NULL REFERENCES batches (id),
	station_id TEXT NOT NULL REFERENCES stations (id),
	state      TEXT NOT NULL DEFAULT 'queued'
	           CHECK (state IN ('queued', 'sending', 'printed', 'failed', 'uncertain', 'cancelled')),
	attempts   INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	reprint    INTEGER NOT NULL DEFAULT 0 CHECK (reprint IN (0, 1)),
	reason     TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	CHECK ((kind = 'device') = (uci IS NOT NULL))
);
-- Every device has exactly one original label job; further labels are audited reprints.
CREATE UNIQUE INDEX print_jobs_one_original ON print_jobs (uci) WHERE kind = 'device' AND reprint = 0;
CREATE INDEX print_jobs_queue ON print_jobs (station_id, state, id);

CREATE TABLE audit (
	id      INTEGER PRIMARY KEY,
	at      INTEGER NOT NULL,
	actor   TEXT NOT NULL,
	action  TEXT NOT NULL,
	subject TEXT NOT NULL,
	reason  TEXT NOT NULL DEFAULT '',
	detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_subject ON audit (subject, id);

-- +goose StatementBegin
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
	SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
	SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE audit;
DROP TABLE print_jobs;
DROP TABLE devices;
DROP TABLE batches;
DROP TABLE stations;
DROP TABLE products;
