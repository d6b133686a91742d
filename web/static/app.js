// The demo chat (docs/demo.md): one Socket.IO connection with the
// official client, every feature through the documented events, and the
// client rule of docs/delivery.md: keep the highest seq of every open
// conversation, sync from it after every (re)connect or resync, resend
// unacknowledged sends with the same clientMessageId, draw each seq once.
import { io } from "./socket.io.esm.min.js";
import { Thread, countsAsUnread, apply, TARGET_ENTRIES } from "./thread.js";
import * as view from "./view.js";
import * as R from "./render.js";

const PAGE = 30; // messages per history page
const SYNC_LIMIT = 100; // the server's largest sync page
const ACK_TIMEOUT = 10000; // the server answers within 5 s; twice that before a resend
const TYPING_RENEW = 3000; // typing:start again while typing, within the server's TTL
const TYPING_IDLE = 5000; // typing:stop after this long without a key
const TYPING_SHOWN = 15000; // drop a typing indicator whose stop was lost
const AUTH_KEY = "chatstate.demo.auth";
const DEVICE_KEY = "chatstate.demo.device";
const STATUS_KEY = "chatstate.demo.status";

const $ = (id) => document.getElementById(id);
const S = {
  cfg: {}, me: null, token: null, deviceId: null, socket: null, status: "online",
  convs: new Map(), cursor: null, friends: new Map(), threads: new Map(),
  typing: new Map(), // conversation -> Map(user -> timer)
  pending: new Map(), // clientMessageId -> a send not acknowledged yet
  active: null, editing: null, typingTo: null, typingAt: 0, typingIdle: 0, mintedAt: 0,
};

function randomId() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

let toastTimer = 0;
function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), 5000);
}

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (S.token) headers.Authorization = `Bearer ${S.token}`;
  const res = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(data.error?.message ?? `HTTP ${res.status}`), { code: data.error?.code });
  return data;
}

// ack emits with an acknowledgement; a timeout answers null.
async function ack(event, payload) {
  try {
    return await S.socket.timeout(ACK_TIMEOUT).emitWithAck(event, payload);
  } catch {
    return null;
  }
}

// ---- sign-in ----

function showSignIn(error = "") {
  $("app").hidden = true;
  $("signin").hidden = false;
  const mint = S.cfg.mintsTokens;
  $("name-field").hidden = !mint;
  $("token-field").hidden = mint;
  $("signin-name").required = mint;
  $("signin-token").required = !mint;
  $("signin-hint").textContent = mint
    ? "Development mode: sign in as any user name and the server mints your token. Open a second window as someone else to chat with yourself."
    : "Paste a client token (a JWT whose sub is your user id) from your identity service. This server does not mint tokens.";
  $("signin-error").textContent = error;
  (mint ? $("signin-name") : $("signin-token")).focus();
}

function subjectOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part)).sub ?? null;
  } catch {
    return null;
  }
}

async function mint(userId) {
  const res = await api("POST", "/demo/token", { userId });
  S.mintedAt = Date.now();
  return res.token;
}

async function onSignIn(ev) {
  ev.preventDefault();
  $("signin-error").textContent = "";
  try {
    let userId, token;
    if (S.cfg.mintsTokens) {
      userId = $("signin-name").value.trim();
      token = await mint(userId);
    } else {
      token = $("signin-token").value.trim();
      userId = subjectOf(token);
      if (!userId) throw new Error("that is not a JWT with a sub claim");
    }
    start(userId, token);
  } catch (err) {
    $("signin-error").textContent = err.message;
  }
}

function start(userId, token) {
  S.me = userId;
  S.token = token;
  sessionStorage.setItem(AUTH_KEY, JSON.stringify({ userId, token }));
  $("signin").hidden = true;
  $("app").hidden = false;
  $("me-name").textContent = userId;
  $("me-avatar").replaceWith(Object.assign(view.avatar(userId), { id: "me-avatar" }));
  $("me-status").value = S.status;
  $("start-form").hidden = !S.cfg.startsConversations;
  connect();
}

function signOut(message = "") {
  sessionStorage.removeItem(AUTH_KEY);
  S.socket?.close();
  S.socket = null;
  Object.assign(S, { me: null, token: null, active: null, editing: null, cursor: null });
  for (const m of [S.convs, S.friends, S.threads, S.pending]) m.clear();
  for (const users of S.typing.values()) for (const t of users.values()) clearTimeout(t);
  S.typing.clear();
  $("conv-list").replaceChildren();
  $("friend-list").replaceChildren();
  showSignIn(message);
}

