// Package keys builds every Redis key chatstate uses. Keys of one user share
// the hash tag {u:<userId>} and keys of one conversation share {c:<convId>},
// so every multi-key script touches one Redis Cluster slot. Ids are validated
// (chatstate.ValidateID) before they reach here and cannot contain braces.
//
// docs/redis-keys.md documents the layout; keys_test.go pins it.
package keys

import "strings"

// Keys builds keys under a prefix (CHATSTATE_KEY_PREFIX, "" by default).
type Keys struct{ prefix string }

// New returns a key builder. prefix is prepended verbatim, e.g. "app1:".
func New(prefix string) Keys { return Keys{prefix: prefix} }

// Prefix returns the configured prefix.
func (k Keys) Prefix() string { return k.prefix }

func (k Keys) user(name, userID string) string { return k.prefix + name + ":{u:" + userID + "}" }
func (k Keys) conv(name, convID string) string { return k.prefix + name + ":{c:" + convID + "}" }

// Presence is the hash of a user's presence: status, last seen and one field
// per device (see presence/ for the field layout).
func (k Keys) Presence(userID string) string { return k.user("presence", userID) }

// OnlineUsers is the global index of possibly-online users (sorted set, score
// = when the entry goes stale, epoch ms).
func (k Keys) OnlineUsers() string { return k.prefix + "online:users" }

// Nodes is the sorted set of gateway node instances, score = last heartbeat.
func (k Keys) Nodes() string { return k.prefix + "nodes" }

// NodeInfo maps a node instance to "<connections>|<heartbeat ms>" (hash),
// written by the heartbeat. Its hash tag is the whole Nodes key, so both
// share Nodes' slot and one script updates them together on a Cluster.
func (k Keys) NodeInfo() string { return k.prefix + "nodeinfo:{" + k.prefix + "nodes}" }

// Socket is the hash describing one connected socket.
func (k Keys) Socket(socketID string) string { return k.prefix + "socket:{s:" + socketID + "}" }

// Typing is the sorted set of users typing in a conversation (score = expiry).
func (k Keys) Typing(convID string) string { return k.conv("typing", convID) }

// TypingPattern is a SCAN MATCH pattern for every Typing key under the
// prefix (glob metacharacters of the prefix escaped).
func (k Keys) TypingPattern() string { return globEscape(k.prefix) + "typing:{c:*}" }

// Pattern is a SCAN MATCH pattern for every key under the prefix.
func (k Keys) Pattern() string { return globEscape(k.prefix) + "*" }

// Kind names the kind of a key built here: the name after the prefix up to
// its first ':' or '{' ("presence", "sessions", "pushq", "lock", ...), or
// "other" for a key outside the prefix or not of this layout.
func (k Keys) Kind(key string) string {
	rest, ok := strings.CutPrefix(key, k.prefix)
	if !ok {
		return "other"
	}
	if i := strings.IndexAny(rest, ":{"); i >= 0 {
		rest = rest[:i]
	}
	if !kinds[rest] {
		return "other"
	}
	return rest
}

// kinds are the key names this package builds.
var kinds = map[string]bool{
	"presence": true, "online": true, "nodes": true, "nodeinfo": true, "socket": true, "typing": true,
	"messages": true, "seq": true, "dedupe": true, "restored": true, "pending": true, "ready": true,
	"sessions": true, "friends": true, "notifications": true, "pushq": true, "rate_limit": true,
	"security_log": true, "known_devices": true, "lock": true, "members": true,
}

// Messages is the sorted set of recent messages of a conversation (score = seq).
func (k Keys) Messages(convID string) string { return k.conv("messages", convID) }

// Seq is the sequence counter of a conversation.
func (k Keys) Seq(convID string) string { return k.conv("seq", convID) }

// Dedupe maps the "senderId:clientMessageId" of recently cached messages
// to their seq (sorted set, score = seq), so a resend is answered from the
// messages cache; docs/redis-keys.md ("Dedupe window").
func (k Keys) Dedupe(convID string) string { return k.conv("dedupe", convID) }

// Restored is the highest seq a conversation's counter was raised to from
// the store (string; absent when never raised): the seqs up to it were
// reserved in a Redis that lost them, so a commit of one of them may be a
// message that was stored but never published.
func (k Keys) Restored(convID string) string { return k.conv("restored", convID) }

