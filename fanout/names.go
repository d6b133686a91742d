package fanout

import (
	"strings"

	"github.com/chatstate/chatstate/internal/keys"
)

// names builds the channel names of one key prefix and routes a
// publication by its channel, for both brokers.
type names struct {
	keys keys.Keys
	// userPrefix and convPrefix start the channel names of users and
	// conversations ("<prefix>user:{u:", "<prefix>conv:{c:").
	userPrefix, convPrefix string
}

func newNames(keyPrefix string) names {
	k := keys.New(keyPrefix)
	return names{keys: k,
		userPrefix: strings.TrimSuffix(k.UserChannel(""), "}"),
		convPrefix: strings.TrimSuffix(k.ConversationChannel(""), "}")}
}

// convChannels names the channels of convIDs.
func (n names) convChannels(convIDs []string) []string {
	chs := make([]string, len(convIDs))
	for i, c := range convIDs {
		chs[i] = n.keys.ConversationChannel(c)
	}
	return chs
}

// route hands a publication to h by its channel's kind.
func (n names) route(h Handler, ch, msg string) {
	if id, ok := strings.CutPrefix(ch, n.convPrefix); ok && h.Conversation != nil {
		h.Conversation(strings.TrimSuffix(id, "}"), msg)
	} else if id, ok := strings.CutPrefix(ch, n.userPrefix); ok && h.Message != nil {
		h.Message(strings.TrimSuffix(id, "}"), msg)
	}
}
