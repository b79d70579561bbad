package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"serialbox/serializer"
)

var _ serializer.Repository = (*DB)(nil)

// maxUCIDraws bounds the redraws after a UCI collision. With 80 random bits a
// single collision is already astronomically unlikely; several in a row mean the
// random source is broken, and issuing must stop rather than loop.
const maxUCIDraws = 8

// querier is what the small helpers need: a transaction or a pool.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// SyncCatalog records the configured products and stations, updating names of
// known ones. Records no longer configured stay, as history refers to them.
func (db *DB) SyncCatalog(ctx context.Context, products []serializer.Product, stations []serializer.Station) error {
	return db.writeTx(ctx, "record products and stations", func(tx querier, now time.Time) error {
		for _, p := range products {
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO products (id, name, model, updated_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (id) DO UPDATE SET name = excluded.name, model = excluded.model, updated_at = excluded.updated_at
				WHERE name <> excluded.name OR model <> excluded.model`,
				p.ID, p.Name, p.Model, ms(now)); err != nil {
				return err
			}
		}
		for _, s := range stations {
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO stations (id, name, product_id, updated_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (id) DO UPDATE SET name = excluded.name, product_id = excluded.product_id, updated_at = excluded.updated_at
				WHERE name <> excluded.name OR product_id IS NOT excluded.product_id`,
				s.ID, s.Name, nullString(s.ProductID), ms(now)); err != nil {
				return err
			}
		}
		return nil
	})
}

