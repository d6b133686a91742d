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
	noExpOK, _ := NewVerifierConfig(VerifierConfig{Secret: secret, AllowMissingExp: true})
	issAud, _ := NewVerifierConfig(VerifierConfig{Secret: secret, Issuer: "https://id.example", Audience: "chat"})
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, secret, c) }

	tests := []struct {
		name  string
		v     *Verifier
		token string
		want  string // "" = refused
	}{
		{"hs256", hsOnly, hs(jwt.MapClaims{"sub": "alice", "exp": future}), "alice"},
		{"without exp refused by default", hsOnly, hs(jwt.MapClaims{"sub": "alice"}), ""},
		{"without exp, exp not required", noExpOK, hs(jwt.MapClaims{"sub": "alice"}), "alice"},
		{"expired", hsOnly, hs(jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Minute).Unix()}), ""},
		{"expired, exp not required", noExpOK, hs(jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Minute).Unix()}), ""},
		{"not yet valid", hsOnly, hs(jwt.MapClaims{"sub": "alice", "exp": future, "nbf": future}), ""},
		{"wrong secret", hsOnly, sign(t, jwt.SigningMethodHS256, []byte("other"), jwt.MapClaims{"sub": "alice", "exp": future}), ""},
		{"no sub", hsOnly, hs(jwt.MapClaims{"exp": future}), ""},
		{"sub with braces", hsOnly, hs(jwt.MapClaims{"sub": "a{b}", "exp": future}), ""},
		{"alg none", hsOnly, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "alice", "exp": future}), ""},
		{"hs384 not accepted", hsOnly, sign(t, jwt.SigningMethodHS384, secret, jwt.MapClaims{"sub": "alice", "exp": future}), ""},
		{"rs256 when only hs256 configured", hsOnly, sign(t, jwt.SigningMethodRS256, rsaKey, jwt.MapClaims{"sub": "alice", "exp": future}), ""},
		{"rs256", both, sign(t, jwt.SigningMethodRS256, rsaKey, jwt.MapClaims{"sub": "bob", "exp": future}), "bob"},
		{"rs256 other key", both, sign(t, jwt.SigningMethodRS256, otherRSA, jwt.MapClaims{"sub": "bob", "exp": future}), ""},
		{"hs256 still accepted with both", both, hs(jwt.MapClaims{"sub": "carol", "exp": future}), "carol"},
		{"iss and aud match", issAud, hs(jwt.MapClaims{"sub": "dan", "exp": future, "iss": "https://id.example", "aud": "chat"}), "dan"},
		{"aud list containing ours", issAud, hs(jwt.MapClaims{"sub": "dan", "exp": future, "iss": "https://id.example", "aud": []string{"billing", "chat"}}), "dan"},
		{"wrong iss", issAud, hs(jwt.MapClaims{"sub": "dan", "exp": future, "iss": "https://evil.example", "aud": "chat"}), ""},
		{"missing iss", issAud, hs(jwt.MapClaims{"sub": "dan", "exp": future, "aud": "chat"}), ""},
		{"wrong aud", issAud, hs(jwt.MapClaims{"sub": "dan", "exp": future, "iss": "https://id.example", "aud": "billing"}), ""},
		{"missing aud", issAud, hs(jwt.MapClaims{"sub": "dan", "exp": future, "iss": "https://id.example"}), ""},
		{"iss and aud ignored when not configured", hsOnly, hs(jwt.MapClaims{"sub": "erin", "exp": future, "iss": "anyone", "aud": "any"}), "erin"},
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

	// Identify reports exp, which the gateway disconnects at.
	id, err := hsOnly.Identify(hs(jwt.MapClaims{"sub": "alice", "exp": future}))
	if err != nil || id.UserID != "alice" || id.ExpiresAt.Unix() != future {
		t.Errorf("Identify: %+v, %v; want alice expiring at %d", id, err, future)
	}
	id, err = noExpOK.Identify(hs(jwt.MapClaims{"sub": "alice"}))
	if err != nil || !id.ExpiresAt.IsZero() {
		t.Errorf("Identify without exp: %+v, %v; want a zero ExpiresAt", id, err)
	}
}

// The refusal reason (for the security log only) names the failed check,
// and the unverified sub is read from any well-formed token.
func TestRefusalReasonAndUnverifiedSubject(t *testing.T) {
	secret := []byte("s3cret")
	future := time.Now().Add(time.Hour).Unix()
	hsOnly, _ := NewVerifier(secret, nil)
	issAud, _ := NewVerifierConfig(VerifierConfig{Secret: secret, Issuer: "https://id.example", Audience: "chat"})
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, secret, c) }
	for _, tc := range []struct {
		v             *Verifier
		token, reason string
		sub           string // what unverifiedSubject reads
	}{
		{hsOnly, hs(jwt.MapClaims{"sub": "alice", "exp": future}), "", "alice"},
		{hsOnly, hs(jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Minute).Unix()}), "token_expired", "alice"},
		{hsOnly, hs(jwt.MapClaims{"sub": "alice"}), "claim_missing", "alice"},
		{hsOnly, hs(jwt.MapClaims{"sub": "alice", "exp": future, "nbf": future}), "not_valid_yet", "alice"},
		{hsOnly, sign(t, jwt.SigningMethodHS256, []byte("other"), jwt.MapClaims{"sub": "alice", "exp": future}), "bad_signature", "alice"},
		{hsOnly, sign(t, jwt.SigningMethodHS384, secret, jwt.MapClaims{"sub": "alice", "exp": future}), "bad_signature", "alice"},
		{hsOnly, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "alice", "exp": future}), "bad_signature", "alice"},
		{issAud, hs(jwt.MapClaims{"sub": "dan", "exp": future, "iss": "https://evil.example", "aud": "chat"}), "wrong_issuer", "dan"},
		{issAud, hs(jwt.MapClaims{"sub": "dan", "exp": future, "iss": "https://id.example", "aud": "billing"}), "wrong_audience", "dan"},
		{hsOnly, hs(jwt.MapClaims{"sub": "a{b}", "exp": future}), "bad_subject", ""},
		{hsOnly, hs(jwt.MapClaims{"exp": future}), "bad_subject", ""},
		{hsOnly, "a.b.c", "invalid_token", ""},
		{hsOnly, "", "malformed", ""},
	} {
		_, reason := tc.v.identify(tc.token)
		if reason != tc.reason {
			t.Errorf("%.40s: reason %q, want %q", tc.token, reason, tc.reason)
		}
		if sub := unverifiedSubject(tc.token); sub != tc.sub {
			t.Errorf("%.40s: unverified sub %q, want %q", tc.token, sub, tc.sub)
		}
	}
}