// Pending holds the seqs reserved by sends that are not yet stored and
// committed (sorted set, score = seq, member = "<seq>:<settle deadline ms>").
// A seq above the lowest pending one is not exposed until that one settles.
func (k Keys) Pending(convID string) string { return k.conv("pending", convID) }

// Ready holds stored messages waiting for a lower pending seq before they
// are cached and published (sorted set, score = seq, member = the publish
// record JSON).
func (k Keys) Ready(convID string) string { return k.conv("ready", convID) }

// Sessions holds all device sessions of a user (hash, field = deviceId; see
// cache/ for the value layout and per-field expiry).
func (k Keys) Sessions(userID string) string { return k.user("sessions", userID) }

// SessionsPattern is a SCAN MATCH pattern for every Sessions key under the
// prefix; glob metacharacters of the prefix are escaped.
func (k Keys) SessionsPattern() string { return globEscape(k.prefix) + "sessions:{u:*}" }

// SessionsUser returns the user id of a Sessions key, or false when key is
// not one.
func (k Keys) SessionsUser(key string) (string, bool) {
	head := k.prefix + "sessions:{u:"
	if len(key) <= len(head)+1 || key[:len(head)] != head || key[len(key)-1] != '}' {
		return "", false
	}
	return key[len(head) : len(key)-1], true
}

func globEscape(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// Friends is the cached friend list of a user (set).
func (k Keys) Friends(userID string) string { return k.user("friends", userID) }

// Notifications is a user's notification list, newest first.
func (k Keys) Notifications(userID string) string { return k.user("notifications", userID) }

// Push queue keys share the hash tag {pushq}: every queue script is atomic
// over all of them on one Cluster slot (as asynq keeps a queue in one slot).
func (k Keys) pushq(name string) string { return k.prefix + "pushq:{pushq}:" + name }

// PushJobs maps a push job id to its record "<priority>\n<enqueued ms>\n<payload>" (hash).
func (k Keys) PushJobs() string { return k.pushq("jobs") }

// PushPending is the FIFO list of job ids waiting at one priority ("high", "normal").
func (k Keys) PushPending(priority string) string { return k.pushq("pending:" + priority) }

// PushLeased holds claimed job ids, score = lease expiry (ms).
func (k Keys) PushLeased() string { return k.pushq("leased") }

// PushRetry holds job ids waiting for a retry, score = when due (ms).
func (k Keys) PushRetry() string { return k.pushq("retry") }

// PushAttempts counts the claims of each job (hash).
func (k Keys) PushAttempts() string { return k.pushq("attempts") }

// PushDone remembers finished job ids for the dedupe window, score = when done (ms).
func (k Keys) PushDone() string { return k.pushq("done") }

// PushDead is the dead-letter list, newest first.
func (k Keys) PushDead() string { return k.pushq("dead") }

// RateLimit is the sliding window of one user and action (sorted set of hits).
func (k Keys) RateLimit(userID, action string) string {
	return k.user("rate_limit", userID) + ":" + action
}

// SecurityLog is a user's security event list, newest first.
func (k Keys) SecurityLog(userID string) string { return k.user("security_log", userID) }

// KnownDevices maps the device ids a user has logged in from to the last
// login (hash, epoch ms), so a login from a new device can be told from a
// reconnect.
func (k Keys) KnownDevices(userID string) string { return k.user("known_devices", userID) }

// Lock is a short-lived lock used by background jobs so one node runs a sweep.
func (k Keys) Lock(name string) string { return k.prefix + "lock:" + name }

// Reads holds a conversation's read positions (hash, field userId -> seq),
// the receipt coalescing state of each reader ("e:<user>" last seq sent in
// a receipt, "n:<user>" when the next may go, epoch ms) and the field "~"
// once it was filled from the store. cache/reads.go.
func (k Keys) Reads(convID string) string { return k.conv("reads", convID) }

// Summary is a conversation's list entry (hash: lastSeq, msgSeq, msg = the
// last counted message JSON), written as messages publish.
func (k Keys) Summary(convID string) string { return k.conv("summary", convID) }

// Counted holds the seqs of a conversation's recent counted messages
// (sorted set, score = member = seq): unread = ZCOUNT (readSeq, +inf).
func (k Keys) Counted(convID string) string { return k.conv("counted", convID) }

// ConvList is a user's conversations by last activity (sorted set, score =
// epoch ms, member = conversation id, plus the member "~" at score -1 that
// says the set was filled from the store).
func (k Keys) ConvList(userID string) string { return k.user("convs", userID) }
