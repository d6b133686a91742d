package cache

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/redis/rueidis"
)

func testMessagesPublish(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	ch1, ch2 := e.prefix+"ch1", e.prefix+"ch2"
	var (
		mu  sync.Mutex
		got = map[string][]string{}
	)
	sub, release := e.client.Dedicate()
	defer release()
	probed := map[string]bool{}
	sub.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: func(m rueidis.PubSubMessage) {
		mu.Lock()
		defer mu.Unlock()
		if m.Message == "probe" {
			probed[m.Channel] = true
			return
		}
		got[m.Channel] = append(got[m.Channel], m.Message)
	}})
	must(t, sub.Do(e.ctx, sub.B().Subscribe().Channel(ch1, ch2).Build()).Error())
	// Wait until both subscriptions are live: probes arrive.
	eventually(t, 5*time.Second, "subscriptions", func() bool {
		for _, ch := range []string{ch1, ch2} {
			e.do(e.client.B().Publish().Channel(ch).Message("probe").Build())
		}
		mu.Lock()
		defer mu.Unlock()
		return probed[ch1] && probed[ch2]
	})

	pub := Publish{Channels: []string{ch1, ch2}, Prefix: "<", Suffix: ">"}
	msgs := []chatstate.Message{}
	for i := 0; i < 3; i++ {
		m, dup, err := e.c.AddMessageAndPublish(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "hi", ClientMessageID: "cm" + itoa(int64(i))}, pub)
		must(t, err)
		if dup {
			t.Fatal("first send reported duplicate")
		}
		msgs = append(msgs, m)
	}
	// A duplicate is not published again.
	if _, dup, err := e.c.AddMessageAndPublish(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "hi", ClientMessageID: "cm0"}, pub); err != nil || !dup {
		t.Fatalf("resend: dup=%v err=%v", dup, err)
	}
	// Barrier: one more publication after the duplicate.
	last, _, err := e.c.AddMessageAndPublish(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "last"}, pub)
	must(t, err)
	msgs = append(msgs, last)
	eventually(t, 5*time.Second, "publications", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got[ch1]) >= 4 && len(got[ch2]) >= 4
	})
	mu.Lock()
	defer mu.Unlock()
	for _, ch := range []string{ch1, ch2} {
		if len(got[ch]) != 4 {
			t.Fatalf("%s got %d publications, want 4 (no duplicate)", ch, len(got[ch]))
		}
		for i, p := range got[ch] {
			if p[0] != '<' || p[len(p)-1] != '>' {
				t.Fatalf("payload %q not wrapped", p)
			}
			var m chatstate.Message
			must(t, json.Unmarshal([]byte(p[1:len(p)-1]), &m))
			if m != msgs[i] {
				t.Fatalf("publication %d on %s = %+v, want the stored %+v (in seq order)", i, ch, m, msgs[i])
			}
		}
	}
}
