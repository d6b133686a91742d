package chatstate

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestEntryValidate(t *testing.T) {
	edit := Message{ID: "e1", ConversationID: "c1", SenderID: "u1", Type: TypeEdit, Content: "new", Seq: 5, CreatedAt: 1, Target: "m1", TargetSeq: 2}
	react := edit
	react.Type, react.Content, react.Remove = TypeReaction, "👍🏽", true
	del := edit
	del.Type, del.Content = TypeDelete, ""
	members := Message{ID: "e2", ConversationID: "c1", SenderID: "chatstate", Type: TypeMembers, Seq: 6, CreatedAt: 1,
		Members: &MembersChange{Added: []string{"u2"}, Removed: []string{}}}
	for _, m := range []Message{edit, react, del, members} {
		if err := m.Validate(16); err != nil {
			t.Fatalf("%s: %v", m.Type, err)
		}
	}
	for name, tc := range map[string]struct {
		base Message
		mut  func(*Message)
		code string
	}{
		"edit without target":        {edit, func(m *Message) { m.Target = "" }, EINVALID},
		"edit without target seq":    {edit, func(m *Message) { m.TargetSeq = 0 }, EINVALID},
		"entry before its target":    {edit, func(m *Message) { m.TargetSeq = 5 }, EINVALID},
		"edit without content":       {edit, func(m *Message) { m.Content = "" }, EINVALID},
		"edit removed":               {edit, func(m *Message) { m.Remove = true }, EINVALID},
		"delete with content":        {del, func(m *Message) { m.Content = "x" }, EINVALID},
		"reaction with a space":      {react, func(m *Message) { m.Content = "a b" }, EINVALID},
		"reaction too long":          {react, func(m *Message) { m.Content = strings.Repeat("x", MaxEmojiBytes+1) }, ETOOLARGE},
		"reaction with members":      {react, func(m *Message) { m.Members = &MembersChange{Added: []string{"u"}} }, EINVALID},
		"members without change":     {members, func(m *Message) { m.Members = &MembersChange{} }, EINVALID},
		"members nil":                {members, func(m *Message) { m.Members = nil }, EINVALID},
		"members with a bad id":      {members, func(m *Message) { m.Members.Added = []string{"a b"} }, EINVALID},
		"members with a target":      {members, func(m *Message) { m.Target = "m1" }, EINVALID},
		"text with a target":         {edit, func(m *Message) { m.Type = "text" }, EINVALID},
		"text with remove":           {Message{ID: "m", ConversationID: "c", SenderID: "u", Type: "text"}, func(m *Message) { m.Remove = true }, EINVALID},
		"text with a members change": {Message{ID: "m", ConversationID: "c", SenderID: "u", Type: "text"}, func(m *Message) { m.Members = &MembersChange{Added: []string{"u"}} }, EINVALID},
	} {
		m := tc.base
		if m.Members != nil {
			c := *m.Members
			m.Members = &c
		}
		tc.mut(&m)
		if err := m.Validate(16); ErrorCode(err) != tc.code {
			t.Errorf("%s: want %s, got %v", name, tc.code, err)
		}
	}
	for _, typ := range []string{TypeSkip, TypeEdit, TypeDelete, TypeReaction, TypeMembers} {
		if err := ValidateClientType(typ); ErrorCode(err) != EINVALID {
			t.Errorf("client type %q: %v, want invalid", typ, err)
		}
	}
	if err := ValidateClientType("image"); err != nil {
		t.Error(err)
	}
}

