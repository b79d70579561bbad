package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"serialbox/serializer"
	"serialbox/store"
)

// clock is a settable clock shared by the store and the accounts.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newAccounts(t *testing.T) (*store.DB, *serializer.Accounts, *clock) {
	t.Helper()
	db := MustOpenDB(t)
	c := &clock{now: time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)}
	db.Now = c.Now
	a := serializer.NewAccounts(db)
	a.Cost, a.Now = bcrypt.MinCost, c.Now
	return db, a, c
}

func TestLoginRules(t *testing.T) {
	ctx := context.Background()
	db, a, clk := newAccounts(t)
	if _, _, err := a.AddOperator(ctx, "anna", serializer.RoleOperator, "correct horse", false, "test"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.AddOperator(ctx, "ANNA", serializer.RoleOperator, "another one", false, "test"); serializer.ErrorCode(err) != serializer.ECONFLICT {
		t.Fatalf("same name in other case: %v", err)
	}
	for _, tc := range []struct {
		name, password string
		code           string
	}{
		{"anna", "correct horse", ""},
		{" anna ", "correct horse", ""},
		{"anna", "wrong", serializer.EUNAUTHENTICATED},
		{"nobody", "correct horse", serializer.EUNAUTHENTICATED},
		{"anna", "", serializer.EUNAUTHENTICATED},
	} {
		_, err := a.Login(ctx, tc.name, tc.password, "192.168.1.9")
		if serializer.ErrorCode(err) != tc.code {
			t.Errorf("login %q/%q = %v, want code %q", tc.name, tc.password, err, tc.code)
		}
	}
	// A success clears the count: four more wrong ones do not lock.
	if _, err := a.Login(ctx, "anna", "correct horse", "x"); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		a.Login(ctx, "anna", "wrong", "x")
	}
	if _, err := a.Login(ctx, "anna", "correct horse", "x"); err != nil {
		t.Fatalf("locked after 4 failures: %v", err)
	}
	// Five in a row lock, even against the right password, for 15 minutes.
	for i := range 5 {
		_, err := a.Login(ctx, "anna", "wrong", "10.0.0.7")
		if serializer.ErrorCode(err) != serializer.EUNAUTHENTICATED {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if _, err := a.Login(ctx, "anna", "correct horse", "x"); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("right password while locked: %v", err)
	}
	clk.now = clk.now.Add(14 * time.Minute)
	if _, err := a.Login(ctx, "anna", "correct horse", "x"); err == nil {
		t.Fatal("lock lifted after 14 minutes")
	}
	clk.now = clk.now.Add(2 * time.Minute)
	if _, err := a.Login(ctx, "anna", "correct horse", "x"); err != nil {
		t.Fatalf("still locked after 16 minutes: %v", err)
	}
	audit, _ := db.Audit(ctx, "operator:anna", 0)
	var locked, logins int
	for _, e := range audit {
		switch e.Action {
		case "operator.locked":
			locked++
			if !strings.Contains(e.Detail, "source=10.0.0.7") {
				t.Errorf("lock-out audit = %+v", e)
			}
		case "operator.login":
			logins++
		}
	}
	if locked != 1 || logins != 5 {
		t.Fatalf("audit: %d lock-outs, %d logins: %+v", locked, logins, audit)
	}
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	_, a, clk := newAccounts(t)
	o, _, err := a.AddOperator(ctx, "ben", serializer.RoleSupervisor, "password-1", false, "test")
	if err != nil {
		t.Fatal(err)
	}
	token, s, err := a.StartSession(ctx, o)
	if err != nil || token == "" || s.CSRF == "" || s.CSRF == token {
		t.Fatalf("session %+v, %v", s, err)
	}
	got, err := a.Session(ctx, token)
	if err != nil || got.Operator.Name != "ben" || got.Operator.Role != serializer.RoleSupervisor || got.CSRF != s.CSRF {
		t.Fatalf("session = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "nope", token + "x"} {
		if _, err := a.Session(ctx, bad); serializer.ErrorCode(err) != serializer.EUNAUTHENTICATED {
			t.Fatalf("token %q: %v", bad, err)
		}
	}
	// Use keeps it alive; 12 idle hours end it.
	clk.now = clk.now.Add(11 * time.Hour)
	if _, err := a.Session(ctx, token); err != nil {
		t.Fatalf("after 11 h: %v", err)
	}
	clk.now = clk.now.Add(11 * time.Hour)
	if _, err := a.Session(ctx, token); err != nil {
		t.Fatalf("11 h after the last use: %v", err)
	}
	clk.now = clk.now.Add(12*time.Hour + time.Second)
	if _, err := a.Session(ctx, token); serializer.ErrorCode(err) != serializer.EUNAUTHENTICATED {
		t.Fatalf("12 idle hours later: %v", err)
	}
	// Logout ends a session at once; a new password ends all of them.
	t1, _, _ := a.StartSession(ctx, o)
	t2, _, _ := a.StartSession(ctx, o)
	if err := a.EndSession(ctx, t1); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Session(ctx, t1); err == nil {
		t.Fatal("session alive after logout")
	}
	if _, err := a.Session(ctx, t2); err != nil {
		t.Fatalf("other session ended by a logout: %v", err)
	}
	if err := a.SetPassword(ctx, "ben", "password-2", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Session(ctx, t2); err == nil {
		t.Fatal("session alive after a password change")
	}
	if _, err := a.Login(ctx, "ben", "password-2", "x"); err != nil {
		t.Fatal(err)
	}
}

func TestAPIKeys(t *testing.T) {
	ctx := context.Background()
	_, a, _ := newAccounts(t)
	_, key, err := a.AddOperator(ctx, "mes", serializer.RoleOperator, "password-1", true, "test")
	if err != nil || key == "" {
		t.Fatal(key, err)
	}
	if o, err := a.ByAPIKey(ctx, key); err != nil || o.Name != "mes" || !o.APIKey {
		t.Fatalf("by key = %+v, %v", o, err)
	}
	for _, bad := range []string{"", "sbk_guess", key[:len(key)-1]} {
		if _, err := a.ByAPIKey(ctx, bad); serializer.ErrorCode(err) != serializer.EUNAUTHENTICATED {
			t.Fatalf("key %q: %v", bad, err)
		}
	}
	newKey, err := a.NewOperatorAPIKey(ctx, "mes", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ByAPIKey(ctx, key); err == nil {
		t.Fatal("the replaced key still works")
	}
	if _, err := a.ByAPIKey(ctx, newKey); err != nil {
		t.Fatal(err)
	}
	ops, err := a.Operators(ctx)
	if err != nil || len(ops) != 1 || ops[0].Name != "mes" {
		t.Fatalf("operators = %+v, %v", ops, err)
	}
}

func TestFirstSupervisor(t *testing.T) {
	ctx := context.Background()
	_, a, _ := newAccounts(t)
	pw, err := a.FirstSupervisor(ctx, "")
	if err != nil || len(pw) < 20 {
		t.Fatalf("first supervisor: %q, %v", pw, err)
	}
	o, err := a.Login(ctx, "admin", pw, "x")
	if err != nil || o.Role != serializer.RoleSupervisor {
		t.Fatalf("admin login: %+v, %v", o, err)
	}
	if again, err := a.FirstSupervisor(ctx, "other-password"); again != "" || err != nil {
		t.Fatalf("second start created another supervisor: %q, %v", again, err)
	}
}
