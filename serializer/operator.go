package serializer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Role is what an operator may do. Supervisors may do everything operators may, and
// also void UCIs.
type Role string

// Roles.
const (
	RoleOperator   Role = "operator"
	RoleSupervisor Role = "supervisor"
)

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.ToLower(strings.TrimSpace(s))); r {
	case RoleOperator, RoleSupervisor:
		return r, nil
	}
	return "", Errorf(EINVALID, "role %q: must be operator or supervisor", s)
}

// Allows reports whether an operator with role r may do what needs role need.
func (r Role) Allows(need Role) bool {
	return r == RoleSupervisor || r == need
}

// Operator is a person (or an integration such as an MES, through an API key) who
// may change the registry: open and close batches, reprint, void, verify.
type Operator struct {
	ID           int64     `json:"id"`
	Name         string    `json:"name"`
	Role         Role      `json:"role"`
	APIKey       bool      `json:"api_key"` // an API key is set
	Disabled     bool      `json:"disabled,omitempty"`
	FailedLogins int       `json:"failed_logins"`
	LockedUntil  time.Time `json:"locked_until,omitzero"`
	CreatedAt    time.Time `json:"created"`
}

// Session is an operator logged in at a browser. The token that names it lives only
// in the browser's cookie; the registry keeps its hash.
type Session struct {
	Operator  Operator
	CSRF      string // the synchronizer token every form of this session carries
	CreatedAt time.Time
	ExpiresAt time.Time // pushed forward while the session is used
	LastSeen  time.Time
}

// NewOperator is an operator to create, with the hashes of their secrets.
type NewOperator struct {
	Name         string
	Role         Role
	PasswordHash []byte
	APIKeyHash   string // "" = no API key
}

// OperatorRepository stores operators and their sessions.
type OperatorRepository interface {
	// CreateOperator adds an operator; a name already taken is ECONFLICT.
	CreateOperator(ctx context.Context, o NewOperator, actor string) (Operator, error)
	// Operators lists every operator by name.
	Operators(ctx context.Context) ([]Operator, error)
	// OperatorCount counts the operators.
	OperatorCount(ctx context.Context) (int, error)
	// OperatorCredentials returns an operator and their password hash; ENOTFOUND if none.
	OperatorCredentials(ctx context.Context, name string) (Operator, []byte, error)
	// SetPassword replaces an operator's password hash and ends their sessions.
	SetPassword(ctx context.Context, name string, hash []byte, actor string) error
	// SetAPIKey replaces an operator's API key hash.
	SetAPIKey(ctx context.Context, name, keyHash, actor string) error
	// LoginFailed counts a failed login. At max failures in a row the operator is
	// locked for lockFor, and that is audited.
	LoginFailed(ctx context.Context, id int64, max int, lockFor time.Duration, source string) (Operator, error)
	// LoginSucceeded clears the failure count and audits the login.
	LoginSucceeded(ctx context.Context, id int64, source string) error
	// OperatorByAPIKey returns the operator holding the key with this hash; ENOTFOUND if none.
	OperatorByAPIKey(ctx context.Context, keyHash string) (Operator, error)
	// CreateSession records a new session, named by the hash of its token.
	CreateSession(ctx context.Context, operatorID int64, tokenHash, csrf string, idle time.Duration) (Session, error)
	// Session returns the live session with this token hash and keeps it alive for
	// another idle period; an unknown or expired one is EUNAUTHENTICATED.
	Session(ctx context.Context, tokenHash string, idle time.Duration) (Session, error)
	// DeleteSession ends a session.
	DeleteSession(ctx context.Context, tokenHash string) error
}

// Login policy defaults.
const (
	DefaultMaxFailedLogins = 5                // failed logins in a row that lock an operator out
	DefaultLockFor         = 15 * time.Minute // how long a lock-out lasts
	DefaultSessionIdle     = 12 * time.Hour   // a shift: a session unused this long ends
	MinPasswordLen         = 8                // shortest password accepted
	maxPasswordLen         = 72               // bcrypt reads no further
	maxOperatorNameLen     = 64
)

