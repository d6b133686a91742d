package gateway

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/golang-jwt/jwt/v5"
)

// VerifierConfig says which tokens a Verifier accepts. At least one of
// Secret and PublicKey is required.
type VerifierConfig struct {
	// Secret accepts HS256 tokens signed with it.
	Secret []byte
	// PublicKey accepts RS256 tokens signed with its private key, so an
	// identity service can sign tokens the gateway can only verify.
	PublicKey *rsa.PublicKey
	// Issuer, when set, must equal the token's iss claim.
	Issuer string
	// Audience, when set, must be one of the token's aud values.
	Audience string
	// AllowMissingExp accepts tokens without an exp claim, which then never
	// expire. Zero means exp is required: a leaked token without one would
	// be valid for ever.
	AllowMissingExp bool
}

// Verifier checks handshake tokens.
type Verifier struct {
	secret []byte
	public *rsa.PublicKey
	parser *jwt.Parser
}

// NewVerifier accepts HS256 tokens when secret is set and RS256 tokens when
// public is set, with exp required and no iss or aud check.
func NewVerifier(secret []byte, public *rsa.PublicKey) (*Verifier, error) {
	return NewVerifierConfig(VerifierConfig{Secret: secret, PublicKey: public})
}

// NewVerifierConfig returns a Verifier for cfg.
func NewVerifierConfig(cfg VerifierConfig) (*Verifier, error) {
	var methods []string
	if len(cfg.Secret) > 0 {
		methods = append(methods, "HS256")
	}
	if cfg.PublicKey != nil {
		methods = append(methods, "RS256")
	}
	if len(methods) == 0 {
		return nil, fmt.Errorf("gateway: a JWT secret (CHATSTATE_JWT_SECRET) or RS256 public key is required")
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods)}
	if !cfg.AllowMissingExp {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &Verifier{secret: cfg.Secret, public: cfg.PublicKey, parser: jwt.NewParser(opts...)}, nil
}

// Identity is what a valid token says.
type Identity struct {
	UserID string // the sub claim
	// ExpiresAt is the exp claim; zero when the token has none (only with
	// AllowMissingExp).
	ExpiresAt time.Time
}

// Verify returns the user id (the sub claim) of a valid token.
func (v *Verifier) Verify(token string) (string, error) {
	id, err := v.Identify(token)
	return id.UserID, err
}

// Identify checks token (signature, exp, nbf, and iss and aud when
// configured) and returns its identity. Every refusal is the same
// unauthorized error, so a client learns nothing about which check failed.
func (v *Verifier) Identify(token string) (Identity, error) {
	id, reason := v.identify(token)
	if reason != "" {
		return Identity{}, chatstate.Errorf(chatstate.EUNAUTHORIZED, "unauthorized")
	}
	return id, nil
}

// identify is Identify with the reason of a refusal (for the security log
// only, never for the client): "" when the token is valid.
func (v *Verifier) identify(token string) (Identity, string) {
	if token == "" || len(token) > 8192 {
		return Identity{}, "malformed"
	}
	t, err := v.parser.Parse(token, func(t *jwt.Token) (any, error) {
		switch t.Method.Alg() {
		case "HS256":
			return v.secret, nil
		case "RS256":
			return v.public, nil
		}
		return nil, fmt.Errorf("unexpected alg %s", t.Method.Alg())
	})
	if err != nil || !t.Valid {
		return Identity{}, refusalReason(err)
	}
	sub, err := t.Claims.GetSubject()
	if err != nil || chatstate.ValidateID("sub", sub) != nil {
		return Identity{}, "bad_subject"
	}
	id := Identity{UserID: sub}
	if exp, err := t.Claims.GetExpirationTime(); err != nil {
		return Identity{}, "bad_exp"
	} else if exp != nil {
		id.ExpiresAt = exp.Time
	}
	return id, ""
}

// refusalReason names the check a token failed.
func refusalReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token_expired"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "claim_missing"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not_valid_yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong_issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong_audience"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "bad_signature"
	}
	return "invalid_token"
}

// unverifiedSubject reads a token's sub without checking anything, so a
// refused handshake can be logged to the user it names. It must never be
// trusted for anything else: anyone can write any sub.
func unverifiedSubject(token string) string {
	if token == "" || len(token) > 8192 {
		return ""
	}
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &claims); err != nil {
		return ""
	}
	if chatstate.ValidateID("sub", claims.Subject) != nil {
		return ""
	}
	return claims.Subject
}

// handshakeAuth is the client's `auth` option: io(URL, { auth: { token, deviceId } }).
type handshakeAuth struct {
	Token    string `json:"token"`
	DeviceID string `json:"deviceId"`
}

func parseAuth(raw json.RawMessage) (handshakeAuth, error) {
	var a handshakeAuth
	if len(raw) == 0 {
		return a, chatstate.Errorf(chatstate.EUNAUTHORIZED, "unauthorized")
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, chatstate.Errorf(chatstate.EUNAUTHORIZED, "unauthorized")
	}
	return a, nil
}
