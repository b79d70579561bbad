-- A request to register a batch with a target is one row, written in the transaction
-- that asks for it: for a full automatic batch that is the transaction issuing the
-- device that closed it, which must stay short. The batch's devices are put into the
-- outbox afterwards, in short transactions of their own, up to the newest device the
-- batch had when it was requested. The progress is kept with the request, so that a
-- restart carries on where it stopped and no device is queued twice.

-- +goose Up
-- expand_upto: the batch's newest device id when requested; NULL once every device up
-- to it is in the outbox (and for the requests older than this migration).
ALTER TABLE sync_batches ADD COLUMN expand_upto INTEGER;
-- expanded_to: the newest device id already put into the outbox for the request.
ALTER TABLE sync_batches ADD COLUMN expanded_to INTEGER NOT NULL DEFAULT 0;
-- queued: devices the request put into the outbox so far.
ALTER TABLE sync_batches ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;
CREATE INDEX sync_batches_expanding ON sync_batches (target, batch_id) WHERE expand_upto IS NOT NULL;

-- +goose Down
DROP INDEX sync_batches_expanding;
ALTER TABLE sync_batches DROP COLUMN queued;
ALTER TABLE sync_batches DROP COLUMN expanded_to;
ALTER TABLE sync_batches DROP COLUMN expand_upto;