// Apply is the reference the stores, the cache's Lua and clients follow.
func TestApply(t *testing.T) {
	o := Message{ID: "m", ConversationID: "c", SenderID: "a", Type: "text", Content: "hi", Seq: 1, CreatedAt: 1}
	e := func(typ, sender, content string, remove bool, at int64) Message {
		return Message{Type: typ, SenderID: sender, Content: content, Remove: remove, CreatedAt: at, Target: "m", TargetSeq: 1}
	}
	v := o
	for _, en := range []Message{
		e(TypeReaction, "b", "👍", false, 2), e(TypeReaction, "c", "👍", false, 3), e(TypeReaction, "b", "👍", false, 4),
		e(TypeReaction, "c", "❤", false, 5), e(TypeReaction, "c", "❤", true, 6), e(TypeEdit, "a", "edited", false, 7),
	} {
		v.Apply(en)
	}
	if v.Content != "edited" || v.EditedAt != 7 || v.Reactions == nil || !reflect.DeepEqual(*v.Reactions, Reactions{"👍": {"c", "b"}}) {
		t.Fatalf("after reactions and an edit: %+v %v", v, v.Reactions)
	}
	before := *v.Reactions
	w := v
	w.Apply(e(TypeReaction, "b", "👍", true, 8))
	if !reflect.DeepEqual(before["👍"], []string{"c", "b"}) {
		t.Fatal("Apply changed the reactions of a copy")
	}
	w.Apply(e(TypeReaction, "c", "👍", true, 9))
	if w.Reactions != nil {
		t.Fatalf("no reaction left: %v", *w.Reactions)
	}
	v.Apply(e(TypeDelete, "a", "", false, 10))
	v.Apply(e(TypeEdit, "a", "again", false, 11))
	v.Apply(e(TypeReaction, "b", "🎉", false, 12))
	if !v.Deleted || v.Content != "" || v.EditedAt != 0 || v.Reactions != nil {
		t.Fatalf("deleted: %+v", v)
	}
	b, _ := json.Marshal(v)
	if strings.Contains(string(b), "reactions") || strings.Contains(string(b), "editedAt") || !strings.Contains(string(b), `"deleted":true`) {
		t.Fatalf("deleted JSON %s", b)
	}
}

func TestBuildReactions(t *testing.T) {
	r := BuildReactions([]ReactionPair{
		{"👍", "b", ReactionState(8, false)}, {"👍", "c", ReactionState(3, false)}, {"❤", "c", ReactionState(9, true)},
		{"🎉", "a", ReactionState(4, false)},
	})
	if r == nil || !reflect.DeepEqual(*r, Reactions{"👍": {"c", "b"}, "🎉": {"a"}}) {
		t.Fatalf("BuildReactions = %v", r)
	}
	if BuildReactions([]ReactionPair{{"👍", "b", ReactionState(2, true)}}) != nil || BuildReactions(nil) != nil {
		t.Fatal("no present pair: want nil")
	}
	// A later remove beats an earlier add for the same pair, in either order.
	if ReactionState(5, true) <= ReactionState(4, false) || ReactionState(5, false) <= ReactionState(4, true) {
		t.Fatal("ReactionState is not ordered by seq")
	}
}

func TestApplyMembers(t *testing.T) {
	c := Conversation{ID: "c", Members: []string{"a", "b"}}
	eff, err := c.ApplyMembers(MembersChange{Added: []string{"c", "a"}, Removed: []string{"b", "x"}}, 3)
	if err != nil || !slices.Equal(c.Members, []string{"a", "c"}) || !slices.Equal(eff.Added, []string{"c"}) || !slices.Equal(eff.Removed, []string{"b"}) {
		t.Fatalf("%v %+v %v", c.Members, eff, err)
	}
	for name, ch := range map[string]MembersChange{
		"empty result": {Removed: []string{"a", "c"}},
		"both lists":   {Added: []string{"d"}, Removed: []string{"d"}},
		"bad id":       {Added: []string{"a b"}},
	} {
		cc := c
		if _, err := cc.ApplyMembers(ch, 3); ErrorCode(err) != EINVALID {
			t.Errorf("%s: %v", name, err)
		}
	}
	cc := c
	if _, err := cc.ApplyMembers(MembersChange{Added: []string{"d", "e"}}, 3); ErrorCode(err) != ETOOLARGE {
		t.Errorf("over the limit: %v", err)
	}
	if !slices.Equal(c.Members, []string{"a", "c"}) {
		t.Errorf("a refused change changed the members: %v", c.Members)
	}
}
