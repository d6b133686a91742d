package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/socketio"
)

// Security log event types.
const (
	SecurityAuthFailed     = "auth_failed"
	SecurityRateLimited    = "rate_limited"
	SecurityNewDevice      = "new_device"
	SecuritySessionRevoked = "session_revoked"
)

// EventSessionRevoked is emitted to each socket of a revoked device right
// before the server disconnects it ("io server disconnect": socket.io-client
// does not reconnect by itself).
const EventSessionRevoked = "session:revoked"

// maxUserAgent caps the user agent kept in a session and a socket record.
const maxUserAgent = 512

// authFailedPerMinute caps the auth_failed entries per user: anyone can
// put a victim's sub in a forged token, and must not be able to flush the
// victim's log (or load Redis) with them.
const authFailedPerMinute = 10

// ParseTrustedProxies parses CHATSTATE_TRUSTED_PROXIES: comma-separated
// CIDRs (10.0.0.0/8) or single addresses (an address is a /32 or /128).
func ParseTrustedProxies(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, errors.New("want comma-separated IP addresses or CIDRs such as 10.0.0.0/8, 192.168.1.10 or fd00::/8")
		}
		a = a.Unmap().WithZone("")
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	if len(out) == 0 {
		return nil, errors.New("want comma-separated IP addresses or CIDRs such as 10.0.0.0/8, 192.168.1.10 or fd00::/8")
	}
	return out, nil
}

func (g *Gateway) trusted(a netip.Addr) bool {
	for _, p := range g.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop parses one address of a forwarding header: a bare address, or
// one with a port (some proxies add it).
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// clientIP is the address of the client behind r. X-Forwarded-For (or,
// without it, X-Real-IP) counts only when the TCP peer is a trusted proxy:
// anyone else could write any address there. Of X-Forwarded-For the
// right-most address that is not a trusted proxy is taken, since every
// address to its left was written by that untrusted party; when all are
// trusted, the left-most. An unparsable hop ends the walk at the last
// trusted address.
func (g *Gateway) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, ok := parseHop(host)
	if !ok {
		return truncate(r.RemoteAddr, 64)
	}
	if !g.trusted(addr) {
		return addr.String()
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	if len(hops) == 0 {
		if a, ok := parseHop(r.Header.Get("X-Real-IP")); ok {
			return a.String()
		}
		return addr.String()
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break
		}
		addr = a
		if !g.trusted(a) {
			break
		}
	}
	return addr.String()
}

// userAgent is the handshake's User-Agent, capped and valid UTF-8.
func userAgent(r *http.Request) string {
	ua := strings.ToValidUTF8(r.Header.Get("User-Agent"), "")
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
		for !utf8.ValidString(ua) {
			ua = ua[:len(ua)-1]
		}
	}
	return ua
}

// session is the session record of cl's device.
func (cl *client) session() chatstate.Session {
	data := map[string]string{"ip": cl.ip}
	if cl.userAgent != "" {
		data["userAgent"] = cl.userAgent
	}
	return chatstate.Session{UserID: cl.userID, DeviceID: cl.deviceID, Data: data}
}

// createSession records cl's session and reports whether the user logged
// in from a device not seen lately (KnownDevices): a reconnect after a
// dropped connection, whose session ended with it, is not a new device.
func (g *Gateway) createSession(ctx context.Context, cl *client) (newDevice bool, err error) {
	if newDevice, err = g.deps.Cache.RememberDevice(ctx, cl.userID, cl.deviceID); err != nil {
		return false, err
	}
	if _, err := g.deps.Cache.CreateSession(ctx, cl.session()); err != nil {
		return false, err
	}
	cl.sessionTouched.Store(time.Now().UnixNano())
	return newDevice, nil
}