// ---- connection ----

function connect() {
  const socket = io({
    auth: (cb) => cb({ token: S.token, deviceId: S.deviceId }),
    transports: ["websocket"],
  });
  S.socket = socket;
  socket.on("connect", onConnect);
  socket.on("disconnect", (reason) => {
    renderConn(reason === "io server disconnect" ? "Disconnected by the server" : "Reconnecting…");
    stopTyping(false);
  });
  socket.on("connect_error", onConnectError);
  socket.on("message:new", ({ message }) => onMessage(message));
  socket.on("typing", onTyping);
  socket.on("receipt", onReceipt);
  socket.on("presence", (p) => {
    if (!S.friends.has(p.userId)) return;
    S.friends.set(p.userId, p);
    renderFriends();
    renderConversations();
    renderHeader();
  });
  socket.on("resync", () => syncAll());
  socket.on("token:expired", onTokenExpired);
  socket.on("session:revoked", () => signOut("An operator revoked this session. Sign in again."));
  socket.on("demo:conversation", () => {
    loadConversations();
    loadFriends();
  });
}

async function onConnect() {
  renderConn();
  await Promise.all([loadConversations(), loadFriends()]);
  if (S.status !== "online") await ack("presence:update", { status: S.status });
  await syncAll();
  markRead();
}

async function onConnectError(err) {
  const socket = S.socket;
  if (!socket) return;
  if (err.message === "unauthorized") {
    if (S.cfg.mintsTokens && Date.now() - S.mintedAt > 10000) {
      // An expired token: development mode signs a new one.
      try {
        S.token = await mint(S.me);
        sessionStorage.setItem(AUTH_KEY, JSON.stringify({ userId: S.me, token: S.token }));
        socket.connect();
        return;
      } catch (e) {
        return signOut(e.message);
      }
    }
    return signOut("The server refused the token.");
  }
  renderConn(`Can't connect (${err.message}): retrying…`);
  if (!socket.active) {
    // Refused by the server rather than unreachable: socket.io-client
    // leaves the retry to us.
    await delay(err.data?.retryAfterMs ?? 2000);
    if (S.socket === socket) socket.connect();
  }
}

async function onTokenExpired() {
  if (!S.cfg.mintsTokens) return signOut("Your token expired. Sign in again.");
  const socket = S.socket;
  S.token = await mint(S.me);
  sessionStorage.setItem(AUTH_KEY, JSON.stringify({ userId: S.me, token: S.token }));
  // The server disconnects this socket now and leaves reconnecting to us.
  socket.once("disconnect", () => socket.connect());
}

// syncAll catches every open conversation up from its last seq.
async function syncAll() {
  await Promise.all([...S.threads.values()].map((t) => syncForward(t)));
  renderThread();
}

// syncForward syncs t from its highest seq until the server has no more;
// a call while one runs makes that one go round again.
function syncForward(t) {
  if (t.syncing) {
    t.syncAgain = true;
    return t.syncing;
  }
  t.syncing = (async () => {
    try {
      do {
        t.syncAgain = false;
        await syncFrom(t, t.maxSeq);
      } while (t.syncAgain);
    } finally {
      t.syncing = null;
    }
  })();
  return t.syncing;
}

async function syncFrom(t, afterSeq) {
  for (;;) {
    const res = await ack("messages:sync", { conversationId: t.id, afterSeq, limit: SYNC_LIMIT });
    if (!res?.ok) {
      if (res) toast(`sync: ${res.error.message}`);
      return;
    }
    for (const m of res.messages) onMessage(m);
    for (const [u, seq] of Object.entries(res.reads ?? {})) t.read(u, seq);
    if (res.messages.length < SYNC_LIMIT) return;
    afterSeq = res.messages.at(-1).seq;
  }
}

// ---- data ----

async function loadConversations(more = false) {
  const res = await ack("conversations:list", { limit: 50, cursor: more ? S.cursor : undefined });
  if (!res?.ok) return;
  if (!more) S.convs.clear();
  for (const c of res.conversations) S.convs.set(c.id, c);
  S.cursor = res.cursor;
  renderConversations();
  renderHeader();
}

