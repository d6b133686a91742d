import { test, after } from "node:test";
import assert from "node:assert/strict";
import { env, connect, token, uid, closeAll, ack, waitFor } from "./lib.mjs";

after(closeAll);

async function refused(opts) {
  await assert.rejects(connect(env.a, opts), (err) => {
    assert.equal(err.message, "unauthorized");
    return true;
  });
}

test("handshake without a valid JWT gets connect_error unauthorized", async () => {
  const user = uid("mallory");
  await refused({ user, auth: {} });
  await refused({ user, auth: { token: "not-a-jwt" } });
  await refused({ user, auth: { token: token(user, { secret: "wrong-secret" }) } });
  await refused({ user, auth: { token: token(user, { expSeconds: -60 }) } });
  await refused({ user, auth: { token: token(user, { expSeconds: null }) } }); // no exp
  await refused({ user, auth: { token: token(user, { alg: "none" }) } });
  await refused({ user, auth: { token: token("has space") } });
});

test("a valid token connects over websocket only and over polling then upgrade", async () => {
  const user = uid("alice");
  const ws = await connect(env.a, { user, deviceId: "ws", transports: ["websocket"] });
  assert.equal(ws.io.engine.transport.name, "websocket");

  const poll = await connect(env.b, { user, deviceId: "poll", transports: ["polling", "websocket"] });
  await new Promise((resolve) => {
    if (poll.io.engine.transport.name === "websocket") return resolve();
    poll.io.engine.once("upgrade", resolve);
  });
  assert.equal(poll.io.engine.transport.name, "websocket");

  const res = await ack(poll, "presence:get", { userIds: [user] });
  assert.equal(res.ok, true);
  assert.equal(res.presence[user].online, true);
  assert.equal(res.presence[user].devices, 2);
});

test("polling-only clients work end to end", async () => {
  const user = uid("pat");
  const s = await connect(env.b, { user, deviceId: "p", transports: ["polling"] });
  assert.equal(s.io.engine.transport.name, "polling");
  const res = await ack(s, "presence:get", { userIds: [user] });
  assert.equal(res.presence[user].online, true);
});

test("an invalid deviceId is refused with a clear code", async () => {
  const user = uid("dev");
  await assert.rejects(connect(env.a, { user, deviceId: "bad device{}" }), (err) => {
    assert.equal(err.message, "invalid");
    assert.equal(err.data.code, "invalid");
    return true;
  });
});

test("a socket whose token expires gets token:expired, then an io server disconnect", async () => {
  const user = uid("tess");
  const exp = Math.floor(Date.now() / 1000) + 3; // at least 2 s to connect on a loaded machine
  const s = await connect(env.a, { user, auth: { token: token(user, { extra: { exp } }), deviceId: "t" } });
  const reason = new Promise((resolve) => s.once("disconnect", resolve));
  const ev = await waitFor(s, "token:expired", () => true, 30000);
  assert.equal(ev.reason, "token_expired");
  assert.equal(ev.expiredAt, exp * 1000);
  assert.equal(await reason, "io server disconnect");
  assert.ok(Date.now() >= exp * 1000, "disconnected before exp");

  // A new token reconnects the same socket object.
  s.auth.token = token(user);
  const back = new Promise((resolve) => s.once("connect", resolve));
  s.connect();
  await back;
  const res = await ack(s, "presence:get", { userIds: [user] });
  assert.equal(res.presence[user].online, true);
});
