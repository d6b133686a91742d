// Drawing the demo page from its state (app.js owns the state and calls
// these after every change).
import * as view from "./view.js";

const $ = (id) => document.getElementById(id);

const presence = (S, u) => view.presenceOf(S.friends.get(u));

// typers are the users typing in conversation id.
export const typers = (S, id) => [...(S.typing.get(id)?.keys() ?? [])];

export function renderConn(S, text) {
  const el = $("conn");
  const up = S.socket?.connected;
  el.hidden = up;
  el.textContent = up ? "" : text ?? "Connecting…";
}

export function renderConversations(S) {
  const convs = [...S.convs.values()].sort((a, b) => (b.lastActivity ?? 0) - (a.lastActivity ?? 0));
  $("conv-list").replaceChildren(...convs.map((c) =>
    view.conversationItem(c, { me: S.me, active: c.id === S.active, typing: typers(S, c.id), presence: (u) => presence(S, u) })));
  $("conv-empty").hidden = convs.length > 0;
  $("conv-more").hidden = !S.cursor;
}

export function renderFriends(S) {
  const now = Date.now();
  const ids = [...S.friends.keys()].sort();
  $("friend-list").replaceChildren(...ids.map((id) => view.friendItem(id, S.friends.get(id), now)));
  $("friend-empty").hidden = ids.length > 0;
}

export function renderHeader(S) {
  const conv = S.convs.get(S.active);
  $("thread-empty").hidden = !!S.active;
  $("thread-view").hidden = !S.active;
  if (!conv) return;
  const others = conv.members.filter((u) => u !== S.me);
  const one = others.length === 1 ? others[0] : null;
  $("thread-title").textContent = view.title(conv, S.me);
  $("thread-avatar").replaceChildren(view.avatar(one ?? others[0] ?? S.me, one && S.friends.has(one) ? presence(S, one) : null));
  $("thread-sub").textContent = one && S.friends.has(one) ? view.lastSeenText(S.friends.get(one)) : `${conv.members.length} members`;
}

export function renderTyping(S) {
  $("typing").textContent = S.active ? view.typingText(typers(S, S.active)) : "";
}

export function renderHistoryState(t) {
  const el = $("history-state");
  el.textContent = t.atStart ? "Start of the conversation" : t.loadingOlder ? "Loading earlier messages…" : "";
}

// renderThread draws the open conversation, keeping each message's element
// while it is unchanged, and keeps the view where the reader is: at the
// bottom when they were there (or asked: bottom), and on the same message
// when older ones are put above it (prepended).
export function renderThread(S, bottom = false, prepended = false, own = false) {
  renderHeader(S);
  renderTyping(S);
  const t = S.threads.get(S.active);
  const list = $("messages");
  if (!t) return list.replaceChildren($("history-state"));
  const conv = S.convs.get(t.id);
  const members = conv?.members ?? [];
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const oldHeight = list.scrollHeight;
  const oldTop = list.scrollTop;
  const wanted = t.ordered().map((m) => {
    const receipt = m.senderId === S.me ? t.receipt(m, S.me, members) : "";
    return { key: `s${m.seq}`, ver: `${m.version}|${receipt}`, make: () => view.message(m, { me: S.me, receipt, showName: members.length > 2 }) };
  });
  for (const p of S.pending.values()) {
    if (p.conversationId !== t.id) continue;
    const receipt = p.error ? "failed" : "pending";
    wanted.push({ key: `p${p.clientMessageId}`, ver: `${receipt}|${p.note}`, make: () => view.message(p, { me: S.me, receipt, pending: p }) });
  }
  const have = new Map();
  for (const el of list.children) if (el.dataset.key) have.set(el.dataset.key, el);
  let prev = $("history-state");
  if (list.firstElementChild !== prev) list.prepend(prev);
  for (const w of wanted) {
    let el = have.get(w.key);
    have.delete(w.key);
    if (!el || el.dataset.ver !== w.ver) {
      const fresh = w.make();
      fresh.dataset.key = w.key;
      fresh.dataset.ver = w.ver;
      if (el) el.replaceWith(fresh);
      el = fresh;
    }
    if (prev.nextElementSibling !== el) prev.after(el);
    prev = el;
  }
  for (const el of have.values()) el.remove();
  renderHistoryState(t);
  if (prepended) list.scrollTop = oldTop + (list.scrollHeight - oldHeight);
  else if (bottom || own || atBottom) list.scrollTop = list.scrollHeight;
}