// touchSession extends cl's session (UpdateSessionActivity) unless this
// connection did so less than SessionActivityInterval ago: activity is
// recorded per interval, not per event. recreate puts back a session that
// is gone (expired, evicted, or lost with Redis' data) while its device
// stays connected, unless the session was revoked.
func (g *Gateway) touchSession(ctx context.Context, cl *client, recreate bool) error {
	now := time.Now().UnixNano()
	last := cl.sessionTouched.Load()
	if now-last < int64(g.cfg.SessionActivityInterval) || !cl.sessionTouched.CompareAndSwap(last, now) {
		return nil
	}
	// A failure is not retried before the next interval: during an outage
	// every event would otherwise wait on Redis once more.
	_, err := g.deps.Cache.UpdateSessionActivity(ctx, cl.userID, cl.deviceID)
	if chatstate.ErrorCode(err) == chatstate.ENOTFOUND {
		if !recreate || cl.revoked.Load() {
			return nil
		}
		_, err = g.deps.Cache.CreateSession(ctx, cl.session())
	}
	return err
}

// sessionDue reports whether cl's session is due for extension.
func (g *Gateway) sessionDue(cl *client) bool {
	return time.Now().UnixNano()-cl.sessionTouched.Load() >= int64(g.cfg.SessionActivityInterval)
}

// endSession deletes the session of a disconnected socket's device unless
// the device is still connected: through another socket that presence now
// holds (a reconnect, here or elsewhere), or another socket on this node.
func (g *Gateway) endSession(ctx context.Context, cl *client, change chatstate.PresenceChange) {
	if change.DeviceKept {
		return
	}
	for _, c := range g.hub.conns(cl.userID) {
		if other, ok := c.Data().(*client); ok && other != cl && other.deviceID == cl.deviceID {
			return
		}
	}
	if err := g.deps.Cache.DeleteSession(ctx, cl.userID, cl.deviceID); err != nil {
		g.log.Warn("session not deleted; it expires", "user", cl.userID, "device", cl.deviceID, "err", err)
	}
}

// securityEvent writes ev to userID's security log; a failure is logged,
// never returned: the log must not decide whether a client is served.
func (g *Gateway) securityEvent(ctx context.Context, userID string, ev chatstate.SecurityEvent) {
	if err := g.deps.Cache.LogSecurityEvent(ctx, userID, ev); err != nil {
		g.log.Warn("security event not logged", "user", userID, "type", ev.Type, "err", err)
	}
}

// throttled reports whether an event of kind for userID is over perWindow
// per window (across nodes, with the Redis rate limiter), so a flood of
// refusals writes a few entries rather than thousands.
func (g *Gateway) throttled(ctx context.Context, userID, kind string, perWindow int, window time.Duration) bool {
	rl, err := g.deps.Cache.CheckRateLimit(ctx, userID, "security_log."+kind, perWindow, window)
	return err != nil || !rl.Allowed
}

// logAuthFailed records a refused handshake in the security log of the user
// the token names, when its sub can be read.
func (g *Gateway) logAuthFailed(c *socketio.Conn, a handshakeAuth, reason string) {
	sub := unverifiedSubject(a.Token)
	if sub == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.EventTimeout)
	defer cancel()
	if g.throttled(ctx, sub, SecurityAuthFailed, authFailedPerMinute, time.Minute) {
		return
	}
	req := c.Request() // a new copy each call
	ev := chatstate.SecurityEvent{Type: SecurityAuthFailed, IP: g.clientIP(req), Details: map[string]string{"reason": reason}}
	if chatstate.ValidateID("deviceId", a.DeviceID) == nil {
		ev.DeviceID = a.DeviceID
	}
	if ua := userAgent(req); ua != "" {
		ev.Details["userAgent"] = ua
	}
	g.securityEvent(ctx, sub, ev)
}

