// Helpers for the end-to-end tests. The Go test (cmd/chatstate/e2e_test.go)
// starts redis-server and the gateway processes and passes their addresses
// in the environment.
import { io } from "socket.io-client";
import { createHmac, randomUUID } from "node:crypto";

export const env = {
  a: process.env.GATEWAY_A,
  b: process.env.GATEWAY_B,
  c: process.env.GATEWAY_C,
  pidC: Number(process.env.GATEWAY_C_PID),
  apiKey: process.env.CHATSTATE_API_KEY,
  secret: process.env.CHATSTATE_JWT_SECRET,
  rateLimit: Number(process.env.CHATSTATE_MESSAGE_RATE_LIMIT),
  typingTTL: Number(process.env.TYPING_TTL_MS),
  crashContent: process.env.CRASH_CONTENT,
};

const b64 = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

// token signs an HS256 JWT like any identity service would; expSeconds
// null leaves out exp.
export function token(sub, { secret = env.secret, expSeconds = 3600, alg = "HS256", extra = {} } = {}) {
  const header = b64({ alg, typ: "JWT" });
  const now = Math.floor(Date.now() / 1000);
  const exp = expSeconds === null ? {} : { exp: now + expSeconds };
  const payload = b64({ sub, iat: now, ...exp, ...extra });
  if (alg === "none") return `${header}.${payload}.`;
  const sig = createHmac("sha256", secret).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${sig}`;
}

export const uid = (p) => `${p}-${randomUUID().slice(0, 8)}`;

const open = new Set();

// connect resolves with a connected socket or rejects with the connect_error.
export function connect(url, { user, deviceId, auth, transports = ["websocket"], upgrade = true } = {}) {
  const socket = io(url, {
    auth: auth ?? { token: token(user), deviceId },
    transports,
    upgrade,
    reconnection: false,
    forceNew: true,
    timeout: 5000,
  });
  open.add(socket);
  socket.user = user;
  // Record every event so tests can assert what did or did not arrive.
  socket.log = [];
  socket.onAny((event, ...args) => socket.log.push({ event, args }));
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => {
      socket.close();
      reject(err);
    });
  });
}

export function closeAll() {
  for (const s of open) s.close();
  open.clear();
}

// ack emits with an acknowledgement and a 5 s deadline.
export function ack(socket, event, payload) {
  return socket.timeout(5000).emitWithAck(event, payload);
}

// waitFor resolves with the first logged (or future) event matching pred.
export function waitFor(socket, event, pred = () => true, timeoutMs = 5000) {
  const hit = socket.log.find((e) => e.event === event && pred(...e.args));
  if (hit) return Promise.resolve(hit.args[0]);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.offAny(listener);
      reject(new Error(`${socket.user}: no ${event} within ${timeoutMs}ms; got ${JSON.stringify(socket.log.map((e) => e.event))}`));
    }, timeoutMs);
    const listener = (ev, ...args) => {
      if (ev === event && pred(...args)) {
        clearTimeout(timer);
        socket.offAny(listener);
        resolve(args[0]);
      }
    };
    socket.onAny(listener);
  });
}

export function received(socket, event, pred = () => true) {
  return socket.log.filter((e) => e.event === event && pred(...e.args)).map((e) => e.args[0]);
}

// api calls the service API with the API key unless key is given.
export async function api(base, method, path, body, { key = env.apiKey } = {}) {
  const headers = { "content-type": "application/json" };
  if (key) headers.authorization = `Bearer ${key}`;
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, body: json };
}

export async function conversation(members, id) {
  const res = await api(env.a, "POST", "/v1/conversations", { id, members });
  if (res.status !== 201) throw new Error(`create conversation: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id;
}

export async function friends(user, list) {
  const res = await api(env.a, "PUT", `/v1/users/${user}/friends`, { friends: list });
  if (res.status !== 200) throw new Error(`set friends: ${res.status} ${JSON.stringify(res.body)}`);
}

export async function send(socket, conversationId, content, clientMessageId = randomUUID()) {
  const res = await ack(socket, "message:send", { conversationId, clientMessageId, content });
  if (!res.ok) throw new Error(`send failed: ${JSON.stringify(res)}`);
  return res.message;
}

// poll retries fn until it returns a truthy value or the deadline passes.
export async function poll(fn, timeoutMs = 5000, what = "condition") {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
