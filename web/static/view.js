// DOM builders of the demo page. Every user-supplied string goes in as
// text, never as HTML.

export const QUICK_REACTIONS = ["👍", "❤️", "😂", "😮", "🎉"];

// h builds an element: h("li", { class: "x", dataset: { id } }, child...).
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// hue is a stable colour for a name.
function hue(name) {
  let x = 0;
  for (const ch of name) x = (x * 31 + ch.codePointAt(0)) % 360;
  return x;
}

export function avatar(name, presence) {
  const el = h("span", { class: "avatar", "aria-hidden": "true", text: (name[0] ?? "?").toUpperCase() });
  el.style.setProperty("--hue", hue(name));
  if (presence) el.append(dot(presence));
  return el;
}

// presenceOf is the dot a presence view shows: online, away, busy or
// offline (invisible users look offline to others).
export function presenceOf(p) {
  if (!p || !p.online) return "offline";
  return ["away", "busy"].includes(p.status) ? p.status : "online";
}

export function dot(state) {
  return h("span", { class: "dot", dataset: { presence: state }, title: state });
}

const two = (n) => String(n).padStart(2, "0");

export function clock(ms) {
  const d = new Date(ms);
  return `${two(d.getHours())}:${two(d.getMinutes())}`;
}

// shortTime is a list's time: the clock today, else the date.
export function shortTime(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return clock(ms);
  return d.toLocaleDateString(undefined, { day: "numeric", month: "short" });
}

export function lastSeenText(p, now = Date.now()) {
  const state = presenceOf(p);
  if (state !== "offline") return state;
  if (!p?.lastSeen) return "offline";
  const s = Math.max(0, Math.round((now - p.lastSeen) / 1000));
  if (s < 60) return "last seen just now";
  if (s < 3600) return `last seen ${Math.floor(s / 60)} min ago`;
  if (s < 86400 && new Date(p.lastSeen).toDateString() === new Date(now).toDateString()) return `last seen at ${clock(p.lastSeen)}`;
  return `last seen ${new Date(p.lastSeen).toLocaleDateString(undefined, { day: "numeric", month: "short" })}`;
}

export function title(conv, me) {
  const others = conv.members.filter((u) => u !== me);
  return others.length ? others.join(", ") : me;
}

// conversationItem is one row of the chat list.
export function conversationItem(conv, { me, active, typing, presence }) {
  const others = conv.members.filter((u) => u !== me);
  let preview;
  if (typing.length) preview = h("span", { class: "typing-inline", text: "typing…" });
  else if (conv.lastMessage) {
    const m = conv.lastMessage;
    const who = m.senderId === me ? "You: " : others.length > 1 ? `${m.senderId}: ` : "";
    preview = m.deleted ? h("em", { text: `${who}message deleted` }) : `${who}${m.content}`;
  } else preview = h("em", { text: "no messages yet" });
  const unread = conv.unread > 0 ? h("span", { class: "badge", text: conv.unread >= 1000 ? "999+" : conv.unread }) : null;
  return h("li", {},
    h("button", { class: `conv${active ? " active" : ""}${conv.unread > 0 ? " unread" : ""}`, type: "button", dataset: { conversationId: conv.id } },
      avatar(others[0] ?? me, others.length === 1 ? presence(others[0]) : null),
      h("span", { class: "conv-main" },
        h("span", { class: "conv-top" },
          h("span", { class: "conv-title", text: title(conv, me) }),
          h("span", { class: "conv-time", text: shortTime(conv.lastActivity) })),
        h("span", { class: "conv-bottom" }, h("span", { class: "preview" }, preview), unread))));
}

export function friendItem(id, p, now) {
  const state = presenceOf(p);
  return h("li", {},
    h("button", { class: "friend", type: "button", dataset: { friend: id, presence: state } },
      avatar(id, state),
      h("span", { class: "friend-main" },
        h("span", { class: "friend-name", text: id }),
        h("span", { class: "friend-seen", text: lastSeenText(p, now) }))));
}

const RECEIPT = { pending: "🕓", sent: "✓", read: "✓✓", failed: "!" };

// message is one message of the open conversation; pending is a send not
// acknowledged yet (no seq).
export function message(m, { me, receipt, showName, pending }) {
  const mine = m.senderId === me;
  if (m.type === "members") return membersLine(m);
  const text = m.deleted
    ? h("span", { class: "text deleted", text: "message deleted" })
    : h("span", { class: "text", text: m.content });
  const meta = h("span", { class: "meta" },
    m.editedAt && !m.deleted ? h("span", { class: "edited", text: "edited" }) : null,
    h("time", { text: clock(m.createdAt) }),
    mine ? h("span", { class: "receipt", dataset: { receipt }, title: receipt, text: RECEIPT[receipt] }) : null);
  const bubble = h("div", { class: "bubble" }, showName && !mine ? h("span", { class: "sender", text: m.senderId }) : null, text, meta);
  const li = h("li", {
    class: `msg ${mine ? "mine" : "theirs"}${pending ? " pending" : ""}`,
    dataset: { seq: m.seq ?? "", id: m.id ?? "", clientMessageId: m.clientMessageId ?? "" },
  }, bubble);
  if (pending?.note || pending?.error) li.append(h("span", { class: `note${pending.error ? " error" : ""}`, text: pending.error ?? pending.note }));
  if (m.reactions) {
    li.append(h("div", { class: "reactions" },
      Object.entries(m.reactions).map(([emoji, users]) =>
        h("button", {
          type: "button", class: `chip${users.includes(me) ? " me" : ""}`, title: users.join(", "),
          dataset: { action: "react", emoji, remove: users.includes(me) ? "1" : "" },
        }, `${emoji} ${users.length}`))));
  }
  if (!pending && !m.deleted) {
    li.append(h("div", { class: "actions", role: "toolbar", "aria-label": "message actions" },
      QUICK_REACTIONS.map((emoji) => h("button", {
        type: "button", class: "icon", title: `react ${emoji}`,
        dataset: { action: "react", emoji, remove: m.reactions?.[emoji]?.includes(me) ? "1" : "" },
      }, emoji)),
      mine ? h("button", { type: "button", class: "text-btn", dataset: { action: "edit" }, text: "Edit" }) : null,
      mine ? h("button", { type: "button", class: "text-btn danger", dataset: { action: "delete" }, text: "Delete" }) : null));
  }
  return li;
}

function membersLine(m) {
  const parts = [];
  const who = m.senderId === "chatstate" ? "" : `${m.senderId} `;
  if (m.members?.added?.length) parts.push(`${who}added ${m.members.added.join(", ")}`);
  if (m.members?.removed?.length) parts.push(`${who}removed ${m.members.removed.join(", ")}`);
  return h("li", { class: "system", dataset: { seq: m.seq } }, parts.join("; ") || "members changed");
}

export function typingText(users) {
  if (!users.length) return "";
  if (users.length === 1) return `${users[0]} is typing…`;
  if (users.length === 2) return `${users[0]} and ${users[1]} are typing…`;
  return `${users.length} people are typing…`;
}
