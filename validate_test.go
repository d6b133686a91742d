package chatstate

import (
	"strings"
	"testing"
	"time"
)

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "alice@example.com", "u_1-2.3", strings.Repeat("x", MaxIDLen)} {
		if err := ValidateID("id", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "has space", "a{b}", "a:b", "é", "a\x00", strings.Repeat("x", MaxIDLen+1)} {
		if err := ValidateID("id", bad); ErrorCode(err) != EINVALID {
			t.Errorf("%q: want invalid, got %v", bad, err)
		}
	}
	ids, err := ValidateIDs("ids", []string{"b", "a", "b"}, 3)
	if err != nil || len(ids) != 2 || ids[0] != "b" || ids[1] != "a" {
		t.Errorf("dedupe keeps first order: %v %v", ids, err)
	}
	if _, err := ValidateIDs("ids", []string{"a", "b"}, 1); ErrorCode(err) != ETOOLARGE {
		t.Errorf("over max: %v", err)
	}
}

func TestMessageValidate(t *testing.T) {
	good := Message{ID: "m1", ConversationID: "c1", SenderID: "u1", Type: "text", Content: "hi 👋", Seq: 1, CreatedAt: 1}
	if err := good.Validate(16); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		mut  func(*Message)
		code string
	}{
		"no conversation":  {func(m *Message) { m.ConversationID = "" }, EINVALID},
		"bad sender":       {func(m *Message) { m.SenderID = "a b" }, EINVALID},
		"no type":          {func(m *Message) { m.Type = "" }, EINVALID},
		"bad client id":    {func(m *Message) { m.ClientMessageID = "x{" }, EINVALID},
		"negative seq":     {func(m *Message) { m.Seq = -1 }, EINVALID},
		"seq too large":    {func(m *Message) { m.Seq = MaxSeq }, EINVALID},
		"content too long": {func(m *Message) { m.Content = strings.Repeat("x", 17) }, ETOOLARGE},
		"invalid utf-8":    {func(m *Message) { m.Content = "\xff" }, EINVALID},
	} {
		m := good
		tc.mut(&m)
		if err := m.Validate(16); ErrorCode(err) != tc.code {
			t.Errorf("%s: want %s, got %v", name, tc.code, err)
		}
	}
}

func TestErrorPayload(t *testing.T) {
	p := Payload(&Error{Code: ERATELIMITED, Message: "slow down", RetryAfter: 1500 * 1e6})
	if p.Code != ERATELIMITED || p.Message != "slow down" || p.RetryAfterMs != 1500 {
		t.Errorf("%+v", p)
	}
	if p := Payload(errPlain("boom: 10.0.0.1:6379")); p.Code != EINTERNAL || p.Message != "internal error" {
		t.Errorf("internal errors must not leak: %+v", p)
	}
}

type errPlain string

func (e errPlain) Error() string { return string(e) }

func TestConversationNormalize(t *testing.T) {
	now := time.UnixMilli(1700000000000)
	c := Conversation{ID: "c1", Members: []string{"b", "a", "b"}}
	if err := c.Normalize(2, now); err != nil || len(c.Members) != 2 || c.Members[0] != "b" || c.CreatedAt != now.UnixMilli() {
		t.Fatalf("%+v %v", c, err)
	}
	for name, bad := range map[string]Conversation{
		"bad id":      {ID: "c 1", Members: []string{"a"}},
		"no members":  {ID: "c1"},
		"bad member":  {ID: "c1", Members: []string{"a{"}},
		"negative at": {ID: "c1", Members: []string{"a"}, CreatedAt: -1},
	} {
		if err := bad.Normalize(2, now); ErrorCode(err) != EINVALID {
			t.Errorf("%s: %v", name, err)
		}
	}
	too := Conversation{ID: "c1", Members: []string{"a", "b", "c"}}
	if err := too.Normalize(2, now); ErrorCode(err) != ETOOLARGE {
		t.Errorf("too many members: %v", err)
	}
}