func issueDevice(ctx context.Context, tx querier, now time.Time, p serializer.IssueParams) (serializer.Issued, error) {
	identities := p.OtherIdentities
	if p.Identity != "" {
		identities = append([]string{p.Identity}, p.OtherIdentities...)
		d, found, err := deviceByIdentities(ctx, tx, p.ProductID, identities)
		if err != nil {
			return serializer.Issued{}, err
		}
		if found {
			if d.State == serializer.DeviceVoided {
				return serializer.Issued{}, serializer.Errorf(serializer.EVOIDED,
					"the device with identity %q had claim ID %s, which was voided; a supervisor must clear it before this device gets a new one", p.Identity, d.UCI)
			}
			b, err := batchByID(ctx, tx, d.BatchID)
			return serializer.Issued{Device: d, Batch: b, Existing: true}, err
		}
	}
	b, closed, err := batchForIssue(ctx, tx, now, p)
	if err != nil {
		return serializer.Issued{}, err
	}
	d := serializer.Device{
		BatchID:    b.ID,
		ProductID:  p.ProductID,
		StationID:  p.Station.ID,
		Identity:   p.Identity,
		Attributes: p.Attributes,
		State:      serializer.DeviceIssued,
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	for draw := 1; ; draw++ {
		if d.UCI, err = p.NewUCI(); err != nil {
			return serializer.Issued{}, err
		}
		res, err := tx.ExecContext(ctx, qInsertDevice,
			d.UCI.String(), b.ID, d.ProductID, d.StationID, nullString(d.Identity), nullString(strings.Join(p.OtherIdentities, "\n")), nullJSON(d.Attributes), ms(now), ms(now))
		if err != nil {
			return serializer.Issued{}, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return serializer.Issued{}, err
		} else if n == 1 {
			break
		}
		if draw == maxUCIDraws {
			return serializer.Issued{}, fmt.Errorf("%d UCIs drawn in a row were already issued: the random source is broken", draw)
		}
	}
	anonymous := 0
	if len(identities) == 0 {
		anonymous = 1
	}
	if _, err := tx.ExecContext(ctx, qCountIssued, anonymous, b.ID); err != nil {
		return serializer.Issued{}, err
	}
	for _, id := range identities {
		if _, err := tx.ExecContext(ctx, qInsertIdentity, p.ProductID, id, d.UCI.String()); err != nil {
			return serializer.Issued{}, err
		}
	}
	if _, err := tx.ExecContext(ctx, qInsertDeviceJob,
		d.UCI.String(), b.ID, d.StationID, ms(now), ms(now)); err != nil {
		return serializer.Issued{}, err
	}
	b.Counts.Issued++
	b.Counts.Anonymous += anonymous
	return serializer.Issued{Device: d, Batch: b, ClosedBatchID: closed}, nil
}

// deviceByIdentities finds the device that the identities of one request name. Each
// identity is either unknown or names the same device, and that device must not be
// known by another value of the same kind (another hwid, say): a request that names
// two devices is refused rather than answered with one of them. Identities the
// device was not known by yet are recorded for it.
func deviceByIdentities(ctx context.Context, tx querier, productID string, identities []string) (serializer.Device, bool, error) {
	var (
		uci, matched string
		unknown      []string
		byDevice     bool // an identity from the device itself matched, not only a key
	)
	for _, id := range identities {
		var got string
		err := tx.QueryRowContext(ctx, qIdentityUCI, productID, id).Scan(&got)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			unknown = append(unknown, id)
			continue
		case err != nil:
			return serializer.Device{}, false, err
		}
		if uci != "" && got != uci {
			return serializer.Device{}, false, serializer.Errorf(serializer.ECONFLICT,
				"identity %q belongs to claim ID %s and identity %q to claim ID %s: one request names two devices", matched, groupedUCI(uci), id, groupedUCI(got))
		}
		uci, matched = got, id
		byDevice = byDevice || identityKind(id) != "key"
	}
	if uci == "" {
		return serializer.Device{}, false, nil
	}
	d, err := scanDevice(tx.QueryRowContext(ctx, qDeviceByUCI, uci))
	if err != nil {
		return d, false, fmt.Errorf("device %s of identity %q: %w", uci, matched, err)
	}
	if len(unknown) == 0 {
		return d, true, nil
	}
	var others sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT other_identities FROM devices WHERE uci = ?`, uci).Scan(&others); err != nil {
		return d, false, err
	}
	known := []string{d.Identity}
	if others.Valid {
		known = append(known, strings.Split(others.String, "\n")...)
	}
	for _, id := range unknown {
		kind := identityKind(id)
		for _, k := range known {
			if identityKind(k) == kind {
				return d, false, serializer.Errorf(serializer.ECONFLICT,
					"identity %q belongs to claim ID %s, whose %s is %q, but this request says %q: two devices share %q", matched, d.UCI.Grouped(), kind, identityValue(k), identityValue(id), matched)
			}
		}
		// A key can be shared by mistake (one URL configured on every unit): it may
		// not attach the device's own identity to a device issued for another one.
		if !byDevice && kind != "key" {
			return d, false, serializer.Errorf(serializer.ECONFLICT,
				"identity %q belongs to claim ID %s, which was not issued for %s %q: is the key shared by several units?", matched, d.UCI.Grouped(), kind, identityValue(id))
		}
	}
	for _, id := range unknown {
		if _, err := tx.ExecContext(ctx, qInsertIdentity, productID, id, uci); err != nil {
			return d, false, err
		}
	}
	learnt := strings.Join(append(known[1:], unknown...), "\n")
	if _, err := tx.ExecContext(ctx, `UPDATE devices SET other_identities = ? WHERE uci = ?`, learnt, uci); err != nil {
		return d, false, err
	}
	return d, true, nil
}

// identityKind is the part of an identity before its colon: key, hwid, serial or mac.
func identityKind(id string) string {
	kind, _, _ := strings.Cut(id, ":")
	return kind
}

// identityValue is the part of an identity after its kind.
func identityValue(id string) string {
	_, v, _ := strings.Cut(id, ":")
	return v
}

// groupedUCI writes a stored UCI in its grouped form for messages.
func groupedUCI(s string) string {
	if u, err := serializer.Parse(s); err == nil {
		return u.Grouped()
	}
	return s
}

// batchForIssue returns the station's open batch that a new device goes into,
// opening (and, when full, rolling over) batches for stations that run automatically.
// closed is the id of a full batch it closed to do so.
func batchForIssue(ctx context.Context, tx querier, now time.Time, p serializer.IssueParams) (b serializer.Batch, closed int64, err error) {
	st := p.Station
	b, err = openBatch(ctx, tx, st.ID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if !st.AutoBatch {
			return b, 0, serializer.Errorf(serializer.ENOBATCH, "station %q has no open batch: open one on the operator page or with POST /api/v1/batches", st.ID)
		}
		if p.ProductID != st.ProductID {
			return b, 0, serializer.Errorf(serializer.EMISMATCH, "station %q opens batches of product %q by itself, but the request is for product %q: open a batch for it first", st.ID, st.ProductID, p.ProductID)
		}
		b, err = insertBatch(ctx, tx, now, serializer.Batch{ProductID: p.ProductID, StationID: st.ID, Planned: st.BatchSize}, "station:"+st.ID, "opened automatically for the first device")
		return b, 0, err
	case err != nil:
		return b, 0, err
	}
	if b.ProductID != p.ProductID {
		return b, 0, serializer.Errorf(serializer.EMISMATCH, "station %q is running batch %d of product %q, but the request is for product %q", st.ID, b.ID, b.ProductID, p.ProductID)
	}
	if !b.Full() {
		return b, 0, nil
	}
	if !st.AutoBatch {
		return b, 0, serializer.Errorf(serializer.EBATCHFULL, "batch %d at station %q is full (%d of %d planned): close it and open the next one", b.ID, st.ID, b.Counts.Issued, b.Planned)
	}
	if _, err := closeBatch(ctx, tx, now, b.ID, "station:"+st.ID, "planned size reached", p.AutoSync); err != nil {
		return b, 0, err
	}
	full := b.ID
	b, err = insertBatch(ctx, tx, now, serializer.Batch{ProductID: p.ProductID, StationID: st.ID, Planned: st.BatchSize}, "station:"+st.ID, fmt.Sprintf("opened automatically after batch %d was full", full))
	return b, full, err
}

// Device returns the device with the given UCI.
func (db *DB) Device(ctx context.Context, uci serializer.UCI) (serializer.Device, error) {
	d, err := scanDevice(db.read.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE uci = ?`, uci.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return d, serializer.Errorf(serializer.ENOTFOUND, "no device has claim ID %s", uci.Grouped())
	}
	return d, db.fault("read device", err)
}

