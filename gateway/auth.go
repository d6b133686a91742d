package gateway

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"

	"github.com/chatstate/chatstate"
	"github.com/golang-jwt/jwt/v5"
)

// Verifier checks handshake tokens. HS256 with a shared secret is the
// default; RS256 with a public key lets an identity service sign tokens the
// gateway can only verify.
type Verifier struct {
	secret []byte
	public *rsa.PublicKey
	parser *jwt.Parser
}

// NewVerifier accepts HS256 tokens when secret is set and RS256 tokens when
// public is set. At least one is required.
func NewVerifier(secret []byte, public *rsa.PublicKey) (*Verifier, error) {
	var methods []string
	if len(secret) > 0 {
		methods = append(methods, "HS256")
	}
	if public != nil {
		methods = append(methods, "RS256")
	}
	if len(methods) == 0 {
		return nil, fmt.Errorf("gateway: a JWT secret (CHATSTATE_JWT_SECRET) or RS256 public key is required")
	}
	return &Verifier{secret: secret, public: public, parser: jwt.NewParser(jwt.WithValidMethods(methods))}, nil
}

// Verify returns the user id (the sub claim) of a valid token. exp and nbf
// are enforced when present.
func (v *Verifier) Verify(token string) (string, error) {
	if token == "" || len(token) > 8192 {
		return "", chatstate.Errorf(chatstate.EUNAUTHORIZED, "unauthorized")
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
		return "", chatstate.Errorf(chatstate.EUNAUTHORIZED, "unauthorized")
	}
	sub, err := t.Claims.GetSubject()
	if err != nil || chatstate.ValidateID("sub", sub) != nil {
		return "", chatstate.Errorf(chatstate.EUNAUTHORIZED, "unauthorized")
	}
	return sub, nil
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
