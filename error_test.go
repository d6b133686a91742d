package chatstate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

type labeled struct{ label string }

func (l labeled) Error() string               { return "driver error" }
func (l labeled) HasErrorLabel(s string) bool { return s == l.label }

// Every connection-level failure is a retryable outage with a hint, keeps
// its cause for logs, and never comes out as internal; other errors do.
func TestClassify(t *testing.T) {
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	outages := map[string]error{
		"deadline":        fmt.Errorf("cache: %w", context.DeadlineExceeded),
		"cancelled":       context.Canceled,
		"refused":         dialErr,
		"reset":           fmt.Errorf("read: %w", syscall.ECONNRESET),
		"eof":             io.EOF,
		"unexpected eof":  fmt.Errorf("x: %w", io.ErrUnexpectedEOF),
		"closed conn":     net.ErrClosed,
		"network label":   labeled{"NetworkError"},
		"joined with eof": errors.Join(errors.New("a"), io.EOF),
	}
	for name, cause := range outages {
		err := Classify(cause)
		p := Payload(err)
		if p.Code != EUNAVAILABLE || p.RetryAfterMs != OutageRetryAfter.Milliseconds() {
			t.Errorf("%s: payload %+v, want unavailable with retryAfterMs", name, p)
		}
		if !errors.Is(err, cause) {
			t.Errorf("%s: the cause is lost: %v", name, err)
		}
	}
	for name, err := range map[string]error{
		"bug":          errors.New("index out of range"),
		"other label":  labeled{"TransientTransactionError"},
		"nil":          nil,
		"coded kept":   Errorf(ENOTFOUND, "no such conversation"),
		"rate limited": &Error{Code: ERATELIMITED, RetryAfter: time.Second},
	} {
		want := ErrorCode(err)
		if got := ErrorCode(Classify(err)); got != want {
			t.Errorf("%s: Classify changed the code %q to %q", name, want, got)
		}
	}
	if ErrorCode(Classify(errors.New("bug"))) != EINTERNAL {
		t.Error("a bug must stay internal")
	}
	u := Unavailable("redis", dialErr)
	if ErrorMessage(u) != "redis is unavailable, retry later" || !errors.Is(u, syscall.ECONNREFUSED) {
		t.Errorf("Unavailable: %q, cause kept %v", ErrorMessage(u), errors.Is(u, syscall.ECONNREFUSED))
	}
}
