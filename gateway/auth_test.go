package gateway

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/golang-jwt/jwt/v5"
)

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifier(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	secret := []byte("s3cret")
	future := time.Now().Add(time.Hour).Unix()
	hsOnly, _ := NewVerifier(secret, nil)
	both, _ := NewVerifier(secret, &rsaKey.PublicKey)

	tests := []struct {
		name  string
		v     *Verifier
		token string
		want  string // "" = refused
	}{
		{"hs256", hsOnly, sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "exp": future}), "alice"},
		{"hs256 without exp", hsOnly, sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice"}), "alice"},
		{"expired", hsOnly, sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Minute).Unix()}), ""},
		{"not yet valid", hsOnly, sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "nbf": future}), ""},
		{"wrong secret", hsOnly, sign(t, jwt.SigningMethodHS256, []byte("other"), jwt.MapClaims{"sub": "alice"}), ""},
		{"no sub", hsOnly, sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": future}), ""},
		{"sub with braces", hsOnly, sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a{b}"}), ""},
		{"alg none", hsOnly, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "alice"}), ""},
		{"hs384 not accepted", hsOnly, sign(t, jwt.SigningMethodHS384, secret, jwt.MapClaims{"sub": "alice"}), ""},
		{"rs256 when only hs256 configured", hsOnly, sign(t, jwt.SigningMethodRS256, rsaKey, jwt.MapClaims{"sub": "alice"}), ""},
		{"rs256", both, sign(t, jwt.SigningMethodRS256, rsaKey, jwt.MapClaims{"sub": "bob", "exp": future}), "bob"},
		{"rs256 other key", both, sign(t, jwt.SigningMethodRS256, otherRSA, jwt.MapClaims{"sub": "bob"}), ""},
		{"hs256 still accepted with both", both, sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "carol"}), "carol"},
		{"garbage", hsOnly, "a.b.c", ""},
		{"empty", hsOnly, "", ""},
	}
	for _, tt := range tests {
		got, err := tt.v.Verify(tt.token)
		if tt.want == "" {
			if err == nil || chatstate.ErrorCode(err) != chatstate.EUNAUTHORIZED {
				t.Errorf("%s: want unauthorized, got %q, %v", tt.name, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	if _, err := NewVerifier(nil, nil); err == nil {
		t.Error("a verifier without keys must be refused")
	}
}
