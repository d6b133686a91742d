// The operator's dashboard: the endpoints an operator's tooling uses
// (README, HTTP API), with the API key as the same bearer header. The key
// lives in this tab's sessionStorage only.
const KEY = "chatstate.admin.key";
const STATS_EVERY = 3000; // GET /redis/stats SCANs a key sample: not too often
const METRICS_EVERY = 2000;
const POINTS = 150; // 5 minutes of rates at METRICS_EVERY
const ONLINE_PAGE = 50;

const $ = (id) => document.getElementById(id);
const A = { key: null, timers: [], rates: [], last: null, cursors: ["0"], next: "0", user: null, busy: new Set() };

function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

class Unauthorized extends Error {}

async function call(method, path) {
  const res = await fetch(path, { method, headers: { Authorization: `Bearer ${A.key}` } });
  if (res.status === 401) throw new Unauthorized("the server refused this API key");
  if (res.status === 204) return {};
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error?.message ?? `HTTP ${res.status}`);
  return body;
}

// every runs fn now and then every ms, never twice at once.
function every(name, ms, fn) {
  const run = async () => {
    if (A.busy.has(name)) return;
    A.busy.add(name);
    try {
      await fn();
    } catch (err) {
      if (err instanceof Unauthorized) return logout(err.message);
      $("status").textContent = `${name}: ${err.message}`;
    } finally {
      A.busy.delete(name);
    }
  };
  run();
  A.timers.push(setInterval(run, ms));
}

// ---- formatting ----

