-- The event outbox: what happened on the line, one row per event, written in the
-- transaction that made the change it reports, and published from here to the
-- factory's MQTT broker in seq order. seq is consecutive: a transaction rolled back
-- (or a refused request's savepoint) takes its rows and their numbers with it. It is
-- the rowid without AUTOINCREMENT (which would write sqlite_sequence for every row):
-- only the oldest published events are ever deleted, so a number is never reused.
--
-- Devices issued by a jig are recorded by the issue committer (store/events.go); the
-- other events come from the triggers below. Nothing is written while the outbox is
-- off (event_outbox.enabled = 0, the state without an [mqtt] block).
-- +goose Up
CREATE TABLE events (
	seq        INTEGER PRIMARY KEY,
	at         INTEGER NOT NULL,
	station_id TEXT NOT NULL,
	kind       TEXT NOT NULL,
	payload    TEXT NOT NULL -- JSON object: the event's own fields
);
-- enabled: whether events are written; published_seq: the newest event the broker
-- acknowledged (every older one was acknowledged before it).
CREATE TABLE event_outbox (
	id            INTEGER PRIMARY KEY CHECK (id = 1),
	enabled       INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
	published_seq INTEGER NOT NULL DEFAULT 0
);
INSERT INTO event_outbox (id) VALUES (1);

-- +goose StatementBegin
CREATE TRIGGER events_batch_opened AFTER INSERT ON batches
WHEN (SELECT enabled FROM event_outbox WHERE id = 1)
BEGIN
	INSERT INTO events (at, station_id, kind, payload) VALUES (NEW.opened_at, NEW.station_id, 'batch.opened',
		json_object('batch', NEW.id, 'product', NEW.product_id, 'planned', NEW.planned));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER events_batch_closed AFTER UPDATE OF state ON batches
WHEN NEW.state = 'closed' AND OLD.state <> 'closed' AND (SELECT enabled FROM event_outbox WHERE id = 1)
BEGIN
	INSERT INTO events (at, station_id, kind, payload) VALUES (COALESCE(NEW.closed_at, 0), NEW.station_id, 'batch.closed',
		json_object('batch', NEW.id, 'product', NEW.product_id, 'planned', NEW.planned, 'issued', NEW.issued,
			'labeled', NEW.labeled, 'verified', NEW.verified, 'voided', NEW.voided));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER events_batch_synced AFTER UPDATE OF state ON sync_batches
WHEN NEW.state = 'done' AND OLD.state <> 'done' AND (SELECT enabled FROM event_outbox WHERE id = 1)
BEGIN
	INSERT INTO events (at, station_id, kind, payload)
	SELECT COALESCE(NEW.done_at, 0), b.station_id, 'batch.synced',
		json_object('batch', NEW.batch_id, 'product', b.product_id, 'target', NEW.target,
			'ok', (SELECT COUNT(*) FROM sync_items WHERE batch_id = NEW.batch_id AND target = NEW.target AND state IN ('ok', 'exists')),
			'refused', (SELECT COUNT(*) FROM sync_items WHERE batch_id = NEW.batch_id AND target = NEW.target AND state = 'error'))
	FROM batches b WHERE b.id = NEW.batch_id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER events_device_state AFTER UPDATE OF state ON devices
WHEN NEW.state IN ('verified', 'voided') AND OLD.state <> NEW.state AND (SELECT enabled FROM event_outbox WHERE id = 1)
BEGIN
	INSERT INTO events (at, station_id, kind, payload) VALUES (NEW.updated_at, NEW.station_id, 'device.' || NEW.state,
		json_object('uci', NEW.uci, 'batch', NEW.batch_id, 'product', NEW.product_id));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER events_label_state AFTER UPDATE OF state ON print_jobs
WHEN NEW.state IN ('printed', 'uncertain', 'failed') AND OLD.state <> NEW.state AND (SELECT enabled FROM event_outbox WHERE id = 1)
BEGIN
	INSERT INTO events (at, station_id, kind, payload) VALUES (NEW.updated_at, NEW.station_id, 'label.' || NEW.state,
		json_object('job', NEW.id, 'label', NEW.kind, 'uci', NEW.uci, 'batch', NEW.batch_id,
			'reprint', json(CASE NEW.reprint WHEN 1 THEN 'true' ELSE 'false' END), 'attempts', NEW.attempts, 'error', NEW.last_error));
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER events_label_state;
DROP TRIGGER events_device_state;
DROP TRIGGER events_batch_synced;
DROP TRIGGER events_batch_closed;
DROP TRIGGER events_batch_opened;
DROP TABLE event_outbox;
DROP TABLE events;
