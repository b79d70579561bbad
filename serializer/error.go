package serializer

import (
	"errors"
	"fmt"
)

// Error codes. They are stable: jigs, scripts and the operator page match on them.
// The web package maps each to one HTTP status.
const (
	EINVALID          = "invalid"           // the request or a value in it is not acceptable
	EMALFORMED        = "malformed_json"    // the body is not the JSON object expected
	ETOOLARGE         = "too_large"         // the body is over the size limit
	ENOTFOUND         = "not_found"         // no such device, batch or other record
	EUNKNOWNPRODUCT   = "unknown_product"   // the product is not configured
	EUNKNOWNSTATION   = "unknown_station"   // the station is not configured
	EIDENTITYREQUIRED = "identity_required" // the station requires a device identity and the request names none
	EUNAUTHORIZED     = "bad_token"         // the station token is missing or wrong
	EUNAUTHENTICATED  = "unauthenticated"   // no operator is logged in, or the login or API key is wrong
	EFORBIDDEN        = "forbidden"         // the caller may not do this (e.g. source address)
	ENOBATCH          = "no_open_batch"     // the station has no open batch and may not open one
	EBATCHFULL        = "batch_full"        // the open batch reached its planned size
	EMISMATCH         = "product_mismatch"  // the request's product is not the open batch's
	ECONFLICT         = "conflict"          // the record is in a state that forbids the change
	EVOIDED           = "voided"            // the device with this identity was voided
	EWRONGBATCH       = "wrong_batch"       // the scanned device belongs to another batch
	EVERIFIED         = "already_verified"  // the scanned device was verified before (scanned twice)
	EUNAVAILABLE      = "unavailable"       // storage cannot take writes right now (disk full, read-only)
	EINTERNAL         = "internal"          // a bug or an unexpected fault; details only in the log
)

// Error codes of requests refused before they reach the domain, by how they were sent.
const (
	EMETHOD      = "method_not_allowed"     // the path does not take this HTTP method
	EUNSUPPORTED = "unsupported_media_type" // the body is of a kind the endpoint does not take (multipart)
)

// Error is the one error type the domain returns to its callers. Code is stable,
// Message is written for the person at the line.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for any
// other error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the user-facing message of err: the *Error message, or a
// generic text for internal errors, whose details belong in the log only.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "internal error; the details are in the appliance log"
	}
}
