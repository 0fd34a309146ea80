package wire

import (
	"errors"
	"fmt"

	"github.com/iop-go/iop/internal/wire/wirepb"
)

// StatusError is a non-OK response status with its details. It crosses the
// wire: a server returns one from a handler and a client receives the same.
type StatusError struct {
	Status  wirepb.Status
	Details string
}

func (e *StatusError) Error() string {
	name := StatusName(e.Status)
	if e.Details == "" {
		return name
	}
	return name + ": " + e.Details
}

// Is makes errors.Is(err, &StatusError{Status: s}) match any details.
func (e *StatusError) Is(target error) bool {
	t, ok := target.(*StatusError)
	return ok && t.Status == e.Status && (t.Details == "" || t.Details == e.Details)
}

// Errorf returns a StatusError whose details are formatted.
func Errorf(s wirepb.Status, format string, args ...any) *StatusError {
	return &StatusError{Status: s, Details: fmt.Sprintf(format, args...)}
}

// Invalid returns an INVALID_VALUE error naming the offending field.
func Invalid(field string) *StatusError {
	return &StatusError{Status: wirepb.Status_INVALID_VALUE, Details: field}
}

// StatusOf returns the status carried by err, INTERNAL for other errors and
// OK for nil.
func StatusOf(err error) wirepb.Status {
	if err == nil {
		return wirepb.Status_OK
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return wirepb.Status_INTERNAL
}

// StatusName is the lower-case name of s as users see it, e.g. "invalid value".
func StatusName(s wirepb.Status) string {
	switch s {
	case wirepb.Status_OK:
		return "ok"
	case wirepb.Status_PROTOCOL_VIOLATION:
		return "protocol violation"
	case wirepb.Status_UNSUPPORTED:
		return "unsupported"
	case wirepb.Status_BANNED:
		return "banned"
	case wirepb.Status_BUSY:
		return "busy"
	case wirepb.Status_UNAUTHORIZED:
		return "unauthorized"
	case wirepb.Status_BAD_ROLE:
		return "bad role"
	case wirepb.Status_BAD_CONVERSATION_STATUS:
		return "bad conversation status"
	case wirepb.Status_INTERNAL:
		return "internal error"
	case wirepb.Status_QUOTA_EXCEEDED:
		return "quota exceeded"
	case wirepb.Status_INVALID_SIGNATURE:
		return "invalid signature"
	case wirepb.Status_NOT_FOUND:
		return "not found"
	case wirepb.Status_INVALID_VALUE:
		return "invalid value"
	case wirepb.Status_ALREADY_EXISTS:
		return "already exists"
	case wirepb.Status_NOT_AVAILABLE:
		return "not available"
	case wirepb.Status_REJECTED:
		return "rejected"
	case wirepb.Status_UNINITIALIZED:
		return "uninitialized"
	}
	return fmt.Sprintf("status %d", int32(s))
}
