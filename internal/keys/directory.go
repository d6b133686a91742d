package keys

// Members is the member set of a conversation in the interim Redis directory
// (until the persistence store owns membership).
func (k Keys) Members(convID string) string { return k.conv("members", convID) }

// Friendships is a user's authoritative friend set in the interim Redis
// directory. friends:{u:..} is the expiring cache of the design; this one
// does not expire.
func (k Keys) Friendships(userID string) string { return k.user("friendships", userID) }

// UserChannel is the Pub/Sub channel a gateway node subscribes to while it
// holds sockets of the user.
func (k Keys) UserChannel(userID string) string { return k.user("user", userID) }
