import { test, after } from "node:test";
import assert from "node:assert/strict";
import { env, connect, uid, closeAll, ack, waitFor, received, conversation, friends, send } from "./lib.mjs";

after(closeAll);

test("friends get presence on connect and on full disconnect only", async () => {
  const alice = uid("alice"), bob = uid("bob"), carol = uid("carol");
  await friends(alice, [bob]);
  const b = await connect(env.b, { user: bob, deviceId: "d" });
  const c = await connect(env.b, { user: carol, deviceId: "d" });

  const phone = await connect(env.a, { user: alice, deviceId: "phone" });
  const online = await waitFor(b, "presence", (p) => p.userId === alice && p.online);
  assert.equal(online.status, "online");
  assert.ok(online.lastSeen > 0);

  const web = await connect(env.b, { user: alice, deviceId: "web" });
  phone.close();
  // Barrier: a status change is announced after the two events above.
  assert.equal((await ack(web, "presence:update", { status: "away" })).ok, true);
  const away = await waitFor(b, "presence", (p) => p.userId === alice && p.status === "away");
  assert.equal(away.online, true);
  assert.equal(received(b, "presence", (p) => p.userId === alice && !p.online).length, 0, "one device left: still online");
  assert.equal(received(b, "presence", (p) => p.userId === alice && p.online && p.status === "online").length, 1, "second device: no event");

  web.close();
  const offline = await waitFor(b, "presence", (p) => p.userId === alice && !p.online);
  assert.equal(offline.status, "offline");
  assert.equal(received(c, "presence", (p) => p.userId === alice).length, 0, "non-friends hear nothing");

  const res = await ack(b, "presence:get", { userIds: [alice, bob] });
  assert.equal(res.presence[alice].online, false);
  assert.equal(res.presence[alice].devices, 0);
  assert.ok(res.presence[alice].lastSeen > 0);
  assert.equal(res.presence[bob].online, true);
});

test("invisible users look offline to friends", async () => {
  const alice = uid("alice"), bob = uid("bob");
  await friends(alice, [bob]);
  const b = await connect(env.a, { user: bob, deviceId: "d" });
  const a = await connect(env.b, { user: alice, deviceId: "d" });
  await waitFor(b, "presence", (p) => p.userId === alice && p.online);
  assert.equal((await ack(a, "presence:update", { status: "invisible" })).ok, true);
  const p = await waitFor(b, "presence", (p) => p.userId === alice && !p.online);
  assert.equal(p.status, "offline");
  const res = await ack(b, "presence:get", { userIds: [alice] });
  assert.equal(res.presence[alice].online, false);
  assert.equal(res.presence[alice].devices, 0);
});

test("typing start, stop and expiry reach the other members only", async () => {
  const alice = uid("alice"), bob = uid("bob"), carol = uid("carol");
  const conv = await conversation([alice, bob]);
  const a = await connect(env.a, { user: alice, deviceId: "d" });
  const a2 = await connect(env.a, { user: alice, deviceId: "d2" });
  const b = await connect(env.b, { user: bob, deviceId: "d" });
  const c = await connect(env.b, { user: carol, deviceId: "d" });

  assert.equal((await ack(a, "typing:start", { conversationId: conv })).ok, true);
  assert.deepEqual(await waitFor(b, "typing", (t) => t.typing), { conversationId: conv, userId: alice, typing: true });
  assert.equal((await ack(a, "typing:stop", { conversationId: conv })).ok, true);
  await waitFor(b, "typing", (t) => !t.typing);

  // Expiry: a start that is not renewed ends with typing:false after the TTL.
  const started = Date.now();
  await ack(a, "typing:start", { conversationId: conv });
  await waitFor(b, "typing", (t) => t.typing && received(b, "typing").length === 3);
  await waitFor(b, "typing", () => received(b, "typing", (t) => !t.typing).length === 2, env.typingTTL + 5000);
  assert.ok(Date.now() - started >= env.typingTTL - 50, "typing:false came only after the TTL");

  // Barrier before checking who did not hear it.
  const m = await send(b, conv, "barrier");
  await waitFor(a, "message:new", (e) => e.message.id === m.id);
  await waitFor(a2, "message:new", (e) => e.message.id === m.id);
  assert.equal(received(a, "typing").length + received(a2, "typing").length, 0, "the typer's own devices hear nothing");
  assert.equal(received(c, "typing").length, 0, "non-members hear nothing");
});
