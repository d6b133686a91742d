package gateway

import "time"

// EventTokenExpired is emitted to a socket whose token reached its exp,
// right before the server disconnects it (the client sees the reason "io
// server disconnect" and does not reconnect on its own): the client should
// get a new token and connect again.
const EventTokenExpired = "token:expired"

// armExpiry disconnects cl when its token expires; a zero exp (a token
// without one, when allowed) never expires. The socket's own deadline
// (socketio.Conn.ExpireAt) costs no timer per connection, and ends with the
// socket.
func (g *Gateway) armExpiry(cl *client, exp time.Time) {
	if exp.IsZero() {
		return
	}
	cl.conn.ExpireAt(exp, func() {
		if !g.tasks.add() { // Close is waiting: the socket goes anyway
			return
		}
		defer g.tasks.done()
		g.expire(cl, exp)
	})
}

// expire tells the client why and disconnects it.
func (g *Gateway) expire(cl *client, exp time.Time) {
	g.log.Info("token expired, disconnecting", "user", cl.userID, "device", cl.deviceID, "exp", exp)
	g.kick(cl, EventTokenExpired, map[string]any{"reason": "token_expired", "expiredAt": exp.UnixMilli()})
}

// kick emits event to cl and disconnects it from the server side, so
// socket.io-client does not reconnect by itself. Disconnect is a no-op
// until the socket's CONNECT is sent, so a kick during the handshake is
// retried briefly until onDisconnect has run.
func (g *Gateway) kick(cl *client, event string, payload any) {
	cl.conn.Emit(event, payload)
	for range 100 {
		cl.conn.Disconnect()
		time.Sleep(20 * time.Millisecond)
		cl.mu.Lock()
		gone := cl.gone
		cl.mu.Unlock()
		if gone {
			return
		}
	}
}
