package gateway

import (
	"crypto/rsa"
	"encoding/json"
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
	refused := chatstate.Errorf(chatstate.EUNAUTHORIZED, "unauthorized")
	if token == "" || len(token) > 8192 {
		return Identity{}, refused
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
		return Identity{}, refused
	}
	sub, err := t.Claims.GetSubject()
	if err != nil || chatstate.ValidateID("sub", sub) != nil {
		return Identity{}, refused
	}
	id := Identity{UserID: sub}
	if exp, err := t.Claims.GetExpirationTime(); err != nil {
		return Identity{}, refused
	} else if exp != nil {
		id.ExpiresAt = exp.Time
	}
	return id, nil
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