// logRateLimited records a refused event (the per-user message limit or
// this connection's event limit): at most once per connection and once per
// user per MessageRateWindow.
func (g *Gateway) logRateLimited(ctx context.Context, cl *client, event, limit string) {
	now := time.Now().UnixNano()
	last := cl.rateLogged.Load()
	window := g.cfg.MessageRateWindow
	if (last != 0 && now-last < int64(window)) || !cl.rateLogged.CompareAndSwap(last, now) {
		return
	}
	if g.throttled(ctx, cl.userID, SecurityRateLimited, 1, window) {
		return
	}
	g.securityEvent(ctx, cl.userID, chatstate.SecurityEvent{Type: SecurityRateLimited, IP: cl.ip, DeviceID: cl.deviceID,
		Details: map[string]string{"event": event, "limit": limit}})
}

// controlPrefix starts a control envelope on a user channel, instead of the
// excluded socket id of a delivery (socket ids are URL-safe, so never this
// byte): "\x01" + JSON of control.
const controlPrefix = "\x01"

// control is an instruction to every node holding sockets of the channel's
// user.
type control struct {
	// Op "revoke": disconnect DeviceID's sockets. "join": the user is a
	// member of ConversationID, whose messages above seq From may be its.
	Op             string `json:"op"`
	DeviceID       string `json:"deviceId,omitempty"`
	Reason         string `json:"reason,omitempty"`
	ConversationID string `json:"conversationId,omitempty"`
	From           int64  `json:"from,omitempty"`
}

// RevokeSession ends the session of userID's device deviceID: the session
// is deleted, every socket of the device on any node gets session:revoked
// {deviceId, reason} and is disconnected, and the revocation is logged.
// A device without a session is not_found, but its sockets are
// disconnected all the same.
func (g *Gateway) RevokeSession(ctx context.Context, userID, deviceID string) error {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return err
	}
	if err := chatstate.ValidateID("deviceId", deviceID); err != nil {
		return err
	}
	_, err := g.deps.Cache.Session(ctx, userID, deviceID)
	existed := err == nil
	if err != nil && chatstate.ErrorCode(err) != chatstate.ENOTFOUND {
		return err
	}
	if err := g.deps.Cache.DeleteSession(ctx, userID, deviceID); err != nil {
		return err
	}
	const reason = "revoked"
	b, err := json.Marshal(control{Op: "revoke", DeviceID: deviceID, Reason: reason})
	if err != nil {
		return err
	}
	if err := g.publishEnvelope(ctx, []string{userID}, controlPrefix+string(b)); err != nil {
		return err
	}
	if !existed {
		return chatstate.Errorf(chatstate.ENOTFOUND, "no session of device %s", deviceID)
	}
	g.securityEvent(ctx, userID, chatstate.SecurityEvent{Type: SecuritySessionRevoked, DeviceID: deviceID, Details: map[string]string{"reason": reason}})
	return nil
}

// onControl runs a control envelope from the user's channel. It is called
// on the subscriber's reader, so what it starts runs as tasks.
func (g *Gateway) onControl(userID, payload string) bool {
	var ctl control
	if json.Unmarshal([]byte(payload), &ctl) != nil {
		return false
	}
	switch {
	case ctl.Op == "revoke" && ctl.DeviceID != "":
		g.revokeLocal(userID, ctl)
	case ctl.Op == "join" && ctl.ConversationID != "" && ctl.From >= 0:
		if g.hub.entry(userID) == nil || !g.tasks.add() {
			return true
		}
		go func() {
			defer g.tasks.done()
			g.joinLocal(userID, ctl.ConversationID, ctl.From)
		}()
	default:
		return false
	}
	return true
}

func (g *Gateway) revokeLocal(userID string, ctl control) {
	for _, c := range g.hub.conns(userID) {
		cl, ok := c.Data().(*client)
		if !ok || cl.deviceID != ctl.DeviceID {
			continue
		}
		cl.revoked.Store(true)
		if !g.tasks.add() {
			continue
		}
		go func() {
			defer g.tasks.done()
			g.log.Info("session revoked, disconnecting", "user", cl.userID, "device", cl.deviceID)
			g.kick(cl, EventSessionRevoked, map[string]any{"deviceId": cl.deviceID, "reason": ctl.Reason})
		}()
	}
}