async function loadFriends() {
  try {
    const { friends } = await api("GET", "/demo/friends");
    const res = friends.length ? await ack("presence:get", { userIds: friends }) : { ok: true, presence: {} };
    S.friends = new Map(friends.map((f) => [f, res?.presence?.[f] ?? null]));
  } catch (err) {
    toast(`friends: ${err.message}`);
  }
  renderFriends();
  renderConversations();
  renderHeader();
}

// onMessage takes a message or entry from anywhere (live, ack, sync).
function onMessage(m) {
  if (m.senderId === S.me && S.pending.has(m.clientMessageId)) S.pending.delete(m.clientMessageId);
  const conv = S.convs.get(m.conversationId);
  if (conv) summarize(conv, m);
  else scheduleListRefresh();
  const t = S.threads.get(m.conversationId);
  if (t?.add(m) && m.conversationId === S.active) renderThread();
  if (countsAsUnread(m)) clearTyping(m.conversationId, m.senderId);
  markRead();
}

// summarize updates a list entry by the server's rules (README,
// Conversation list).
function summarize(conv, m) {
  if (m.seq <= conv.lastSeq) return;
  conv.lastSeq = m.seq;
  if (TARGET_ENTRIES.has(m.type)) {
    if (conv.lastMessage?.id === m.target) apply(conv.lastMessage, m);
  } else if (m.type === "members") {
    conv.lastActivity = m.createdAt;
    const gone = new Set(m.members?.removed ?? []);
    conv.members = [...conv.members.filter((u) => !gone.has(u)), ...(m.members?.added ?? []).filter((u) => !conv.members.includes(u))];
  } else if (countsAsUnread(m)) {
    conv.lastMessage = { ...m };
    conv.lastActivity = m.createdAt;
    if (m.senderId === S.me) conv.readSeq = m.seq;
    else if (!(m.conversationId === S.active && document.visibilityState === "visible")) conv.unread = (conv.unread ?? 0) + 1;
  }
  renderConversations();
}

let refreshTimer = 0;
function scheduleListRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    loadConversations();
    loadFriends();
  }, 100);
}

// markRead reports the open conversation read up to its highest seq.
async function markRead() {
  const id = S.active;
  const t = S.threads.get(id);
  const conv = S.convs.get(id);
  if (!t?.loaded || !conv || t.reading || document.visibilityState !== "visible" || !S.socket?.connected) return;
  if (t.maxSeq <= (conv.readSeq ?? 0)) return;
  const seq = t.maxSeq;
  t.reading = true;
  const res = await ack("message:read", { conversationId: id, seq });
  t.reading = false;
  if (!res?.ok) return;
  conv.readSeq = Math.max(conv.readSeq ?? 0, res.readSeq);
  conv.unread = 0;
  renderConversations();
  if (t.maxSeq > seq) markRead();
}

function onReceipt({ conversationId, userId, seq }) {
  const t = S.threads.get(conversationId);
  if (t?.read(userId, seq) && conversationId === S.active) renderThread();
  const conv = S.convs.get(conversationId);
  if (userId === S.me && conv && seq >= conv.lastSeq) {
    // Read on another device of mine.
    conv.readSeq = seq;
    conv.unread = 0;
    renderConversations();
  }
}

function onTyping({ conversationId, userId, typing }) {
  if (userId === S.me) return;
  if (!typing) return clearTyping(conversationId, userId);
  const users = S.typing.get(conversationId) ?? new Map();
  clearTimeout(users.get(userId));
  users.set(userId, setTimeout(() => clearTyping(conversationId, userId), TYPING_SHOWN));
  S.typing.set(conversationId, users);
  renderTyping();
  renderConversations();
}

function clearTyping(conversationId, userId) {
  const users = S.typing.get(conversationId);
  if (!users?.has(userId)) return;
  clearTimeout(users.get(userId));
  users.delete(userId);
  renderTyping();
  renderConversations();
}

// ---- actions ----

