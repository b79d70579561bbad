package serializer

import (
	"strings"
	"testing"
)

func TestValidateOperatorName(t *testing.T) {
	for name, ok := range map[string]bool{
		"anna": true, "Anna.Schmidt": true, "mes-1": true, "line_2": true, strings.Repeat("a", 64): true,
		"": false, strings.Repeat("a", 65): false, "anna schmidt": false, "anna@plant": false, "änna": false, "a/b": false,
	} {
		if err := ValidateOperatorName(name); (err == nil) != ok {
			t.Errorf("ValidateOperatorName(%q) = %v", name, err)
		} else if err != nil && ErrorCode(err) != EINVALID {
			t.Errorf("ValidateOperatorName(%q): code %s", name, ErrorCode(err))
		}
	}
}

func TestValidatePassword(t *testing.T) {
	for pw, ok := range map[string]bool{
		"12345678": true, strings.Repeat("x", 72): true, "": false, "1234567": false, strings.Repeat("x", 73): false,
	} {
		if err := ValidatePassword(pw); (err == nil) != ok {
			t.Errorf("ValidatePassword(%d bytes) = %v", len(pw), err)
		}
	}
}

func TestParseRole(t *testing.T) {
	for in, want := range map[string]Role{"operator": RoleOperator, " Supervisor ": RoleSupervisor, "admin": "", "": ""} {
		got, err := ParseRole(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("ParseRole(%q) = %q, %v", in, got, err)
		}
	}
	if !RoleSupervisor.Allows(RoleOperator) || !RoleSupervisor.Allows(RoleSupervisor) || !RoleOperator.Allows(RoleOperator) || RoleOperator.Allows(RoleSupervisor) {
		t.Fatal("role order wrong")
	}
}

func TestNewSecrets(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		pw, key := NewPassword(), NewAPIKey()
		if len(pw) != 23 || ValidatePassword(pw) != nil || !strings.HasPrefix(key, "sbk_") || len(key) < 40 || seen[pw] || seen[key] {
			t.Fatalf("password %q, key %q", pw, key)
		}
		seen[pw], seen[key] = true, true
	}
	if HashToken("a") == HashToken("b") || len(HashToken("a")) != 64 {
		t.Fatal("HashToken")
	}
}
