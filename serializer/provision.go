package serializer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// MinProvisioningSecret is the shortest product provisioning secret accepted, in bytes.
const MinProvisioningSecret = 16

// DecodeProvisioningSecret reads a product's provisioning secret, written in base64.
func DecodeProvisioningSecret(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, Errorf(EINVALID, "provisioning secret is not base64")
	}
	if len(key) < MinProvisioningSecret {
		return nil, Errorf(EINVALID, "provisioning secret is %d bytes; at least %d are needed", len(key), MinProvisioningSecret)
	}
	return key, nil
}

// ProvisioningToken returns a device's provisioning token: base64 of HMAC-SHA256 over
// the device id, keyed with the product's secret. It is the construction of Azure DPS
// group-enrolment device keys, so the cloud can check a device's first contact with
// the product secret alone, without looking the device up.
func ProvisioningToken(secret []byte, id string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(id))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
