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
	now := time.Now()
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: *user, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(*ttl)),
	}).SignedString([]byte(secret))
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, signed)
	return nil
}