// Accounts applies the login rules on top of an OperatorRepository: bcrypt password
// hashes, lock-out after repeated failures, session and API key tokens stored hashed.
type Accounts struct {
	repo OperatorRepository
	// Cost is the bcrypt cost of new password hashes.
	Cost int
	// MaxFailedLogins failed logins in a row lock an operator out for LockFor.
	MaxFailedLogins int
	LockFor         time.Duration
	// SessionIdle ends a session not used for this long.
	SessionIdle time.Duration
	// Now is the clock that lock-outs are checked against.
	Now func() time.Time

	dummyOnce sync.Once
	dummy     []byte
}

// NewAccounts returns Accounts over repo with the default policy.
func NewAccounts(repo OperatorRepository) *Accounts {
	return &Accounts{
		repo: repo, Cost: bcrypt.DefaultCost, MaxFailedLogins: DefaultMaxFailedLogins,
		LockFor: DefaultLockFor, SessionIdle: DefaultSessionIdle, Now: time.Now,
	}
}

// ValidateOperatorName checks an operator name: 1 to 64 letters, digits, '.', '_' or '-'.
func ValidateOperatorName(name string) error {
	if name == "" {
		return Errorf(EINVALID, "a name is required")
	}
	if len(name) > maxOperatorNameLen {
		return Errorf(EINVALID, "name %q is longer than %d characters", name, maxOperatorNameLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return Errorf(EINVALID, "name %q: use letters, digits, '.', '_' and '-' only", name)
		}
	}
	return nil
}

// ValidatePassword checks a new password's length.
func ValidatePassword(pw string) error {
	switch {
	case len(pw) < MinPasswordLen:
		return Errorf(EINVALID, "the password is too short: at least %d characters", MinPasswordLen)
	case len(pw) > maxPasswordLen:
		return Errorf(EINVALID, "the password is too long: at most %d bytes", maxPasswordLen)
	}
	return nil
}

// AddOperator creates an operator with a password and, when withKey is set, an API
// key, which is returned once and never stored in clear.
func (a *Accounts) AddOperator(ctx context.Context, name string, role Role, password string, withKey bool, actor string) (Operator, string, error) {
	if err := ValidateOperatorName(name); err != nil {
		return Operator{}, "", err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return Operator{}, "", err
	}
	if err := ValidatePassword(password); err != nil {
		return Operator{}, "", err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), a.Cost)
	if err != nil {
		return Operator{}, "", err
	}
	var key, keyHash string
	if withKey {
		key = NewAPIKey()
		keyHash = HashToken(key)
	}
	o, err := a.repo.CreateOperator(ctx, NewOperator{Name: name, Role: role, PasswordHash: hash, APIKeyHash: keyHash}, actor)
	return o, key, err
}

// SetPassword replaces an operator's password; their sessions end.
func (a *Accounts) SetPassword(ctx context.Context, name, password, actor string) error {
	if err := ValidatePassword(password); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), a.Cost)
	if err != nil {
		return err
	}
	return a.repo.SetPassword(ctx, name, hash, actor)
}

// NewOperatorAPIKey gives an operator a new API key (the old one stops working) and
// returns it once.
func (a *Accounts) NewOperatorAPIKey(ctx context.Context, name, actor string) (string, error) {
	key := NewAPIKey()
	return key, a.repo.SetAPIKey(ctx, name, HashToken(key), actor)
}

// Operators lists every operator by name.
func (a *Accounts) Operators(ctx context.Context) ([]Operator, error) { return a.repo.Operators(ctx) }

