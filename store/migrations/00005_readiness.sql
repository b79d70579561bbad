-- One row that the readiness check writes: a commit that changes nothing writes nothing
-- either, and would report a full or read-only disk as ready.

-- +goose Up
CREATE TABLE readiness (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	checked_at INTEGER NOT NULL
);
INSERT INTO readiness (id, checked_at) VALUES (1, 0);

-- +goose Down
DROP TABLE readiness;
