package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// chatstate token always issues an exp (the server refuses tokens without
// one), honouring --ttl.
func TestTokenHasExp(t *testing.T) {
	getenv := func(k string) string { return map[string]string{"CHATSTATE_JWT_SECRET": "s3"}[k] }
	for _, tc := range []struct {
		args []string
		ttl  time.Duration
	}{{nil, 24 * time.Hour}, {[]string{"--ttl", "90s"}, 90 * time.Second}} {
		var out, errOut strings.Builder
		before := time.Now().Truncate(time.Second)
		if err := Main(context.Background(), append([]string{"token", "--user", "alice"}, tc.args...), getenv, &out, &errOut); err != nil {
			t.Fatal(err)
		}
		var claims jwt.RegisteredClaims
		if _, err := jwt.ParseWithClaims(strings.TrimSpace(out.String()), &claims, func(*jwt.Token) (any, error) { return []byte("s3"), nil },
			jwt.WithExpirationRequired()); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if exp := claims.ExpiresAt.Time; exp.Before(before.Add(tc.ttl)) || exp.After(time.Now().Add(tc.ttl)) {
			t.Errorf("%v: exp %v, want about now + %s", tc.args, exp, tc.ttl)
		}
	}
	var out, errOut strings.Builder
	if err := Main(context.Background(), []string{"token", "--user", "alice", "--ttl", "0s"}, getenv, &out, &errOut); err == nil {
		t.Error("--ttl 0s must be refused")
	}
}
