-- Operators and supervisors who may change the registry, and their browser sessions;
-- an index for the line view.
-- Secrets are stored hashed: passwords with bcrypt, API keys and session tokens with
-- SHA-256 (they are long random strings). Times are Unix milliseconds (UTC).

-- +goose Up
CREATE TABLE operators (
	id            INTEGER PRIMARY KEY,
	name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
	role          TEXT NOT NULL CHECK (role IN ('operator', 'supervisor')),
	password_hash TEXT NOT NULL,
	api_key_hash  TEXT UNIQUE,
	failed_logins INTEGER NOT NULL DEFAULT 0,
	locked_until  INTEGER,
	created_at    INTEGER NOT NULL,
	disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
);

CREATE TABLE sessions (
	token_hash  TEXT PRIMARY KEY,
	operator_id INTEGER NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
	csrf        TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	last_seen   INTEGER NOT NULL
);
CREATE INDEX sessions_operator ON sessions (operator_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- The line view asks each second for a station's newest devices and its rate.
CREATE INDEX devices_station_created ON devices (station_id, created_at);

-- +goose Down
DROP INDEX devices_station_created;
DROP TABLE sessions;
DROP TABLE operators;
