// A conversation's timeline as the demo page holds it: messages by seq,
// timeline entries applied to their targets, deduplicated by seq, so a
// message that arrives twice (live and again in a sync after a reconnect,
// or in an ack and a sync) is drawn once. No DOM here: the browser test
// and node's test runner both import it.

// Entry types that change another message (docs/timeline.md).
export const TARGET_ENTRIES = new Set(["edit", "delete", "reaction"]);

// countsAsUnread is the server's rule: entries and skips never count.
export function countsAsUnread(m) {
  return !TARGET_ENTRIES.has(m.type) && m.type !== "members" && m.type !== "skip";
}

// apply is chatstate.Message.Apply: what entry e does to message m.
export function apply(m, e) {
  if (m.deleted) return;
  switch (e.type) {
    case "edit":
      m.content = e.content;
      m.editedAt = e.createdAt;
      break;
    case "delete":
      m.deleted = true;
      m.content = "";
      delete m.editedAt;
      delete m.reactions;
      break;
    case "reaction": {
      const r = { ...(m.reactions ?? {}) };
      const users = (r[e.content] ?? []).filter((u) => u !== e.senderId);
      if (!e.remove) users.push(e.senderId);
      if (users.length) r[e.content] = users;
      else delete r[e.content];
      if (Object.keys(r).length) m.reactions = r;
      else delete m.reactions;
      break;
    }
  }
  m.version = (m.version ?? 0) + 1;
}

export class Thread {
  constructor(id) {
    this.id = id;
    this.items = new Map(); // seq -> message or members entry: what is drawn
    this.byId = new Map(); // message id -> message
    this.seen = new Set(); // every seq taken in, entries included
    this.waiting = new Map(); // target id -> entries whose target is not loaded
    this.maxSeq = 0; // the highest seq taken in: sync from it after a reconnect
    this.covered = 0; // every seq from covered to maxSeq is loaded (0: nothing)
    this.reads = new Map(); // member -> highest seq it read
    this.atStart = false; // nothing older to load
    this.loaded = false;
  }

  // add takes a message from the live stream, an ack or a forward sync:
  // in seq order, so each entry comes after its target. It returns
  // whether the message was new.
  add(m) {
    if (this.seen.has(m.seq)) return false;
    this.seen.add(m.seq);
    this.maxSeq = Math.max(this.maxSeq, m.seq);
    if (!this.covered) this.covered = m.seq;
    if (TARGET_ENTRIES.has(m.type)) {
      const target = this.byId.get(m.target);
      if (target) apply(target, m);
      else this.wait(m);
      return true;
    }
    this.keep(m);
    return true;
  }

  // addOlder takes a page of history from before covered. Its originals
  // are in their final state as of the read, which came after every entry
  // this thread holds, so its own entries are already in them; entries
  // that came before their target are applied again, in seq order, which
  // leaves the state unchanged (apply is idempotent on a final state).
  addOlder(msgs, from) {
    for (const m of msgs) {
      if (this.seen.has(m.seq) || m.seq >= this.covered) continue;
      this.seen.add(m.seq);
      if (TARGET_ENTRIES.has(m.type)) continue;
      this.keep(m);
    }
    this.covered = Math.min(this.covered || from, from);
    if (from <= 1) this.atStart = true;
  }

  keep(m) {
    const msg = { ...m, version: 0 };
    const entries = this.waiting.get(msg.id);
    if (entries) {
      for (const e of entries) apply(msg, e);
      this.waiting.delete(msg.id);
    }
    this.items.set(msg.seq, msg);
    this.byId.set(msg.id, msg);
  }

  wait(e) {
    const list = this.waiting.get(e.target) ?? [];
    list.push(e);
    this.waiting.set(e.target, list);
  }

  // read records that user read up to seq (receipts only move forward).
  read(user, seq) {
    if (seq > (this.reads.get(user) ?? 0)) {
      this.reads.set(user, seq);
      return true;
    }
    return false;
  }

  // receipt is how far the others got with message m of me: "read" when
  // every other member read it, else "sent" (it is stored: it has a seq).
  receipt(m, me, members) {
    const others = members.filter((u) => u !== me);
    if (others.length && others.every((u) => (this.reads.get(u) ?? 0) >= m.seq)) return "read";
    return "sent";
  }

  // ordered is what to draw, oldest first.
  ordered() {
    return [...this.items.values()].sort((a, b) => a.seq - b.seq);
  }

  // hasClientMessage reports whether me's send with this clientMessageId
  // is in the thread (a sync may bring it before its ack).
  hasClientMessage(me, clientMessageId) {
    for (const m of this.items.values()) {
      if (m.senderId === me && m.clientMessageId === clientMessageId) return true;
    }
    return false;
  }
}
