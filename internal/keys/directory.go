package keys

// Members is the cached member set of a conversation (cache-aside from the
// persistence store, 2 h).
func (k Keys) Members(convID string) string { return k.conv("members", convID) }

// UserChannel is the Pub/Sub channel a gateway node subscribes to while it
// holds sockets of the user.
func (k Keys) UserChannel(userID string) string { return k.user("user", userID) }

// ConversationChannel is the Pub/Sub channel a conversation's messages are
// published to, once per message: a node subscribes to it while it holds a
// socket of a member. It is in the conversation's slot, so on a Cluster the
// commit script can SPUBLISH it as a shard channel.
func (k Keys) ConversationChannel(convID string) string { return k.conv("conv", convID) }
