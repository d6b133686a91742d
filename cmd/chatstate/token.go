package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/golang-jwt/jwt/v5"
)

// token prints an HS256 JWT for a user, signed with CHATSTATE_JWT_SECRET, so
// a newcomer can connect a client at once.
func token(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "user id (the token's sub)")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime of the token")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := chatstate.ValidateID("user", *user); err != nil {
		return err
	}
	if *ttl <= 0 {
		// The server refuses tokens without exp, so every token gets one.
		return fmt.Errorf("--ttl %s: want a positive duration", *ttl)
	}
	secret := getenv("CHATSTATE_JWT_SECRET")
	if secret == "" {
		fmt.Fprintln(stderr, "chatstate token: CHATSTATE_JWT_SECRET not set, signing with the development secret of the embedded mode")
		secret = devJWTSecret
	}
	signed, _, err := signToken([]byte(secret), *user, *ttl, getenv("CHATSTATE_JWT_ISSUER"), getenv("CHATSTATE_JWT_AUDIENCE"))
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, signed)
	return nil
}

// signToken is an HS256 client token for user that the server's verifier
// accepts: exp always, and iss and aud when the server requires them.
func signToken(secret []byte, user string, ttl time.Duration, issuer, audience string) (string, time.Time, error) {
	now := time.Now()
	exp := now.Add(ttl)
	claims := jwt.RegisteredClaims{Subject: user, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp), Issuer: issuer}
	if audience != "" {
		claims.Audience = jwt.ClaimStrings{audience}
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	return signed, exp, err
}

// demoTokenTTL is the lifetime of a token the demo page gets in
// development mode; the page asks for a new one when it expires.
const demoTokenTTL = 12 * time.Hour

// demoMint signs demo tokens in development mode with an HS256 secret,
// and is nil otherwise: a production server never mints a token.
func demoMint(cfg config) func(string) (string, time.Time, error) {
	if !cfg.Dev || len(cfg.JWTSecret) == 0 {
		return nil
	}
	return func(user string) (string, time.Time, error) {
		return signToken(cfg.JWTSecret, user, demoTokenTTL, cfg.JWTIssuer, cfg.JWTAudience)
	}
}
