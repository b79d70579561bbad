package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"serialbox/serializer"
)

var _ serializer.OperatorRepository = (*DB)(nil)

const operatorCols = `id, name, role, api_key_hash IS NOT NULL, disabled, failed_logins, locked_until, created_at`

func operatorSubject(name string) string { return "operator:" + name }

func scanOperator(s scanner, extra ...any) (serializer.Operator, error) {
	var (
		o       serializer.Operator
		locked  sql.NullInt64
		created int64
	)
	dest := append([]any{&o.ID, &o.Name, &o.Role, &o.APIKey, &o.Disabled, &o.FailedLogins, &locked, &created}, extra...)
	if err := s.Scan(dest...); err != nil {
		return o, err
	}
	if locked.Valid {
		o.LockedUntil = fromMS(locked.Int64)
	}
	o.CreatedAt = fromMS(created)
	return o, nil
}

func operatorByID(ctx context.Context, q querier, id int64) (serializer.Operator, error) {
	o, err := scanOperator(q.QueryRowContext(ctx, `SELECT `+operatorCols+` FROM operators WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return o, serializer.Errorf(serializer.ENOTFOUND, "no operator %d", id)
	}
	return o, err
}

func operatorByName(ctx context.Context, q querier, name string) (serializer.Operator, error) {
	o, err := scanOperator(q.QueryRowContext(ctx, `SELECT `+operatorCols+` FROM operators WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return o, serializer.Errorf(serializer.ENOTFOUND, "no operator named %q", name)
	}
	return o, err
}

// CreateOperator adds an operator; a name already taken (in any letter case) is ECONFLICT.
func (db *DB) CreateOperator(ctx context.Context, n serializer.NewOperator, actor string) (serializer.Operator, error) {
	var out serializer.Operator
	err := db.writeTx(ctx, "add operator", func(tx querier, now time.Time) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO operators (name, role, password_hash, api_key_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
			n.Name, string(n.Role), string(n.PasswordHash), nullString(n.APIKeyHash), ms(now))
		if isUniqueViolation(err) {
			return serializer.Errorf(serializer.ECONFLICT, "an operator named %q already exists", n.Name)
		}
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		if out, err = operatorByID(ctx, tx, id); err != nil {
			return err
		}
		return addAudit(ctx, tx, now, serializer.AuditEntry{Actor: actor, Action: "operator.add", Subject: operatorSubject(n.Name),
			Detail: fmt.Sprintf("role=%s api_key=%t", n.Role, n.APIKeyHash != "")})
	})
	return out, err
}

// Operators lists every operator by name.
func (db *DB) Operators(ctx context.Context) ([]serializer.Operator, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+operatorCols+` FROM operators ORDER BY name`)
	if err != nil {
		return nil, db.fault("list operators", err)
	}
	defer rows.Close()
	out := []serializer.Operator{}
	for rows.Next() {
		o, err := scanOperator(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// OperatorCount counts the operators.
func (db *DB) OperatorCount(ctx context.Context) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM operators`).Scan(&n)
	return n, db.fault("count operators", err)
}

// OperatorCredentials returns an operator with their password hash.
func (db *DB) OperatorCredentials(ctx context.Context, name string) (serializer.Operator, []byte, error) {
	var hash string
	o, err := scanOperator(db.read.QueryRowContext(ctx, `SELECT `+operatorCols+`, password_hash FROM operators WHERE name = ?`, name), &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return o, nil, serializer.Errorf(serializer.ENOTFOUND, "no operator named %q", name)
	}
	if err != nil {
		return o, nil, db.fault("read operator", err)
	}
	return o, []byte(hash), nil
}

// SetPassword replaces an operator's password hash, lifts a lock-out and ends the
// operator's sessions.
func (db *DB) SetPassword(ctx context.Context, name string, hash []byte, actor string) error {
	return db.writeTx(ctx, "set password", func(tx querier, now time.Time) error {
		o, err := operatorByName(ctx, tx, name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE operators SET password_hash = ?, failed_logins = 0, locked_until = NULL WHERE id = ?`, string(hash), o.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE operator_id = ?`, o.ID); err != nil {
			return err
		}
		return addAudit(ctx, tx, now, serializer.AuditEntry{Actor: actor, Action: "operator.password", Subject: operatorSubject(o.Name)})
	})
}

// SetAPIKey replaces an operator's API key hash.
func (db *DB) SetAPIKey(ctx context.Context, name, keyHash, actor string) error {
	return db.writeTx(ctx, "set API key", func(tx querier, now time.Time) error {
		o, err := operatorByName(ctx, tx, name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE operators SET api_key_hash = ? WHERE id = ?`, nullString(keyHash), o.ID); err != nil {
			return err
		}
		return addAudit(ctx, tx, now, serializer.AuditEntry{Actor: actor, Action: "operator.api_key", Subject: operatorSubject(o.Name)})
	})
}

