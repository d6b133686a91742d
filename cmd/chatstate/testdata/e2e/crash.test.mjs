// Gateway C crashes (SIGKILL through its fault-injection hook) right after
// persisting a message, before caching, fan-out and ack. No other file uses C.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { env, api, connect, uid, closeAll, ack, waitFor, received, friends, conversation, send, poll } from "./lib.mjs";

after(closeAll);

test("a crash between persist and ack loses nothing and a resend delivers once; the node's users go offline", async () => {
  const alice = uid("alice"), bob = uid("bob"), dave = uid("dave"), erin = uid("erin");
  const conv = await conversation([alice, bob]);
  await friends(dave, [erin]);
  const erinA = await connect(env.a, { user: erin, deviceId: "d" });
  await connect(env.c, { user: dave, deviceId: "phone" });
  await waitFor(erinA, "presence", (p) => p.userId === dave && p.online);

  const bobA = await connect(env.a, { user: bob, deviceId: "phone" });
  const bobB = await connect(env.b, { user: bob, deviceId: "web" });
  const aliceWeb = await connect(env.b, { user: alice, deviceId: "web" });
  const alicePhone = await connect(env.c, { user: alice, deviceId: "phone" });

  // Seq before the crash: the crashed send reserved the next one.
  const before = await send(bobA, conv, "before");
  // Both receivers, not just one: a device's copy may arrive after another's.
  for (const s of [aliceWeb, bobB]) await waitFor(s, "message:new", (e) => e.message.id === before.id);
  for (const s of [bobA, bobB, aliceWeb]) s.log.length = 0;

  const cmid = randomUUID();
  const payload = { conversationId: conv, clientMessageId: cmid, content: env.crashContent };
  const killed = new Promise((resolve) => alicePhone.once("disconnect", resolve));
  const first = ack(alicePhone, "message:send", payload).then(
    (res) => ({ res }),
    (err) => ({ err }),
  );
  await killed;
  const outcome = await first;
  assert.ok(outcome.err, `no ack may arrive from the crashed node, got ${JSON.stringify(outcome.res)}`);
  const killedAt = Date.now();
  // The dead node stored it and never committed it: its seq is unsettled
  // (gateway C's settle timeout outlasts the test), so history does not
  // show it yet, and nobody got it.
  const persisted = await api(env.a, "GET", `/v1/conversations/${conv}/messages?afterSeq=0`);
  assert.deepEqual(persisted.body.messages.map((m) => m.id), [before.id], "nothing past the unsettled seq is readable");
  for (const s of [bobA, bobB, aliceWeb]) assert.equal(received(s, "message:new").length, 0);

  // The phone reconnects elsewhere and resends.
  const again = await connect(env.a, { user: alice, deviceId: "phone" });
  const res = await ack(again, "message:send", payload);
  assert.equal(res.ok, true, JSON.stringify(res));
  assert.equal(res.message.clientMessageId, cmid);
  assert.equal(res.message.seq, before.seq + 1, "the resend returns the copy stored before the crash, at its reserved seq");
  const msg = res.message;

  const barrier = await send(again, conv, "barrier");
  for (const s of [bobA, bobB, aliceWeb]) {
    await waitFor(s, "message:new", (e) => e.message.id === barrier.id);
    assert.equal(received(s, "message:new", (e) => e.message.clientMessageId === cmid).length, 1, "exactly one delivery per device");
  }
  const resend = await ack(again, "message:send", payload);
  assert.deepEqual(resend.message, msg, "a further resend returns the same message");

  const history = await api(env.a, "GET", `/v1/conversations/${conv}/messages?afterSeq=0`);
  assert.equal(history.status, 200);
  assert.equal(history.body.messages.filter((m) => m.clientMessageId === cmid).length, 1, "stored exactly once");

  // Dave was only on C: he shows offline within a minute, and erin is told.
  await poll(async () => !(await ack(erinA, "presence:get", { userIds: [dave] })).presence[dave].online, 60000, "dave offline");
  const offline = await waitFor(erinA, "presence", (p) => p.userId === dave && !p.online, 60000);
  assert.equal(offline.status, "offline");
  assert.ok(Date.now() - killedAt < 60000);
});