// FirstSupervisor creates the supervisor "admin" when there is no operator at all.
// password "" draws a random one. It returns the password used, or "" when operators
// already existed.
func (a *Accounts) FirstSupervisor(ctx context.Context, password string) (string, error) {
	n, err := a.repo.OperatorCount(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	if password == "" {
		password = NewPassword()
	}
	if _, _, err := a.AddOperator(ctx, "admin", RoleSupervisor, password, false, "serialbox"); err != nil {
		return "", err
	}
	return password, nil
}

// dummyHash returns the hash compared against when the name is unknown, so that a
// wrong name takes as long to refuse as a wrong password and names cannot be probed
// by timing. It is made at the first unknown name, at Cost like the operators'
// hashes, rather than at start, where it would delay every program using the package.
func (a *Accounts) dummyHash() []byte {
	a.dummyOnce.Do(func() {
		a.dummy, _ = bcrypt.GenerateFromPassword([]byte("no operator has this password"), a.Cost)
	})
	return a.dummy
}

// errLogin is the one answer to a wrong name or a wrong password.
func errLogin() error { return Errorf(EUNAUTHENTICATED, "wrong name or password") }

// Login checks an operator's name and password. source (the client address) goes to
// the audit trail. After MaxFailedLogins failures in a row the operator is locked out
// for LockFor, even with the right password.
func (a *Accounts) Login(ctx context.Context, name, password, source string) (Operator, error) {
	o, hash, err := a.repo.OperatorCredentials(ctx, strings.TrimSpace(name))
	if ErrorCode(err) == ENOTFOUND {
		_ = bcrypt.CompareHashAndPassword(a.dummyHash(), []byte(password))
		return Operator{}, errLogin()
	}
	if err != nil {
		return Operator{}, err
	}
	if o.Disabled {
		return Operator{}, Errorf(EUNAUTHENTICATED, "the account %q is disabled; ask a supervisor", o.Name)
	}
	if now := a.Now(); o.LockedUntil.After(now) {
		return Operator{}, lockedError(o, now)
	}
	if err := bcrypt.CompareHashAndPassword(hash, []byte(password)); err != nil {
		if !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return Operator{}, err
		}
		o, err := a.repo.LoginFailed(ctx, o.ID, a.MaxFailedLogins, a.LockFor, source)
		if err != nil {
			return Operator{}, err
		}
		if now := a.Now(); o.LockedUntil.After(now) {
			return Operator{}, lockedError(o, now)
		}
		return Operator{}, errLogin()
	}
	if err := a.repo.LoginSucceeded(ctx, o.ID, source); err != nil {
		return Operator{}, err
	}
	o.FailedLogins, o.LockedUntil = 0, time.Time{}
	return o, nil
}

func lockedError(o Operator, now time.Time) error {
	wait := o.LockedUntil.Sub(now).Round(time.Minute)
	if wait < time.Minute {
		wait = time.Minute
	}
	return Errorf(EUNAUTHENTICATED, "too many wrong passwords: %q is locked for %v more; wait, or ask a supervisor to set a new password", o.Name, wait)
}

// StartSession opens a session for a logged-in operator and returns the token for
// the browser's cookie.
func (a *Accounts) StartSession(ctx context.Context, o Operator) (string, Session, error) {
	token := randomToken()
	s, err := a.repo.CreateSession(ctx, o.ID, HashToken(token), randomToken(), a.SessionIdle)
	return token, s, err
}

// Session returns the live session a cookie's token names.
func (a *Accounts) Session(ctx context.Context, token string) (Session, error) {
	if token == "" {
		return Session{}, Errorf(EUNAUTHENTICATED, "not logged in")
	}
	return a.repo.Session(ctx, HashToken(token), a.SessionIdle)
}

// EndSession logs a session out; its cookie stops working at once.
func (a *Accounts) EndSession(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	return a.repo.DeleteSession(ctx, HashToken(token))
}

// ByAPIKey returns the operator an integration's API key belongs to.
func (a *Accounts) ByAPIKey(ctx context.Context, key string) (Operator, error) {
	if key == "" {
		return Operator{}, Errorf(EUNAUTHENTICATED, "an API key is required (Authorization: Bearer)")
	}
	o, err := a.repo.OperatorByAPIKey(ctx, HashToken(key))
	if ErrorCode(err) == ENOTFOUND {
		return Operator{}, Errorf(EUNAUTHENTICATED, "unknown API key")
	}
	if err == nil && o.Disabled {
		return Operator{}, Errorf(EUNAUTHENTICATED, "the account %q is disabled", o.Name)
	}
	return o, err
}

// HashToken is how session tokens and API keys are stored: SHA-256, hex. They are
// long random strings, so a fast hash is enough; a stolen database holds no usable key.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewAPIKey draws a new API key: "sbk_" and 256 random bits.
func NewAPIKey() string { return "sbk_" + randomToken() }

// NewPassword draws a strong password: 20 symbols of lower-case base32, 100 bits,
// grouped by 5 so that it can be typed from a note.
func NewPassword() string {
	b := make([]byte, 13)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	s := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:20]
	return s[0:5] + "-" + s[5:10] + "-" + s[10:15] + "-" + s[15:20]
}
