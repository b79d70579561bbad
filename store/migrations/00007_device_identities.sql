-- Every identity a jig named for a device (key, hwid, serial, mac), not only the first:
-- a later request that names the device by another of them finds it, and a request
-- whose identities belong to different devices is refused instead of answered with one
-- of them. devices.identity keeps the first one, as shown to people, and
-- devices.other_identities the rest, one a line, for the rare check of a request
-- that names a known device by a new identity. The unique index on devices.identity
-- gives way to the table's key: one index to keep up per issued device, as before.

-- Devices issued without any identity are counted per batch, so that UCIs minted for
-- jigs that cannot be told apart (an agent asking again at every boot) are visible.
-- The backfill counts devices without identity that carry a device object: every
-- Ioto agent request does, pre-generated devices never do.

-- +goose Up
CREATE TABLE device_identities (
	product_id TEXT NOT NULL,
	identity   TEXT NOT NULL CHECK (identity <> ''),
	uci        TEXT NOT NULL REFERENCES devices (uci),
	PRIMARY KEY (product_id, identity)
) WITHOUT ROWID;

INSERT INTO device_identities (product_id, identity, uci)
	SELECT product_id, identity, uci FROM devices WHERE identity IS NOT NULL;
DROP INDEX devices_product_identity;
ALTER TABLE devices ADD COLUMN other_identities TEXT;

ALTER TABLE batches ADD COLUMN anonymous INTEGER NOT NULL DEFAULT 0;
UPDATE batches SET anonymous = (
	SELECT COUNT(*) FROM devices
	WHERE devices.batch_id = batches.id AND devices.identity IS NULL AND devices.attributes IS NOT NULL);

-- +goose Down
ALTER TABLE batches DROP COLUMN anonymous;
ALTER TABLE devices DROP COLUMN other_identities;
CREATE UNIQUE INDEX devices_product_identity ON devices (product_id, identity) WHERE identity IS NOT NULL;
DROP TABLE device_identities;