async function openConversation(id) {
  stopTyping();
  cancelEdit();
  S.active = id;
  document.body.classList.add("in-thread");
  let t = S.threads.get(id);
  if (!t) {
    t = new Thread(id);
    S.threads.set(id, t);
  }
  renderConversations();
  renderThread(true);
  if (!t.loaded) {
    const last = S.convs.get(id)?.lastSeq ?? 0;
    const after = Math.max(0, last - PAGE);
    t.covered = after + 1;
    t.atStart = after === 0;
    await syncFrom(t, after);
    t.loaded = true;
    renderThread(true);
    fillScreen(t);
  }
  markRead();
  $("compose").focus({ preventScroll: true });
}

function closeConversation() {
  stopTyping();
  cancelEdit();
  S.active = null;
  document.body.classList.remove("in-thread");
  renderConversations();
  renderThread();
}

// loadOlder pages back through history with messages:sync from a lower
// seq: the server reads its cache of recent messages, then the store.
async function loadOlder(t) {
  if (t.atStart || t.loadingOlder || !t.loaded) return;
  t.loadingOlder = true;
  renderHistoryState(t);
  const before = t.covered;
  const after = Math.max(0, before - 1 - PAGE);
  const res = await ack("messages:sync", { conversationId: t.id, afterSeq: after, limit: before - 1 - after });
  t.loadingOlder = false;
  if (!res?.ok) {
    renderHistoryState(t);
    if (res) toast(`history: ${res.error.message}`);
    return;
  }
  t.addOlder(res.messages.filter((m) => m.seq < before), after + 1);
  if (t.id === S.active) renderThread(false, true);
  fillScreen(t);
}

// fillScreen loads older pages until the list can scroll.
function fillScreen(t) {
  const list = $("messages");
  if (t.id === S.active && !t.atStart && list.scrollHeight <= list.clientHeight + 40) loadOlder(t);
}

async function startConversation(name) {
  try {
    const { conversation } = await api("POST", "/demo/conversations", { with: name });
    await Promise.all([loadConversations(), loadFriends()]);
    if (!S.convs.has(conversation.id)) S.convs.set(conversation.id, { ...conversation, lastSeq: 0, readSeq: 0, unread: 0, lastMessage: null, lastActivity: Date.now() });
    openConversation(conversation.id);
  } catch (err) {
    toast(err.message);
  }
}

// openWith opens the one-to-one conversation with a friend.
function openWith(friend) {
  for (const c of S.convs.values()) {
    if (c.members.length === 2 && c.members.includes(friend)) return openConversation(c.id);
  }
  if (S.cfg.startsConversations) return startConversation(friend);
  toast(`No conversation with ${friend} yet: your app backend creates conversations.`);
}

async function send(conversationId, content) {
  const p = { clientMessageId: randomId(), conversationId, senderId: S.me, content, type: "text", createdAt: Date.now(), note: "" };
  S.pending.set(p.clientMessageId, p);
  renderThread(false, false, true);
  for (let attempt = 1; ; attempt++) {
    const res = await ack("message:send", { conversationId, clientMessageId: p.clientMessageId, content });
    if (!S.pending.has(p.clientMessageId)) return; // a sync brought it
    if (res?.ok) return onMessage(res.message);
    const code = res?.error?.code;
    if ((res && code !== "unavailable" && code !== "rate_limited") || attempt >= 8) {
      p.error = `not sent: ${res?.error?.message ?? "no answer"}`;
      return renderThread();
    }
    const wait = res?.error?.retryAfterMs ?? 1000;
    p.note = code === "rate_limited" ? `too many messages: retrying in ${Math.ceil(wait / 1000)} s` : "retrying…";
    renderThread();
    // Resend with the same clientMessageId: the server stores it once.
    await delay(wait);
  }
}

async function entry(event, payload) {
  const res = await ack(event, { conversationId: S.active, ...payload });
  if (res?.ok) onMessage(res.message);
  else toast(res ? res.error.message : "no answer from the server");
}

function onCompose(ev) {
  ev.preventDefault();
  const input = $("compose");
  const text = input.value.trim();
  if (!text || !S.active) return;
  input.value = "";
  if (S.editing) {
    const id = S.editing;
    cancelEdit();
    return entry("message:edit", { messageId: id, content: text });
  }
  stopTyping();
  send(S.active, text);
}

function onComposeInput() {
  if (S.editing || !S.active || !S.socket?.connected) return;
  if (!$("compose").value.trim()) return stopTyping();
  const now = Date.now();
  if (S.typingTo !== S.active || now - S.typingAt > TYPING_RENEW) {
    if (S.typingTo && S.typingTo !== S.active) stopTyping();
    S.socket.volatile.emit("typing:start", { conversationId: S.active });
    S.typingTo = S.active;
    S.typingAt = now;
  }
  clearTimeout(S.typingIdle);
  S.typingIdle = setTimeout(stopTyping, TYPING_IDLE);
}