const num = (n) => (n ?? 0).toLocaleString("en");
function bytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  const i = Math.min(u.length - 1, Math.floor(Math.log2(n) / 10));
  return `${(n / 2 ** (10 * i)).toFixed(i ? 1 : 0)} ${u[i]}`;
}
function ago(ms) {
  if (ms < 1000) return `${ms} ms ago`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s ago`;
  return `${Math.round(ms / 60000)} min ago`;
}
const when = (ms) => (ms ? new Date(ms).toLocaleString() : "");
const rate = (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(1));

function rows(tbody, pairs) {
  tbody.replaceChildren(...pairs.map(([k, v, cls]) => h("tr", { class: cls }, h("th", { text: k }), h("td", { class: "num", text: v }))));
}

// ---- panels ----

async function refreshStats() {
  const s = await call("GET", "/redis/stats");
  $("k-nodes").textContent = num(s.nodes.length);
  $("k-connections").textContent = num(s.connections);
  $("k-online").textContent = num(s.onlineUsers);
  $("nodes").replaceChildren(...s.nodes.map((n) => h("tr", { dataset: { instance: n.instance } },
    h("td", {}, h("code", { text: n.instance }), n.instance === s.node ? h("span", { class: "muted small", text: " (this node)" }) : null),
    h("td", { class: "num", dataset: { connections: n.connections }, text: num(n.connections) }),
    h("td", { class: "num", text: ago(n.heartbeatAgeMs) }))));
  const q = s.pushQueue ?? {};
  rows($("queue"), [
    ["waiting, high priority", num(q.high)],
    ["waiting, normal", num(q.normal)],
    ["claimed by a worker", num(q.leased)],
    ["waiting for a retry", num(q.retry)],
    ["dead letters", num(q.dead), q.dead ? "alert" : ""],
    ["oldest waiting job", q.oldestAgeMs ? ago(q.oldestAgeMs) : "none"],
  ]);
  const r = s.redis ?? {};
  rows($("redis"), [
    ["used memory", r.usedMemoryHuman || bytes(r.usedMemory)],
    ["peak / RSS", `${bytes(r.usedMemoryPeak)} / ${bytes(r.usedMemoryRss)}`],
    ["maxmemory", r.maxMemory ? `${bytes(r.maxMemory)} (${r.maxMemoryPolicy})` : `no limit (${r.maxMemoryPolicy || "—"})`],
    ["fragmentation", (r.fragmentation ?? 0).toFixed(2)],
    ["keys (with a TTL)", `${num(r.keys)} (${num(r.expires)})`],
    ["hit rate", `${((r.hitRate ?? 0) * 100).toFixed(1)} %`],
    ["ops/s", num(r.opsPerSec)],
    ["clients", num(r.connectedClients)],
    ["version, uptime", r.redisVersion ? `${r.redisVersion}, ${Math.round((r.uptimeSeconds ?? 0) / 60)} min` : "embedded (development mode): no memory figures"],
  ]);
  const kinds = Object.entries(s.keys?.kinds ?? {}).sort((a, b) => b[1] - a[1]);
  $("kinds").replaceChildren(...kinds.map(([k, n]) => h("tr", {}, h("td", {}, h("code", { text: k })), h("td", { class: "num", text: num(n) }))));
  $("kinds-note").textContent = s.keys ? `${s.keys.complete ? "all" : "a sample of"} ${num(s.keys.sampled)} keys` : "";
  $("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
  await refreshOnline();
}

async function refreshHealth() {
  const res = await fetch("/redis/health");
  const body = await res.json().catch(() => ({}));
  $("k-latency").textContent = res.ok ? `${body.latencyMs.toFixed(2)} ms` : "down";
}

// refreshOnline reloads the page of online users being shown.
async function refreshOnline() {
  const cursor = A.cursors.at(-1);
  const res = await call("GET", `/redis/online-users?cursor=${encodeURIComponent(cursor)}&limit=${ONLINE_PAGE}`);
  A.next = res.cursor;
  $("online").replaceChildren(...res.users.sort().map((u) => h("button", { type: "button", class: "user-chip", dataset: { user: u }, text: u })));
  if (!res.users.length) $("online").append(h("span", { class: "muted small", text: "nobody on this page" }));
  $("online-next").disabled = res.cursor === "0";
  $("online-first").disabled = A.cursors.length === 1;
  $("online-note").textContent = `page ${A.cursors.length}${res.cursor === "0" ? " (last)" : ""}`;
}

// parseCounter sums every series of a counter in Prometheus text.
function parseCounter(text, name) {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== " " && rest[0] !== "{") continue;
    const v = Number(rest.slice(rest.lastIndexOf("}") + 1).trim().split(" ")[0]);
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

async function refreshMetrics() {
  const text = await (await fetch("/metrics")).text();
  const now = performance.now();
  const sample = { t: now, m: parseCounter(text, "chatstate_gateway_messages_total"), d: parseCounter(text, "chatstate_gateway_deliveries_total") };
  if (A.last) {
    const dt = (now - A.last.t) / 1000;
    // A counter that went down is a restarted node: no rate for that step.
    const r = { t: Date.now(), m: Math.max(0, sample.m - A.last.m) / dt, d: Math.max(0, sample.d - A.last.d) / dt };
    A.rates.push(r);
    if (A.rates.length > POINTS) A.rates.shift();
    $("k-mps").textContent = rate(r.m);
    $("k-dps").textContent = rate(r.d);
  }
  A.last = sample;
  drawChart();
}

// niceStep is the smallest of 1, 2, 2.5 or 5 times a power of ten at
// least x: the chart's grid step.
function niceStep(x) {
  const p = 10 ** Math.floor(Math.log10(x));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((v) => v >= x);
}

function drawChart() {
  const canvas = $("chart");
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const hgt = canvas.clientHeight;
  if (!w) return;
  canvas.width = w * dpr;
  canvas.height = hgt * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  const left = 40, bottom = 18, top = 6, right = 8;
  const pw = w - left - right, ph = hgt - top - bottom;
  const peak = Math.max(1, ...A.rates.map((r) => Math.max(r.m, r.d)));
  const step = niceStep((peak * 1.1) / 4);
  const ymax = step * 4;
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = color("--muted");
  g.strokeStyle = color("--line");
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + ph - (ph * i) / 4;
    g.beginPath();
    g.moveTo(left, y);
    g.lineTo(w - right, y);
    g.stroke();
    g.fillText(String(+(step * i).toFixed(2)), 2, y + 4);
  }
  // The window grows with the data, from 30 s to POINTS samples.
  const now = Date.now();
  const span = Math.min(POINTS * METRICS_EVERY, Math.max(30000, A.rates.length ? now - A.rates[0].t : 0));
  g.fillText(span >= 60000 ? `${Math.round(span / 60000)} min ago` : `${Math.round(span / 1000)} s ago`, left, hgt - 3);
  g.fillText("now", w - right - 22, hgt - 3);
  const x = (t) => left + pw - ((now - t) / span) * pw;
  const y = (v) => top + ph - (v / ymax) * ph;
  for (const [k, c] of [["m", color("--accent")], ["d", color("--online")]]) {
    g.strokeStyle = c;
    g.fillStyle = c;
    g.lineWidth = 2;
    g.beginPath();
    A.rates.forEach((r, i) => (i ? g.lineTo(x(r.t), y(r[k])) : g.moveTo(x(r.t), y(r[k]))));
    g.stroke();
    const lastPoint = A.rates.at(-1);
    if (lastPoint) {
      g.beginPath();
      g.arc(x(lastPoint.t), y(lastPoint[k]), 3, 0, 2 * Math.PI);
      g.fill();
    }
  }
  canvas.dataset.points = A.rates.length;
  $("chart-note").textContent = A.rates.length ? "" : "collecting…";
}

async function loadUser(id) {
  A.user = id;
  $("user-id").value = id;
  const enc = encodeURIComponent(id);
  const [sessions, events] = await Promise.all([
    call("GET", `/v1/users/${enc}/sessions`),
    call("GET", `/v1/users/${enc}/security-events?limit=20`),
  ]);
  $("sessions").replaceChildren(...sessions.sessions.map((s) => h("tr", { dataset: { device: s.deviceId } },
    h("td", { class: "nowrap" }, h("code", { text: s.deviceId })),
    h("td", { class: "mono nowrap", text: s.ip ?? "" }),
    h("td", { class: "small ua", title: s.userAgent ?? "", text: s.userAgent ?? "" }),
    h("td", { class: "small nowrap", text: when(s.lastActivity) }),
    h("td", {}, h("button", { type: "button", class: "danger-btn", dataset: { revoke: s.deviceId }, text: "Revoke" })))));
  if (!sessions.sessions.length) $("sessions").append(h("tr", {}, h("td", { colspan: 5, class: "muted small", text: "no sessions" })));
  $("events").replaceChildren(...events.events.map((e) => h("tr", {},
    h("td", { class: "small nowrap", text: when(e.at) }),
    h("td", { class: "nowrap" }, h("code", { text: e.type })),
    h("td", { class: "mono nowrap", text: e.ip ?? "" }),
    h("td", { class: "mono nowrap", text: e.deviceId ?? "" }),
    h("td", { class: "small", text: Object.entries(e.details ?? {}).map(([k, v]) => `${k}: ${v}`).join(", ") }))));
  if (!events.events.length) $("events").append(h("tr", {}, h("td", { colspan: 5, class: "muted small", text: "no security events" })));
}

async function guarded(fn) {
  try {
    await fn();
  } catch (err) {
    if (err instanceof Unauthorized) return logout(err.message);
    $("status").textContent = err.message;
  }
}

// ---- sign-in ----

async function login(key) {
  A.key = key;
  try {
    await call("GET", "/redis/stats");
  } catch (err) {
    A.key = null;
    $("login").hidden = false;
    $("login-error").textContent = err.message;
    return;
  }
  sessionStorage.setItem(KEY, key);
  $("login").hidden = true;
  $("dash").hidden = false;
  every("stats", STATS_EVERY, refreshStats);
  every("metrics", METRICS_EVERY, refreshMetrics);
  every("health", STATS_EVERY, refreshHealth);
}

function logout(message = "") {
  for (const t of A.timers) clearInterval(t);
  A.timers = [];
  A.key = null;
  sessionStorage.removeItem(KEY);
  $("dash").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  login($("login-key").value.trim());
});
$("logout").addEventListener("click", () => logout());
$("online-next").addEventListener("click", () => {
  if (A.next !== "0") A.cursors.push(A.next);
  guarded(refreshOnline);
});
$("online-first").addEventListener("click", () => {
  A.cursors = ["0"];
  guarded(refreshOnline);
});
$("online").addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-user]");
  if (b) guarded(() => loadUser(b.dataset.user));
});
$("user-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const id = $("user-id").value.trim();
  if (id) guarded(() => loadUser(id));
});
$("sessions").addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-revoke]");
  if (!b) return;
  guarded(async () => {
    await call("DELETE", `/v1/users/${encodeURIComponent(A.user)}/sessions/${encodeURIComponent(b.dataset.revoke)}`);
    $("status").textContent = `revoked ${A.user}'s session on ${b.dataset.revoke}`;
    await loadUser(A.user);
  });
});
$("cleanup").addEventListener("click", () => guarded(async () => {
  $("cleanup").disabled = true;
  $("cleanup-result").textContent = "running…";
  try {
    const res = await call("POST", "/redis/cleanup");
    $("cleanup-result").textContent = Object.entries(res).map(([job, r]) => `${job}: removed ${num(r.removed)}`).join("\n");
  } catch (err) {
    $("cleanup-result").textContent = `failed: ${err.message}`;
    throw err;
  } finally {
    $("cleanup").disabled = false;
  }
}));
window.addEventListener("resize", drawChart);

const saved = sessionStorage.getItem(KEY);
if (saved) login(saved);
else $("login").hidden = false;
