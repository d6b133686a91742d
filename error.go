package chatstate

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. They are part of the wire protocol: acks and HTTP bodies carry
// them verbatim, so never rename one.
const (
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	EFORBIDDEN    = "forbidden"
	ERATELIMITED  = "rate_limited"
	EUNAUTHORIZED = "unauthorized"
	ECONFLICT     = "conflict"
	ETOOLARGE     = "too_large"
	EUNAVAILABLE  = "unavailable"
	EINTERNAL     = "internal"
)

// Error is the application error. Code is machine-readable; Message is safe to
// show to a client. RetryAfter is set with ERATELIMITED.
type Error struct {
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("chatstate: %s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err. Internal errors are
// not exposed: their text may hold addresses or keys.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorPayload is the wire shape of an error in acks, connect errors and
// HTTP bodies.
type ErrorPayload struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	RetryAfterMs int64  `json:"retryAfterMs,omitempty"`
}

// Payload returns err's wire shape.
func Payload(err error) ErrorPayload {
	p := ErrorPayload{Code: ErrorCode(err), Message: ErrorMessage(err)}
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		p.RetryAfterMs = max(e.RetryAfter.Milliseconds(), 1)
	}
	return p
}
