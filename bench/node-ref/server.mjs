// Reference server for scripts/compare.sh: socket.io 4.8.4 with
// @socket.io/redis-adapter 8.3.0, speaking the part of chatstate's protocol
// that cmd/chatstate-bench drives, so the same load tool runs against both.
//
//   handshake   auth {token, deviceId}; token an HS256 JWT (sub = user id,
//               exp required) signed with REF_JWT_SECRET
//   HTTP        POST /v1/conversations {id, members} with
//               "Authorization: Bearer REF_API_KEY" -> 201 {id, members};
//               GET /healthz
//   message:send {conversationId, clientMessageId, content[, type]}
//               ack {ok: true, message} or {ok: false, error: {code, message}}
//   message:new {message} to every device of every member except the
//               sending socket, on any node (one room per user, fanned out
//               by the redis adapter)
//
// State lives in Redis: conversation members (a set), the per-conversation
// seq (INCR), the resend window (SET NX of the message per sender and
// clientMessageId, 24 h) and the devices online (a hash per user).
// Unlike chatstate it persists nothing: no store write, no message cache,
// no sync. See docs/performance.md.
//
// Settings (environment): REDIS_PORT (6379) or REDIS_URL, REF_ADDR
// (127.0.0.1:8090), REF_NODE_ID (a), REF_JWT_SECRET (required),
// REF_API_KEY (required), REF_KEY_PREFIX (ref:).
import { createHmac, timingSafeEqual, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { createClient } from "redis";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";

const env = process.env;
const secret = env.REF_JWT_SECRET || "";
const apiKey = env.REF_API_KEY || "";
const prefix = env.REF_KEY_PREFIX || "ref:";
const nodeID = env.REF_NODE_ID || "a";
const redisURL = env.REDIS_URL || `redis://127.0.0.1:${env.REDIS_PORT || 6379}`;
const [host, portText] = (env.REF_ADDR || "127.0.0.1:8090").split(":");
const port = Number(portText);

// The limits chatstate applies by default (root package limits.go).
const maxIDLen = 128;
const maxContentBytes = 16 << 10;
const maxMembers = 1000;
const resendWindowSeconds = 24 * 3600;

function fail(msg) {
  console.error(`node-ref: ${msg}`);
  process.exit(2);
}
if (!secret) fail("REF_JWT_SECRET is required");
if (!apiKey) fail("REF_API_KEY is required");
if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`REF_ADDR ${env.REF_ADDR}: want host:port`);
if (prefix.length > 128 || /[{}\s]/.test(prefix)) fail("REF_KEY_PREFIX: at most 128 bytes without { } or spaces");

const idPattern = /^[A-Za-z0-9._@-]+$/;
function validID(id) {
  return typeof id === "string" && id.length > 0 && id.length <= maxIDLen && idPattern.test(id);
}

class APIError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}
const invalid = (m) => new APIError("invalid", m);

const keys = {
  members: (conv) => `${prefix}conv:${conv}:members`,
  seq: (conv) => `${prefix}conv:${conv}:seq`,
  resend: (conv, sender, cmid) => `${prefix}conv:${conv}:cmid:${sender}:${cmid}`,
  devices: (user) => `${prefix}user:${user}:devices`,
};
const userRoom = (user) => `u:${user}`;

// verifyHS256 returns the sub of a valid token, or null. Same rules as
// chatstate's default verifier: HS256 only, exp required, nbf honoured.
function verifyHS256(token) {
  if (typeof token !== "string" || token.length === 0 || token.length > 8192) return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  let header, claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], "base64url"));
    claims = JSON.parse(Buffer.from(parts[1], "base64url"));
  } catch {
    return null;
  }
  if (header?.alg !== "HS256") return null;
  const want = createHmac("sha256", secret).update(`${parts[0]}.${parts[1]}`).digest();
  const got = Buffer.from(parts[2], "base64url");
  if (got.length !== want.length || !timingSafeEqual(got, want)) return null;
  const now = Date.now() / 1000;
  if (typeof claims?.exp !== "number" || claims.exp <= now) return null;
  if (typeof claims.nbf === "number" && claims.nbf > now) return null;
  return validID(claims.sub) ? claims.sub : null;
}

const redis = createClient({ url: redisURL });
const sub = redis.duplicate();
redis.on("error", (err) => console.error("node-ref: redis:", err.message));
sub.on("error", (err) => console.error("node-ref: redis subscriber:", err.message));
await Promise.all([redis.connect(), sub.connect()]);

