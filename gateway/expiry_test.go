package gateway

import (
	"testing"
	"time"

	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/golang-jwt/jwt/v5"
)

func dialToken(t *testing.T, n *node, claims jwt.MapClaims) (*testClient, error) {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return dialClient(t, n.url, map[string]string{"token": tok, "deviceId": "d1"})
}

// A token without exp is refused at the handshake by default.
func TestConnectWithoutExpRefused(t *testing.T) {
	client, prefix := redistest.Start(t)
	n := startNode(t, client, openStore(t), prefix, "a")
	_, err := dialToken(t, n, jwt.MapClaims{"sub": "alice"})
	if err == nil || err.Error() != `connect refused: 44{"message":"unauthorized"}` {
		t.Fatalf("token without exp: got %v, want connect_error unauthorized", err)
	}
	if _, err := dialToken(t, n, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}); err != nil {
		t.Fatalf("token with exp: %v", err)
	}
}

// A socket whose token expires gets token:expired, then the server's
// DISCONNECT, and its presence is cleared; a socket with a longer-lived
// token on the same node stays.
func TestTokenExpiryDisconnects(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	n := startNode(t, client, openStore(t), prefix, "a")
	exp := time.Now().Add(3 * time.Second).Unix() // at least 2 s to connect on a loaded machine
	short, err := dialToken(t, n, jwt.MapClaims{"sub": "alice", "exp": exp})
	if err != nil {
		t.Fatal(err)
	}
	long := connectUser(t, n, "bob")
	if res := short.emit("presence:get", map[string]any{"userIds": []string{"alice"}}); res["ok"] != true {
		t.Fatalf("before exp: %v", res)
	}

	ev := short.waitEventWithin(EventTokenExpired, nil, 30*time.Second)
	if ev["reason"] != "token_expired" || ev["expiredAt"] != float64(exp*1000) {
		t.Errorf("token:expired payload %v, want reason token_expired, expiredAt %d", ev, exp*1000)
	}
	short.waitEventWithin(serverDisconnect, nil, 30*time.Second)
	if time.Now().Unix() < exp {
		t.Errorf("disconnected before exp %d", exp)
	}

	// Its device is offline once the disconnect is processed.
	deadline := time.Now().Add(30 * time.Second)
	for {
		connected, err := n.gw.deps.State.IsUserConnected(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if !connected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("alice still online 30s after her token expired")
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	if res := long.emit("presence:get", map[string]any{"userIds": []string{"bob"}}); res["ok"] != true {
		t.Fatalf("long-lived socket after the other's expiry: %v", res)
	}
	if got := n.gw.Connections(); got != 1 {
		t.Errorf("connections = %d, want 1 (bob)", got)
	}
}
