package serializer

import (
	"context"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// nobodyRepo knows no operator at all.
type nobodyRepo struct{ OperatorRepository }

func (nobodyRepo) OperatorCredentials(context.Context, string) (Operator, []byte, error) {
	return Operator{}, nil, Errorf(ENOTFOUND, "no operator")
}

// The hash an unknown name is checked against is made when first needed, at the
// configured cost, not when the package loads.
func TestDummyHashIsLazyAtTheConfiguredCost(t *testing.T) {
	for _, cost := range []int{bcrypt.MinCost, bcrypt.MinCost + 1} {
		a := NewAccounts(nobodyRepo{})
		a.Cost = cost
		if a.dummy != nil {
			t.Fatal("the dummy hash was made before any login")
		}
		if _, err := a.Login(context.Background(), "mallory", "guess-a-password", "10.0.0.9"); ErrorCode(err) != EUNAUTHENTICATED {
			t.Fatalf("login of an unknown name: %v", err)
		}
		got, err := bcrypt.Cost(a.dummy)
		if err != nil || got != cost {
			t.Fatalf("dummy hash cost = %d, %v; want the configured %d", got, err, cost)
		}
		first := a.dummy
		a.Login(context.Background(), "eve", "another-guess", "10.0.0.9")
		if &a.dummy[0] != &first[0] {
			t.Fatal("the dummy hash was made again for the second unknown name")
		}
	}
}