function stopTyping(tell = true) {
  clearTimeout(S.typingIdle);
  if (!S.typingTo) return;
  if (tell) S.socket?.volatile.emit("typing:stop", { conversationId: S.typingTo });
  S.typingTo = null;
}

function startEdit(m) {
  S.editing = m.id;
  $("editing").hidden = false;
  $("compose").value = m.content;
  $("compose").focus();
}

function cancelEdit() {
  S.editing = null;
  $("editing").hidden = true;
}

function onMessageClick(ev) {
  const btn = ev.target.closest("button[data-action]");
  const li = ev.target.closest("li.msg");
  if (!li) return;
  if (!btn) {
    // Touch screens have no hover: a tap shows the message's actions.
    for (const o of document.querySelectorAll("li.msg.open")) if (o !== li) o.classList.remove("open");
    li.classList.toggle("open");
    return;
  }
  const t = S.threads.get(S.active);
  const m = t?.byId.get(li.dataset.id);
  if (!m) return;
  li.classList.remove("open");
  switch (btn.dataset.action) {
    case "react":
      return entry("message:react", { messageId: m.id, emoji: btn.dataset.emoji, remove: btn.dataset.remove === "1" });
    case "edit":
      return startEdit(m);
    case "delete":
      return entry("message:delete", { messageId: m.id });
  }
}

// ---- rendering (render.js) ----

const renderConn = (text) => R.renderConn(S, text);
const renderConversations = () => R.renderConversations(S);
const renderFriends = () => R.renderFriends(S);
const renderHeader = () => R.renderHeader(S);
const renderTyping = () => R.renderTyping(S);
const renderHistoryState = (t) => R.renderHistoryState(t);
const renderThread = (...how) => R.renderThread(S, ...how);

// ---- wiring ----

async function boot() {
  S.deviceId = sessionStorage.getItem(DEVICE_KEY) ?? `web-${randomId().slice(0, 12)}`;
  sessionStorage.setItem(DEVICE_KEY, S.deviceId);
  S.status = sessionStorage.getItem(STATUS_KEY) ?? "online";
  try {
    S.cfg = await api("GET", "/demo/config");
  } catch (err) {
    document.body.textContent = `The demo is not available: ${err.message}`;
    return;
  }
  $("signin-form").addEventListener("submit", onSignIn);
  $("signout").addEventListener("click", () => signOut());
  $("me-status").addEventListener("change", async (ev) => {
    S.status = ev.target.value;
    sessionStorage.setItem(STATUS_KEY, S.status);
    const res = await ack("presence:update", { status: S.status });
    if (!res?.ok) toast(res ? res.error.message : "no answer from the server");
  });
  $("start-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("start-name").value.trim();
    if (name) startConversation(name).then(() => ($("start-name").value = ""));
  });
  $("conv-list").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-conversation-id]");
    if (b) openConversation(b.dataset.conversationId);
  });
  $("conv-more").addEventListener("click", () => loadConversations(true));
  $("friend-list").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-friend]");
    if (b) openWith(b.dataset.friend);
  });
  $("back").addEventListener("click", closeConversation);
  $("composer").addEventListener("submit", onCompose);
  $("compose").addEventListener("input", onComposeInput);
  $("compose").addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && S.editing) {
      cancelEdit();
      $("compose").value = "";
    }
  });
  $("cancel-edit").addEventListener("click", () => {
    cancelEdit();
    $("compose").value = "";
  });
  $("messages").addEventListener("click", onMessageClick);
  $("messages").addEventListener("scroll", () => {
    const t = S.threads.get(S.active);
    if (t && $("messages").scrollTop < 120) loadOlder(t);
  });
  document.addEventListener("visibilitychange", () => markRead());
  // Last-seen texts age.
  setInterval(() => {
    renderFriends();
    renderHeader();
  }, 30000);

  const saved = JSON.parse(sessionStorage.getItem(AUTH_KEY) ?? "null");
  if (saved?.userId && saved?.token) start(saved.userId, saved.token);
  else showSignIn();
}

boot();
