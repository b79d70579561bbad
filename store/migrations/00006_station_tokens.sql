-- Jig tokens rotated by a supervisor. They replace the station's token from the
-- configuration file; only their SHA-256 is kept.

-- +goose Up
CREATE TABLE station_tokens (
	station_id TEXT PRIMARY KEY REFERENCES stations (id),
	token_hash TEXT NOT NULL,
	rotated_at INTEGER NOT NULL,
	rotated_by TEXT NOT NULL
);

-- +goose Down
DROP TABLE station_tokens;
