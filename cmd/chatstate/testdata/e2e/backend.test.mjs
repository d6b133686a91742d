// The app-backend API: sends on behalf of bots and the system, custom
// events and presence, through the HTTP API of one node to devices on both.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { env, api, connect, uid, closeAll, waitFor, received, conversation, send } from "./lib.mjs";

after(closeAll);

test("the backend API sends with idempotency and delivers custom events across nodes", async () => {
  const alice = uid("alice"), bob = uid("bob"), carol = uid("carol"), bot = uid("bot");
  const conv = await conversation([alice, bob]);
  const aliceA = await connect(env.a, { user: alice, deviceId: "phone" });
  const bobB = await connect(env.b, { user: bob, deviceId: "phone" });
  const bobA = await connect(env.a, { user: bob, deviceId: "web" });
  const carolB = await connect(env.b, { user: carol, deviceId: "phone" });

  // A bot that is not a member posts through node A's API; every member
  // device gets it live, on both nodes.
  const cmid = randomUUID();
  const body = { senderId: bot, clientMessageId: cmid, content: "build passed", type: "system" };
  const first = await api(env.a, "POST", `/v1/conversations/${conv}/messages`, body);
  assert.equal(first.status, 201, JSON.stringify(first.body));
  const msg = first.body.message;
  assert.equal(msg.seq, 1);
  assert.equal(msg.senderId, bot);
  assert.equal(msg.type, "system");
  assert.equal(msg.clientMessageId, cmid);
  for (const s of [aliceA, bobB, bobA]) {
    const got = await waitFor(s, "message:new", (e) => e.message.id === msg.id);
    assert.deepEqual(got.message, msg);
  }

  // The resend (through node B this time) answers 200 with the original
  // and delivers nothing new; a socket send takes the next seq.
  const again = await api(env.b, "POST", `/v1/conversations/${conv}/messages`, body);
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.deepEqual(again.body.message, msg);
  const next = await send(aliceA, conv, "thanks bot");
  assert.equal(next.seq, 2, "the resend consumed no seq");
  await waitFor(bobB, "message:new", (e) => e.message.id === next.id);
  await waitFor(bobA, "message:new", (e) => e.message.id === next.id);
  for (const s of [aliceA, bobB, bobA]) {
    assert.equal(received(s, "message:new", (e) => e.message.id === msg.id).length, 1, `${s.user}: exactly once`);
  }

  // History and the conversation agree with what was delivered.
  const hist = await api(env.b, "GET", `/v1/conversations/${conv}/messages?afterSeq=0`);
  assert.deepEqual(hist.body.messages.map((m) => m.seq), [1, 2]);
  const info = await api(env.b, "GET", `/v1/conversations/${conv}`);
  assert.equal(info.status, 200);
  assert.equal(info.body.id, conv);
  assert.deepEqual(info.body.members, [alice, bob]);
  assert.equal(info.body.lastSeq, 2);
  assert.ok(info.body.createdAt > 0);
  assert.equal((await api(env.a, "GET", `/v1/conversations/${uid("nope")}`)).status, 404);

  // A custom event to a user reaches all of that user's devices.
  const ping = await api(env.a, "POST", `/v1/users/${bob}/events`, { event: "app:ping", data: { n: 1 } });
  assert.equal(ping.status, 202, JSON.stringify(ping.body));
  for (const s of [bobA, bobB]) assert.deepEqual(await waitFor(s, "app:ping"), { n: 1 });

  // A conversation event reaches every member's devices on both nodes.
  const conf = await api(env.b, "POST", `/v1/conversations/${conv}/events`, { event: "app:call", data: { room: "r1" } });
  assert.equal(conf.status, 202, JSON.stringify(conf.body));
  for (const s of [aliceA, bobA, bobB]) assert.deepEqual(await waitFor(s, "app:call"), { room: "r1" });

  // Reserved names are refused and reach nobody.
  for (const event of ["message:new", "presence", "resync", "session:revoked", "message:anything", "disconnect", "connect", "bad name"]) {
    const r = await api(env.a, "POST", `/v1/users/${bob}/events`, { event, data: {} });
    assert.equal(r.status, 400, event);
    assert.equal(r.body.error.code, "invalid");
    const c = await api(env.b, "POST", `/v1/conversations/${conv}/events`, { event });
    assert.equal(c.status, 400, event);
  }
  // Barrier: a later event to bob arrives after anything published before.
  await api(env.a, "POST", `/v1/users/${bob}/events`, { event: "app:barrier" });
  await waitFor(bobA, "app:barrier");
  await waitFor(bobB, "app:barrier");
  for (const s of [bobA, bobB]) {
    assert.equal(received(s, "message:new").length, 2, "only the two real messages");
  }
  assert.equal(carolB.log.filter((e) => e.event.startsWith("app:") || e.event === "message:new").length, 0, "non-member got nothing");

  // Presence of several users through either node, as presence:get shows it.
  const p = await api(env.b, "GET", `/v1/presence?userIds=${bob},${alice},${uid("ghost")}`);
  assert.equal(p.status, 200);
  assert.equal(p.body.presence[bob].online, true);
  assert.equal(p.body.presence[bob].devices, 2);
  assert.equal(p.body.presence[alice].online, true);
  assert.equal(Object.keys(p.body.presence).length, 3);
  const viaSocket = await aliceA.timeout(5000).emitWithAck("presence:get", { userIds: [bob] });
  assert.deepEqual(viaSocket.presence[bob], p.body.presence[bob], "same view as presence:get");
});
