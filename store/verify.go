package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"serialbox/serializer"
)

// Verify marks a device verified after its label was scanned on the finished unit.
// The device must be issued and not voided, belong to the open batch named by batchID
// (else the open batch of stationID, else of the device's own station), and not have
// been verified before. Each refusal has its own code, so the page can say exactly
// what is wrong with the unit in the operator's hand.
func (db *DB) Verify(ctx context.Context, uci serializer.UCI, batchID int64, stationID, actor string) (serializer.Device, error) {
	var out serializer.Device
	err := db.writeTx(ctx, "verify label", func(tx querier, now time.Time) error {
		d, err := deviceByUCI(ctx, tx, uci)
		if serializer.ErrorCode(err) == serializer.ENOTFOUND {
			return serializer.Errorf(serializer.ENOTFOUND, "unknown claim ID %s: this appliance never issued it", uci.Grouped())
		}
		if err != nil {
			return err
		}
		b, err := verifyBatch(ctx, tx, d, batchID, stationID)
		if err != nil {
			return err
		}
		switch {
		case d.State == serializer.DeviceVoided:
			return serializer.Errorf(serializer.EVOIDED, "claim ID %s is VOIDED: take the unit off the line", uci.Grouped())
		case d.BatchID != b.ID:
			return serializer.Errorf(serializer.EWRONGBATCH, "claim ID %s belongs to batch %d (station %s), not to batch %d", uci.Grouped(), d.BatchID, d.StationID, b.ID)
		case d.State == serializer.DeviceVerified:
			return serializer.Errorf(serializer.EVERIFIED, "claim ID %s was already verified at %s: scanned twice, or two units carry the same label", uci.Grouped(), d.UpdatedAt.Local().Format("15:04:05"))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET state = 'verified', updated_at = ? WHERE uci = ?`, ms(now), uci.String()); err != nil {
			return err
		}
		was := d.State
		d.State, d.UpdatedAt = serializer.DeviceVerified, now
		out = d
		return addAudit(ctx, tx, now, serializer.AuditEntry{Actor: actor, Action: "device.verify", Subject: deviceSubject(uci),
			Detail: fmt.Sprintf("batch=%d was=%s", b.ID, was)})
	})
	return out, err
}

// verifyBatch finds the open batch a scanned device must belong to.
func verifyBatch(ctx context.Context, tx querier, d serializer.Device, batchID int64, stationID string) (serializer.Batch, error) {
	if batchID > 0 {
		b, err := batchByID(ctx, tx, batchID)
		if err != nil {
			return b, err
		}
		if b.State != serializer.BatchOpen {
			return b, serializer.Errorf(serializer.ECONFLICT, "batch %d is closed: labels are verified while their batch runs", batchID)
		}
		return b, nil
	}
	if stationID == "" {
		stationID = d.StationID
	}
	b, err := openBatch(ctx, tx, stationID)
	if errors.Is(err, sql.ErrNoRows) {
		return b, serializer.Errorf(serializer.ENOBATCH, "station %s has no open batch to verify against", stationID)
	}
	return b, err
}
