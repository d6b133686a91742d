package keys

import "testing"

func TestKeys(t *testing.T) {
	k := New("app:")
	tests := []struct {
		got, want string
	}{
		{k.Presence("alice"), "app:presence:{u:alice}"},
		{k.OnlineUsers(), "app:online:users"},
		{k.Nodes(), "app:nodes"},
		{k.NodeInfo(), "app:nodeinfo:{app:nodes}"},
		{k.TypingPattern(), "app:typing:{c:*}"},
		{New("a*:").Pattern(), `a\*:*`},
		{k.Socket("s1"), "app:socket:{s:s1}"},
		{k.Typing("c1"), "app:typing:{c:c1}"},
		{k.Messages("c1"), "app:messages:{c:c1}"},
		{k.Seq("c1"), "app:seq:{c:c1}"},
		{k.Dedupe("c1"), "app:dedupe:{c:c1}"},
		{k.Restored("c1"), "app:restored:{c:c1}"},
		{k.Pending("c1"), "app:pending:{c:c1}"},
		{k.Ready("c1"), "app:ready:{c:c1}"},
		{k.SessionsPattern(), "app:sessions:{u:*}"},
		{New("a*[b]?:").SessionsPattern(), `a\*\[b\]\?:sessions:{u:*}`},
		{k.Sessions("alice"), "app:sessions:{u:alice}"},
		{k.Friends("alice"), "app:friends:{u:alice}"},
		{k.Notifications("alice"), "app:notifications:{u:alice}"},
		{k.RateLimit("alice", "message"), "app:rate_limit:{u:alice}:message"},
		{k.SecurityLog("alice"), "app:security_log:{u:alice}"},
		{k.KnownDevices("alice"), "app:known_devices:{u:alice}"},
		{k.Lock("sweep"), "app:lock:sweep"},
		{k.PushJobs(), "app:pushq:{pushq}:jobs"},
		{k.PushPending("high"), "app:pushq:{pushq}:pending:high"},
		{k.PushLeased(), "app:pushq:{pushq}:leased"},
		{k.PushRetry(), "app:pushq:{pushq}:retry"},
		{k.PushAttempts(), "app:pushq:{pushq}:attempts"},
		{k.PushDone(), "app:pushq:{pushq}:done"},
		{k.PushDead(), "app:pushq:{pushq}:dead"},
		{k.Members("c1"), "app:members:{c:c1}"},
		{k.Reads("c1"), "app:reads:{c:c1}"},
		{k.Summary("c1"), "app:summary:{c:c1}"},
		{k.Counted("c1"), "app:counted:{c:c1}"},
		{k.ConvList("alice"), "app:convs:{u:alice}"},
		{k.UserChannel("alice"), "app:user:{u:alice}"},
		{k.ConversationChannel("c1"), "app:conv:{c:c1}"},
		{New("").Presence("bob"), "presence:{u:bob}"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// Keys that one script touches together must share a slot.
func TestSameSlot(t *testing.T) {
	k := New("p:")
	groups := [][]string{
		{k.Presence("alice"), k.Sessions("alice"), k.Friends("alice"),
			k.Notifications("alice"), k.RateLimit("alice", "x"), k.SecurityLog("alice"), k.KnownDevices("alice"), k.ConvList("alice")},
		{k.PushJobs(), k.PushPending("high"), k.PushPending("normal"), k.PushLeased(), k.PushRetry(), k.PushAttempts(), k.PushDone(), k.PushDead()},
		{k.Typing("c9"), k.Messages("c9"), k.Seq("c9"), k.Dedupe("c9"), k.Restored("c9"), k.Pending("c9"), k.Ready("c9"),
			k.Reads("c9"), k.Summary("c9"), k.Counted("c9"), k.ConversationChannel("c9")},

		{k.Nodes(), k.NodeInfo()},
		{New("").Nodes(), New("").NodeInfo()},
	}
	for _, g := range groups {
		for _, key := range g[1:] {
			if Slot(key) != Slot(g[0]) {
				t.Errorf("%s slot %d != %s slot %d", key, Slot(key), g[0], Slot(g[0]))
			}
		}
	}
	if Slot(k.Presence("alice")) == Slot(k.Presence("bob")) {
		t.Errorf("different users should (for these ids) land on different slots")
	}
}

func TestSlotKnownValues(t *testing.T) {
	// Values from the Redis Cluster spec and CLUSTER KEYSLOT.
	for key, want := range map[string]uint16{"123456789": 12739, "foo": 12182, "{user1000}.following": 3443} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestSessionsUser(t *testing.T) {
	k := New("app:")
	if u, ok := k.SessionsUser(k.Sessions("alice")); !ok || u != "alice" {
		t.Errorf("got %q %v", u, ok)
	}
	for _, bad := range []string{"app:sessions:{u:}", "app:friends:{u:alice}", "other:sessions:{u:alice}", "app:sessions:{u:alice"} {
		if u, ok := k.SessionsUser(bad); ok {
			t.Errorf("%q: got %q, want no match", bad, u)
		}
	}
}

func TestKind(t *testing.T) {
	k := New("app:")
	for key, want := range map[string]string{
		k.Presence("a"): "presence", k.OnlineUsers(): "online", k.Nodes(): "nodes", k.NodeInfo(): "nodeinfo",
		k.Typing("c"): "typing", k.PushJobs(): "pushq", k.Lock("x"): "lock", k.RateLimit("a", "m"): "rate_limit",
		k.Sessions("a"): "sessions", "app:unknown:x": "other", "other:presence:{u:a}": "other",
	} {
		if got := k.Kind(key); got != want {
			t.Errorf("Kind(%q) = %q, want %q", key, got, want)
		}
	}
}
