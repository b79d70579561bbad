package web_test

import (
	"regexp"
	"strings"
	"testing"

	"serialbox/serializer"
	"serialbox/web"
)

// UCIs issued to jigs that name no identity are counted where operators look: a jig
// that asks again at every boot leaves one orphan UCI and label each time.
func TestAnonymousUCIsAreShown(t *testing.T) {
	f := newFixture(t, web.Options{}, serializer.Station{ID: "line1", Name: "Line 1", ProductID: productID, AutoBatch: true})
	v := f.visitor(t)
	if p := v.get("/"); strings.Contains(p.body, `data-count="anonymous"`) {
		t.Fatal("anonymous counter shown before any anonymous UCI")
	}
	f.do(t, "POST", "/ioto/serialize", `{"hwid":"UNIT-1"}`)
	if p := v.get("/"); strings.Contains(p.body, `data-count="anonymous"`) {
		t.Fatal("a device with an identity counted as anonymous")
	}
	f.do(t, "POST", "/ioto/serialize", `{}`)
	f.do(t, "POST", "/ioto/serialize", `{"product":"`+productID+`"}`)
	p := v.get("/")
	if m := regexp.MustCompile(`data-count="anonymous">(\d+)<`).FindStringSubmatch(p.body); m == nil || m[1] != "2" {
		t.Fatalf("line view anonymous counter = %v", m)
	}
	a := f.do(t, "GET", "/api/v1/batches/1", "")
	counts, _ := a.body["counts"].(map[string]any)
	if counts["anonymous"] != float64(2) || counts["issued"] != float64(3) {
		t.Fatalf("batch counts = %v", a.raw)
	}
	v.login("tester", "tester-password")
	if m := regexp.MustCompile(`data-count="anonymous">(\d+)<`).FindStringSubmatch(v.get("/batches/1").body); m == nil || m[1] != "2" {
		t.Fatalf("batch page anonymous counter = %v", m)
	}
}
