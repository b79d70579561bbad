-- The upstream sync outbox: which batches go to which targets, and each device's
-- result per target. A device reaches a target at most once: (target, uci) is unique,
-- and a device that a target accepted is never queued for it again.

-- +goose Up
CREATE TABLE sync_batches (
	batch_id     INTEGER NOT NULL REFERENCES batches (id),
	target       TEXT NOT NULL,
	state        TEXT NOT NULL CHECK (state IN ('queued', 'done')),
	requested_at INTEGER NOT NULL,
	requested_by TEXT NOT NULL,
	done_at      INTEGER,
	PRIMARY KEY (batch_id, target)
);

CREATE TABLE sync_items (
	id         INTEGER PRIMARY KEY,
	batch_id   INTEGER NOT NULL REFERENCES batches (id),
	target     TEXT NOT NULL,
	uci        TEXT NOT NULL REFERENCES devices (uci),
	state      TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'ok', 'exists', 'error')),
	chunk_key  TEXT,
	attempts   INTEGER NOT NULL DEFAULT 0,
	message    TEXT NOT NULL DEFAULT '',
	updated_at INTEGER NOT NULL,
	UNIQUE (target, uci)
);
CREATE INDEX sync_items_waiting ON sync_items (target, state, batch_id, id);
CREATE INDEX sync_items_chunk ON sync_items (chunk_key);
CREATE INDEX sync_items_batch ON sync_items (batch_id, target, state);
CREATE INDEX sync_items_uci ON sync_items (uci);

CREATE TABLE sync_chunks (
	key        TEXT PRIMARY KEY,
	target     TEXT NOT NULL,
	batch_id   INTEGER NOT NULL REFERENCES batches (id),
	settled    INTEGER NOT NULL DEFAULT 0 CHECK (settled IN (0, 1)),
	attempts   INTEGER NOT NULL DEFAULT 0,
	next_try   INTEGER,
	last_error TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL
);
CREATE INDEX sync_chunks_open ON sync_chunks (target, settled, created_at);

-- +goose Down
DROP TABLE sync_chunks;
DROP TABLE sync_items;
DROP TABLE sync_batches;
