-- Devices are inserted in two places only, both in state 'issued': issuance, which adds
-- one to the batch's issued counter, and bulk pre-generation, which adds its count once
-- per transaction. A per-row trigger cost more than the insert itself in bulk runs.
-- The trigger that follows state changes stays.

-- A device's label jobs are looked up by UCI on every lookup, reprint and void; the
-- partial unique index on print_jobs (uci) cannot serve "uci = ?" alone.

-- +goose Up
DROP TRIGGER devices_count_insert;
CREATE INDEX print_jobs_uci ON print_jobs (uci, id);

-- +goose Down
DROP INDEX print_jobs_uci;
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
