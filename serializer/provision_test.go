package serializer_test

import (
	"testing"

	"serialbox/serializer"
)

// Microsoft's published vector for group-enrolment device keys.
func TestProvisioningTokenVector(t *testing.T) {
	key, err := serializer.DecodeProvisioningSecret("8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==")
	if err != nil {
		t.Fatal(err)
	}
	if got := serializer.ProvisioningToken(key, "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"); got != "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=" {
		t.Fatalf("token = %s", got)
	}
	for _, bad := range []string{"not base64!", "c2hvcnQ="} {
		if _, err := serializer.DecodeProvisioningSecret(bad); serializer.ErrorCode(err) != serializer.EINVALID {
			t.Errorf("DecodeProvisioningSecret(%q) = %v", bad, err)
		}
	}
}