// send is message:send: validate, check membership, take the next seq and
// record the message for resends, deliver, then ack: four round trips
// (SMEMBERS, GET, INCR, SET NX) and one PUBLISH by the adapter.
async function send(socket, req) {
  if (req === null || typeof req !== "object") throw invalid("payload object required");
  const { conversationId: conv, clientMessageId: cmid, content } = req;
  const type = req.type || "text";
  if (!validID(conv)) throw invalid("conversationId is required (letters, digits, . _ @ -, at most 128 bytes)");
  if (typeof cmid !== "string" || cmid === "" || cmid.length > maxIDLen) throw invalid("clientMessageId is required");
  if (typeof content !== "string" || content === "") throw invalid("content is required");
  if (Buffer.byteLength(content) > maxContentBytes) throw invalid(`content is longer than ${maxContentBytes} bytes`);
  if (type !== "text") throw invalid('type must be "text"');
  const user = socket.data.user;
  const members = await redis.sMembers(keys.members(conv));
  if (members.length === 0) throw new APIError("not_found", "conversation not found");
  if (!members.includes(user)) throw new APIError("forbidden", "not a member of this conversation");

  const resendKey = keys.resend(conv, user, cmid);
  const earlier = await redis.get(resendKey);
  if (earlier !== null) return JSON.parse(earlier); // a resend: acked again, not delivered again
  const seq = await redis.incr(keys.seq(conv));
  const msg = {
    id: randomBytes(12).toString("hex"),
    conversationId: conv,
    senderId: user,
    content,
    type,
    createdAt: Date.now(),
    seq,
    clientMessageId: cmid,
  };
  // NX: of two concurrent resends only the first is delivered; the other
  // gets the winner's message (its own seq is then a gap, as a failed send
  // leaves one in chatstate).
  const won = await redis.set(resendKey, JSON.stringify(msg), { NX: true, EX: resendWindowSeconds });
  if (won === null) {
    const first = await redis.get(resendKey);
    if (first !== null) return JSON.parse(first);
  }
  socket.to(members.map(userRoom)).emit("message:new", { message: msg });
  return msg;
}

function errorPayload(err) {
  if (err instanceof APIError) return { code: err.code, message: err.message };
  console.error("node-ref: send failed:", err);
  return { code: "unavailable", message: "backend unavailable", retryAfterMs: 1000 };
}

function json(res, status, body) {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}

async function createConversation(req, res) {
  const auth = req.headers.authorization || "";
  const token = auth.startsWith("Bearer ") ? auth.slice(7) : "";
  const a = Buffer.from(token);
  const b = Buffer.from(apiKey);
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    return json(res, 401, { error: { code: "unauthorized", message: "missing or wrong API key" } });
  }
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 1 << 20) return json(res, 413, { error: { code: "invalid", message: "body too large" } });
  }
  let c;
  try {
    c = JSON.parse(body);
  } catch {
    return json(res, 400, { error: { code: "invalid", message: "body must be JSON" } });
  }
  const members = [...new Set(Array.isArray(c?.members) ? c.members : [])];
  if (!validID(c?.id) || members.length === 0 || members.length > maxMembers || !members.every(validID)) {
    return json(res, 400, { error: { code: "invalid", message: `id and 1..${maxMembers} valid members are required` } });
  }
  const key = keys.members(c.id);
  const created = await redis.multi().exists(key).sAdd(key, members).exec();
  if (created[0] === 1) {
    return json(res, 409, { error: { code: "conflict", message: "conversation exists" } });
  }
  json(res, 201, { id: c.id, members });
}

const http = createServer((req, res) => {
  const path = req.url.split("?")[0];
  if (req.method === "GET" && path === "/healthz") return json(res, 200, { status: "ok" });
  if (req.method === "POST" && path === "/v1/conversations") {
    return createConversation(req, res).catch((err) => {
      console.error("node-ref: create conversation:", err);
      if (!res.headersSent) json(res, 503, { error: { code: "unavailable", message: "backend unavailable" } });
    });
  }
  json(res, 404, { error: { code: "not_found", message: "not found" } });
});

const io = new Server(http, {
  adapter: createAdapter(redis, sub, { key: `${prefix}socket.io` }),
  serveClient: false,
  maxHttpBufferSize: 1 << 20,
});

io.use((socket, next) => {
  const auth = socket.handshake.auth || {};
  const user = verifyHS256(auth.token);
  if (user === null) return next(new Error("unauthorized"));
  const device = auth.deviceId || `s-${socket.id}`;
  if (!validID(device)) return next(new Error("invalid"));
  socket.data.user = user;
  socket.data.device = device;
  next();
});

io.on("connection", (socket) => {
  const { user, device } = socket.data;
  socket.join(userRoom(user));
  redis.hSet(keys.devices(user), device, nodeID).catch(() => {});
  socket.on("message:send", (req, ack) => {
    send(socket, req).then(
      (message) => typeof ack === "function" && ack({ ok: true, message }),
      (err) => typeof ack === "function" && ack({ ok: false, error: errorPayload(err) }),
    );
  });
  socket.on("disconnect", () => {
    redis.hDel(keys.devices(user), device).catch(() => {});
  });
});

http.listen(port, host, () => console.log(`node-ref ${nodeID} listening on ${host}:${port}`));

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  io.close();
  await Promise.allSettled([redis.quit(), sub.quit()]);
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
