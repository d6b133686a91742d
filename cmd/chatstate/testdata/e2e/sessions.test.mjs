// Sessions through the official client: the session list shows the
// device with its ip and user agent; DELETE revokes it from another node,
// and the client is told (session:revoked) and disconnected by the server
// ("io server disconnect"), so it does not reconnect by itself.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { env, api, uid, token, poll } from "./lib.mjs";

const sockets = [];
after(() => sockets.forEach((s) => s.close()));

function connectWithHeaders(url, user, deviceId, extraHeaders) {
  // reconnection stays on: the point is that the client does not use it.
  const socket = io(url, { auth: { token: token(user), deviceId }, transports: ["websocket"], extraHeaders, forceNew: true, timeout: 5000 });
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

test("revoking a session disconnects the device on another node", async () => {
  const user = uid("sess");
  // No trusted proxies are configured: X-Forwarded-For is ignored.
  const phone = await connectWithHeaders(env.b, user, "phone", { "user-agent": "e2e-phone/1", "x-forwarded-for": "203.0.113.50" });
  const laptop = await connectWithHeaders(env.a, user, "laptop", { "user-agent": "e2e-laptop/1" });

  const list = await api(env.a, "GET", `/v1/users/${user}/sessions`);
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.sessions.map((s) => [s.deviceId, s.userAgent, s.ip]), [
    ["laptop", "e2e-laptop/1", "127.0.0.1"],
    ["phone", "e2e-phone/1", "127.0.0.1"],
  ]);
  for (const s of list.body.sessions) {
    assert.ok(s.createdAt > 0 && s.lastActivity >= s.createdAt && s.expiresAt > s.lastActivity, JSON.stringify(s));
  }

  const revoked = new Promise((resolve) => phone.once("session:revoked", resolve));
  const disconnected = new Promise((resolve) => phone.once("disconnect", resolve));
  const del = await api(env.a, "DELETE", `/v1/users/${user}/sessions/phone`);
  assert.equal(del.status, 204, JSON.stringify(del.body));
  assert.deepEqual(await revoked, { deviceId: "phone", reason: "revoked" });
  assert.equal(await disconnected, "io server disconnect");
  assert.equal(phone.active, false, "the client must not reconnect after a revocation");

  const after = await api(env.b, "GET", `/v1/users/${user}/sessions`);
  assert.deepEqual(after.body.sessions.map((s) => s.deviceId), ["laptop"]);
  assert.ok(laptop.connected, "the other device stays connected");
  const res = await laptop.timeout(5000).emitWithAck("presence:get", { userIds: [user] });
  assert.equal(res.ok, true);

  const log = await api(env.a, "GET", `/v1/users/${user}/security-events?limit=100`);
  assert.equal(log.status, 200);
  const types = log.body.events.map((e) => e.type);
  assert.equal(types[0], "session_revoked");
  assert.equal(types.filter((t) => t === "new_device").length, 2);
  assert.equal((await api(env.a, "DELETE", `/v1/users/${user}/sessions/phone`)).status, 404);
});

test("the session ends with its device's last socket", async () => {
  const user = uid("sess");
  const tablet = await connectWithHeaders(env.a, user, "tablet", {});
  assert.equal((await api(env.b, "GET", `/v1/users/${user}/sessions`)).body.sessions.length, 1);
  tablet.close();
  await poll(async () => (await api(env.b, "GET", `/v1/users/${user}/sessions`)).body.sessions.length === 0, 5000, "the session's deletion");
});