// LoginFailed counts a failed login; the max-th failure in a row locks the operator
// out for lockFor, which is audited.
func (db *DB) LoginFailed(ctx context.Context, id int64, max int, lockFor time.Duration, source string) (serializer.Operator, error) {
	var out serializer.Operator
	err := db.writeTx(ctx, "record failed login", func(tx querier, now time.Time) error {
		o, err := operatorByID(ctx, tx, id)
		if err != nil {
			return err
		}
		failed := o.FailedLogins + 1
		var locked any
		if failed >= max {
			until := now.Add(lockFor)
			locked = ms(until)
			failed = 0
			if err := addAudit(ctx, tx, now, serializer.AuditEntry{Actor: "serialbox", Action: "operator.locked", Subject: operatorSubject(o.Name),
				Reason: fmt.Sprintf("%d wrong passwords in a row", max), Detail: fmt.Sprintf("until=%s source=%s", until.Format(time.RFC3339), source)}); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE operators SET failed_logins = ?, locked_until = COALESCE(?, locked_until) WHERE id = ?`, failed, locked, id); err != nil {
			return err
		}
		out, err = operatorByID(ctx, tx, id)
		return err
	})
	return out, err
}

// LoginSucceeded clears the failure count and audits the login.
func (db *DB) LoginSucceeded(ctx context.Context, id int64, source string) error {
	return db.writeTx(ctx, "record login", func(tx querier, now time.Time) error {
		o, err := operatorByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE operators SET failed_logins = 0, locked_until = NULL WHERE id = ?`, id); err != nil {
			return err
		}
		return addAudit(ctx, tx, now, serializer.AuditEntry{Actor: o.Name, Action: "operator.login", Subject: operatorSubject(o.Name), Detail: "source=" + source})
	})
}

// OperatorByAPIKey returns the operator holding the API key with this hash.
func (db *DB) OperatorByAPIKey(ctx context.Context, keyHash string) (serializer.Operator, error) {
	o, err := scanOperator(db.read.QueryRowContext(ctx, `SELECT `+operatorCols+` FROM operators WHERE api_key_hash = ?`, keyHash))
	if errors.Is(err, sql.ErrNoRows) {
		return o, serializer.Errorf(serializer.ENOTFOUND, "no operator has this API key")
	}
	return o, db.fault("read operator", err)
}

// CreateSession records a new session and clears out sessions that expired.
func (db *DB) CreateSession(ctx context.Context, operatorID int64, tokenHash, csrf string, idle time.Duration) (serializer.Session, error) {
	var out serializer.Session
	err := db.writeTx(ctx, "start session", func(tx querier, now time.Time) error {
		o, err := operatorByID(ctx, tx, operatorID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, ms(now)); err != nil {
			return err
		}
		exp := now.Add(idle)
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, operator_id, csrf, created_at, expires_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)`,
			tokenHash, operatorID, csrf, ms(now), ms(exp), ms(now)); err != nil {
			return err
		}
		out = serializer.Session{Operator: o, CSRF: csrf, CreatedAt: now, ExpiresAt: exp, LastSeen: now}
		return nil
	})
	return out, err
}

// sessionTouchEvery bounds how often using a session writes its last_seen: reads of
// the pages then cost no write each.
const sessionTouchEvery = time.Minute

const qSession = `SELECT o.id, o.name, o.role, o.api_key_hash IS NOT NULL, o.disabled, o.failed_logins, o.locked_until, o.created_at,
	s.csrf, s.created_at, s.expires_at, s.last_seen
	FROM sessions s JOIN operators o ON o.id = s.operator_id WHERE s.token_hash = ?`

// Session returns the live session with this token hash and keeps it alive for
// another idle period.
func (db *DB) Session(ctx context.Context, tokenHash string, idle time.Duration) (serializer.Session, error) {
	var (
		s                      serializer.Session
		created, expires, seen int64
	)
	o, err := scanOperator(db.read.QueryRowContext(ctx, qSession, tokenHash), &s.CSRF, &created, &expires, &seen)
	ended := serializer.Errorf(serializer.EUNAUTHENTICATED, "your session has ended; log in again")
	if errors.Is(err, sql.ErrNoRows) {
		return s, ended
	}
	if err != nil {
		return s, db.fault("read session", err)
	}
	now := db.Now().UTC()
	if ms(now) >= expires || o.Disabled {
		return s, ended
	}
	s.Operator, s.CreatedAt, s.ExpiresAt, s.LastSeen = o, fromMS(created), fromMS(expires), fromMS(seen)
	if now.Sub(s.LastSeen) < sessionTouchEvery {
		return s, nil
	}
	s.LastSeen, s.ExpiresAt = now, now.Add(idle)
	err = db.writeTx(ctx, "keep session alive", func(tx querier, _ time.Time) error {
		_, err := tx.ExecContext(ctx, `UPDATE sessions SET last_seen = ?, expires_at = ? WHERE token_hash = ?`, ms(now), ms(s.ExpiresAt), tokenHash)
		return err
	})
	return s, err
}

// DeleteSession ends a session.
func (db *DB) DeleteSession(ctx context.Context, tokenHash string) error {
	return db.writeTx(ctx, "end session", func(tx querier, _ time.Time) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, tokenHash)
		return err
	})
}
