package web_test

import (
	"context"
	"regexp"
	"testing"

	"serialbox/serializer"
	"serialbox/web"
)

// A supervisor rotates a station's jig token: the old one stops working at once, the
// new one works, it is shown only in that answer, and the rotation is audited.
func TestRotateStationToken(t *testing.T) {
	f := newFixture(t, web.Options{}, serializer.Station{ID: "locked", ProductID: productID, AutoBatch: true, Token: "from-config"})
	if a := f.do(t, "POST", "/ioto/serialize?station=locked&token=from-config", `{}`); a.status != 200 {
		t.Fatalf("configured token: %d %s", a.status, a.raw)
	}
	opPw, opKey := addOperator(t, f, "olga", serializer.RoleOperator)
	_ = opPw
	expectError(t, f.do(t, "POST", "/api/v1/stations/locked/token", `{}`, "Authorization", "Bearer "+opKey), 403, serializer.EFORBIDDEN)
	expectError(t, f.op(t, "POST", "/api/v1/stations/nope/token", `{}`), 422, serializer.EUNKNOWNSTATION)

	r := f.op(t, "POST", "/api/v1/stations/locked/token", `{}`)
	token := r.str("token")
	if r.status != 201 || len(token) < 30 {
		t.Fatalf("rotate = %d %s", r.status, r.raw)
	}
	expectError(t, f.do(t, "POST", "/ioto/serialize?station=locked&token=from-config", `{}`), 401, serializer.EUNAUTHORIZED)
	if a := f.do(t, "POST", "/ioto/serialize?station=locked", `{}`, "Authorization", "Bearer "+token); a.status != 200 {
		t.Fatalf("rotated token: %d %s", a.status, a.raw)
	}
	audit, _ := f.db.Audit(context.Background(), "station:locked", 0)
	rotated := 0
	for _, e := range audit {
		if e.Action == "station.token.rotate" {
			rotated++
			if e.Detail == token || e.Actor != "tester" {
				t.Fatalf("audit entry = %+v", e)
			}
		}
	}
	if rotated != 1 {
		t.Fatalf("audit = %+v", audit)
	}

	// The rotated token survives a restart: a new service loads it from the database.
	svc := serializer.NewService(f.db, nil)
	if err := svc.SetCatalog(context.Background(), f.svc.Catalog()); err != nil {
		t.Fatal(err)
	}
	if err := svc.LoadStationTokens(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Issue(context.Background(), serializer.IssueRequest{StationID: "locked", Token: token}); err != nil {
		t.Fatalf("rotated token after reload: %v", err)
	}
	if _, err := svc.Issue(context.Background(), serializer.IssueRequest{StationID: "locked", Token: "from-config"}); serializer.ErrorCode(err) != serializer.EUNAUTHORIZED {
		t.Fatalf("configured token after rotation and reload: %v", err)
	}

	// On the page: only supervisors see it; the new token is shown once.
	v := f.visitor(t)
	v.login("olga", opPw)
	if p := v.get("/stations"); p.status != 403 {
		t.Fatalf("stations page for an operator: %d", p.status)
	}
	supPw, _ := addOperator(t, f, "sven", serializer.RoleSupervisor)
	s := f.visitor(t)
	s.login("sven", supPw)
	wantPage(t, s.get("/stations"), 200, "locked", "rotated from this page", "Rotate token", "Reload configuration")
	p := s.post("/stations/locked/token", nil)
	wantPage(t, p, 200, "New jig token for station locked")
	m := regexp.MustCompile(`<code id="token-value">([a-z2-7]+)</code>`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no token on the page:\n%s", p.body)
	}
	if a := f.do(t, "POST", "/ioto/serialize?station=locked&token="+m[1], `{}`); a.status != 200 {
		t.Fatalf("token from the page: %d %s", a.status, a.raw)
	}
	if a := f.do(t, "POST", "/ioto/serialize?station=locked", `{}`, "Authorization", "Bearer "+token); a.status != 401 {
		t.Fatalf("the token before the page's rotation still works: %d", a.status)
	}
	if again := s.get("/stations"); regexp.MustCompile(m[1]).MatchString(again.body) {
		t.Fatal("the token is shown again after the rotation")
	}
}

// The audit trail is on the page for supervisors, filtered by subject.
func TestAuditPage(t *testing.T) {
	f := newFixture(t, web.Options{})
	f.do(t, "POST", "/ioto/serialize", `{}`)
	f.op(t, "POST", "/api/v1/batches/1/close", `{"reason":"shift <end>"}`)
	supPw, _ := addOperator(t, f, "sven", serializer.RoleSupervisor)
	s := f.visitor(t)
	s.login("sven", supPw)
	wantPage(t, s.get("/audit"), 200, "batch.close", "shift &lt;end&gt;", "operator.login", "batch:1")
	p := s.get("/audit?subject=batch:1")
	wantPage(t, p, 200, "batch.close", "batch.open")
	if regexp.MustCompile(`operator\.login`).MatchString(p.body) {
		t.Fatal("the filtered trail shows entries about another subject")
	}
	opPw, _ := addOperator(t, f, "olga", serializer.RoleOperator)
	o := f.visitor(t)
	o.login("olga", opPw)
	if p := o.get("/audit"); p.status != 403 {
		t.Fatalf("audit page for an operator: %d", p.status)
	}
}
