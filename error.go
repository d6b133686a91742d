package chatstate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
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
// show to a client. RetryAfter is set with ERATELIMITED and EUNAVAILABLE.
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

// OutageRetryAfter is the retry hint of an outage error: long enough that a
// crowd of clients does not hammer a restarting Redis or store, short enough
// that a failover of a few seconds costs a client only a few retries.
const OutageRetryAfter = time.Second

// outageError is an EUNAVAILABLE error that keeps its cause for logs:
// errors.As finds the *Error (code, message, retry hint), errors.Is the cause.
type outageError struct {
	code  *Error
	cause error
}

func (e *outageError) Error() string   { return e.code.Error() + ": " + e.cause.Error() }
func (e *outageError) Unwrap() []error { return []error{e.code, e.cause} }

// Unavailable returns an EUNAVAILABLE error with the outage retry hint that
// tells the client what is down (backend, e.g. "redis" or "the message
// store") and wraps cause. Every outage error a client sees is built here or
// by Classify, so the code and the hint are the same for every backend.
func Unavailable(backend string, cause error) error {
	return &outageError{code: &Error{Code: EUNAVAILABLE, Message: backend + " is unavailable, retry later", RetryAfter: OutageRetryAfter}, cause: cause}
}

// IsOutage reports whether err is a connection-level failure of a backend
// rather than a bug or a refusal: a deadline or cancellation while waiting
// for it, a refused, reset or closed connection, an unexpected EOF, any
// net.Error, or a driver error labelled as a network error (the MongoDB
// driver's HasErrorLabel("NetworkError")). Drivers' own outage states that
// these do not cover (a Redis LOADING reply, server selection) are
// recognised where the driver is imported and passed to Unavailable.
func IsOutage(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	var labeled interface{ HasErrorLabel(string) bool }
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, net.ErrClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.ErrClosedPipe),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH):
		return true
	case errors.As(err, &ne):
		return true
	case errors.As(err, &labeled):
		return labeled.HasErrorLabel("NetworkError")
	}
	return false
}

// Classify is the last step of every error path that may reach a client:
// nil and coded errors (*Error) are returned as they are, outages (IsOutage)
// become Unavailable("a backend", err), and anything else stays as it is
// (internal: a bug, logged with its text).
func Classify(err error) error {
	var e *Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	if IsOutage(err) {
		return Unavailable("a backend", err)
	}
	return err
}