// DeviceCount returns how many devices the registry holds.
func (db *DB) DeviceCount(ctx context.Context) (int64, error) {
	var n int64
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices`).Scan(&n)
	return n, err
}

// PrintJobs returns the device's label jobs, oldest first.
func (db *DB) PrintJobs(ctx context.Context, uci serializer.UCI) ([]serializer.PrintJob, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+jobCols+` FROM print_jobs WHERE uci = ? ORDER BY id`, uci.String())
	if err != nil {
		return nil, db.fault("read label jobs", err)
	}
	defer rows.Close()
	var jobs []serializer.PrintJob
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

// The statements of the issuance path, prepared once at Open (see prepared.go).
var qDeviceByUCI = `SELECT ` + deviceCols + ` FROM devices WHERE uci = ?`

const (
	qInsertDevice = `INSERT INTO devices (uci, batch_id, product_id, station_id, identity, other_identities, attributes, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 'issued', ?, ?) ON CONFLICT (uci) DO NOTHING`
	qInsertDeviceJob = `INSERT INTO print_jobs (kind, uci, batch_id, station_id, created_at, updated_at) VALUES ('device', ?, ?, ?, ?, ?)`
	qCountIssued     = `UPDATE batches SET issued = issued + 1, anonymous = anonymous + ? WHERE id = ?`
	qIdentityUCI     = `SELECT uci FROM device_identities WHERE product_id = ? AND identity = ?`
	qInsertIdentity  = `INSERT INTO device_identities (product_id, identity, uci) VALUES (?, ?, ?)`
)

var deviceCols = deviceColumns("")

// deviceColumns lists the columns scanDevice reads, each prefixed with alias ("d.").
func deviceColumns(alias string) string {
	return fmt.Sprintf(`%[1]suci, %[1]sbatch_id, %[1]sproduct_id, %[1]sstation_id, COALESCE(%[1]sidentity, ''), COALESCE(%[1]sattributes, ''), %[1]sstate, %[1]screated_at, %[1]supdated_at`, alias)
}

type scanner interface{ Scan(dest ...any) error }

func scanDevice(s scanner) (serializer.Device, error) {
	var (
		d                serializer.Device
		uci, attrs       string
		created, updated int64
	)
	if err := s.Scan(&uci, &d.BatchID, &d.ProductID, &d.StationID, &d.Identity, &attrs, &d.State, &created, &updated); err != nil {
		return d, err
	}
	var err error
	if d.UCI, err = serializer.Parse(uci); err != nil {
		return d, fmt.Errorf("stored UCI %q: %w", uci, err)
	}
	if attrs != "" {
		d.Attributes = []byte(attrs)
	}
	d.CreatedAt, d.UpdatedAt = fromMS(created), fromMS(updated)
	return d, nil
}

const jobCols = `id, kind, COALESCE(uci, ''), batch_id, station_id, state, attempts, last_error, reprint, reason, created_at, updated_at`

func scanJob(s scanner) (serializer.PrintJob, error) {
	var (
		j                serializer.PrintJob
		uci              string
		created, updated int64
	)
	if err := s.Scan(&j.ID, &j.Kind, &uci, &j.BatchID, &j.StationID, &j.State, &j.Attempts, &j.LastError, &j.Reprint, &j.Reason, &created, &updated); err != nil {
		return j, err
	}
	if uci != "" {
		u, err := serializer.Parse(uci)
		if err != nil {
			return j, fmt.Errorf("stored UCI %q: %w", uci, err)
		}
		j.UCI = &u
	}
	j.CreatedAt, j.UpdatedAt = fromMS(created), fromMS(updated)
	return j, nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullJSON(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

func batchSubject(id int64) string { return "batch:" + strconv.FormatInt(id, 10) }
