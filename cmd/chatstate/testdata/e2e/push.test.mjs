// Push notifications end to end: a member with no live connection gets one
// signed webhook POST per registered device within 2 s of the send; a
// connected member (invisible included) gets none. The webhook is served
// here, so this file sees exactly what an app backend would.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";
import { env, api, connect, uid, closeAll, ack, conversation, send, poll } from "./lib.mjs";

const secret = process.env.PUSH_HOOK_SECRET;
const posts = []; // { at, body, raw, signatureOk }
let server;

before(async () => {
  server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const want = Buffer.from("sha256=" + createHmac("sha256", secret).update(raw).digest("hex"));
      const got = Buffer.from(req.headers["x-chatstate-signature"] ?? "");
      const signatureOk = got.length === want.length && timingSafeEqual(got, want);
      const body = JSON.parse(raw);
      posts.push({ at: Date.now(), raw, body, signatureOk, method: req.method, type: req.headers["content-type"] });
      // A token ending in "-gone" belongs to an uninstalled app.
      res.writeHead(!signatureOk ? 401 : body.token.endsWith("-gone") ? 410 : 200).end();
    });
  });
  await new Promise((resolve) => server.listen(Number(process.env.PUSH_HOOK_PORT), "127.0.0.1", resolve));
});
after(() => {
  closeAll();
  server.close();
});

const postsFor = (messageId) => posts.filter((p) => p.body.data?.messageId === messageId);
const device = async (user, deviceId, platform) => {
  const res = await api(env.a, "PUT", `/v1/users/${user}/devices/${deviceId}`, { platform, pushToken: `tok-${user}-${deviceId}` });
  assert.equal(res.status, 200, JSON.stringify(res.body));
};

test("an offline member gets one signed push per device within 2 s; connected members get none", async () => {
  const alice = uid("alice"), bob = uid("bob"), carol = uid("carol"), dave = uid("dave");
  const conv = await conversation([alice, bob, carol, dave]);
  await device(bob, "phone", "ios");
  await device(bob, "tablet", "android");
  await device(carol, "phone", "android");
  const a = await connect(env.a, { user: alice, deviceId: "web" });
  // Carol is connected (on the other node); dave is connected but invisible,
  // and registered his device over the socket.
  await connect(env.b, { user: carol, deviceId: "laptop" });
  const d = await connect(env.b, { user: dave, deviceId: "phone" });
  assert.equal((await ack(d, "device:register", { platform: "web", pushToken: "tok-dave" })).ok, true);
  assert.equal((await ack(d, "presence:update", { status: "invisible" })).ok, true);

  const msg = await send(a, conv, "hello bob");
  const acked = Date.now();
  await poll(() => postsFor(msg.id).length >= 2, 2000, "two pushes within 2 s of the ack");
  // A second message is the barrier: once its pushes are in, the first
  // message's are all in too.
  const barrier = await send(a, conv, "barrier");
  await poll(() => postsFor(barrier.id).length >= 2, 5000, "the barrier's pushes");
  const got = postsFor(msg.id);
  assert.equal(got.length, 2, "exactly one push per device of the offline member, none for connected ones");
  assert.deepEqual(got.map((p) => p.body.deviceId).sort(), ["phone", "tablet"]);
  for (const p of got) {
    assert.ok(p.signatureOk, "X-Chatstate-Signature is sha256=<hex HMAC-SHA256 of the raw body>");
    assert.equal(p.method, "POST");
    assert.match(p.type, /^application\/json/);
    assert.ok(p.at - acked < 2000, `push ${p.at - acked} ms after the ack`);
    assert.deepEqual(Object.keys(p.body).sort(), ["body", "data", "deviceId", "id", "platform", "priority", "title", "token", "userId"]);
    assert.equal(p.body.userId, bob);
    assert.equal(p.body.priority, "normal", "a group message is normal priority");
    assert.equal(p.body.token, `tok-${bob}-${p.body.deviceId}`);
    assert.equal(p.body.platform, p.body.deviceId === "phone" ? "ios" : "android");
    assert.deepEqual(p.body.data, { conversationId: conv, messageId: msg.id, seq: String(msg.seq), senderId: alice });
    assert.equal(p.body.body, "hello bob");
  }
  // The in-app list has it too, over HTTP and over the socket.
  const list = await api(env.b, "GET", `/v1/users/${bob}/notifications?limit=10`);
  assert.equal(list.status, 200);
  assert.ok(list.body.notifications.some((n) => n.data.messageId === msg.id));
  const bobSocket = await connect(env.b, { user: bob, deviceId: "phone" });
  const inApp = await ack(bobSocket, "notifications:list", { limit: 5 });
  assert.equal(inApp.ok, true);
  assert.equal(inApp.notifications[0].data.messageId, barrier.id, "newest first");
});

test("a one-to-one message is pushed with high priority; a backend notification reaches a connected user in the app", async () => {
  const alice = uid("alice"), bob = uid("bob");
  const conv = await conversation([alice, bob]);
  await device(bob, "phone", "android");
  const a = await connect(env.a, { user: alice, deviceId: "web" });
  const msg = await send(a, conv, "psst");
  await poll(() => postsFor(msg.id).length === 1, 2000, "the push");
  assert.equal(postsFor(msg.id)[0].body.priority, "high");

  // POST /v1/users/{id}/notifications: alice is connected, so no push.
  const live = new Promise((resolve) => a.once("notification:new", resolve));
  const res = await api(env.b, "POST", `/v1/users/${alice}/notifications`, { title: "Welcome", body: "hi", priority: "high", data: { k: "v" } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.pushes, 0);
  const ev = await live;
  assert.equal(ev.notification.title, "Welcome");
  assert.deepEqual(ev.notification.data, { k: "v" });
  // Bad input gets a clear code.
  const bad = await api(env.a, "PUT", `/v1/users/${bob}/devices/phone`, { platform: "symbian", pushToken: "x" });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, "invalid");
  const gone = await api(env.a, "DELETE", `/v1/users/${bob}/devices/phone`);
  assert.equal(gone.status, 204);
});

test("a token the webhook reports gone (410) is removed: that device gets no more pushes", async () => {
  const alice = uid("alice"), erin = uid("erin");
  const conv = await conversation([alice, erin]);
  let res = await api(env.a, "PUT", `/v1/users/${erin}/devices/old`, { platform: "android", pushToken: "tok-old-gone" });
  assert.equal(res.status, 200);
  const a = await connect(env.a, { user: alice, deviceId: "web" });
  const first = await send(a, conv, "are you there?");
  await poll(() => postsFor(first.id).length === 1, 5000, "the push to the dead token");
  // Erin installs the app again on a new device; the old token is gone.
  res = await api(env.a, "PUT", `/v1/users/${erin}/devices/new`, { platform: "ios", pushToken: "tok-new" });
  assert.equal(res.status, 200);
  const second = await send(a, conv, "hello again");
  await poll(() => postsFor(second.id).length >= 1, 5000, "the push to the new device");
  const third = await send(a, conv, "barrier");
  await poll(() => postsFor(third.id).length >= 1, 5000, "the barrier push");
  assert.deepEqual(postsFor(second.id).map((p) => p.body.deviceId), ["new"], "the gone token got nothing more");
});
