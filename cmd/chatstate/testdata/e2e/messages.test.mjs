import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { env, connect, uid, closeAll, ack, waitFor, received, conversation, send } from "./lib.mjs";

after(closeAll);

test("message:new reaches every device of every member across nodes, except the sending socket and non-members", async () => {
  const alice = uid("alice"), bob = uid("bob"), carol = uid("carol");
  const conv = await conversation([alice, bob]);
  const other = await conversation([bob, carol]);
  const alicePhone = await connect(env.a, { user: alice, deviceId: "phone" });
  const aliceWeb = await connect(env.b, { user: alice, deviceId: "web" });
  const bobA = await connect(env.a, { user: bob, deviceId: "phone" });
  const bobB = await connect(env.b, { user: bob, deviceId: "web", transports: ["polling"] });
  const carolA = await connect(env.a, { user: carol, deviceId: "phone" });

  const msg = await send(alicePhone, conv, "hello");
  assert.equal(msg.conversationId, conv);
  assert.equal(msg.senderId, alice);
  assert.equal(msg.content, "hello");
  assert.equal(msg.type, "text");
  assert.equal(msg.seq, 1);
  assert.ok(msg.id && msg.createdAt > 0 && msg.clientMessageId);

  for (const s of [aliceWeb, bobA, bobB]) {
    const got = await waitFor(s, "message:new", (e) => e.message.id === msg.id);
    assert.deepEqual(got.message, msg);
  }

  // Barrier: a later message in another conversation reaches carol and, in
  // this one, alice's phone; what was published before it has arrived by then.
  const later = await send(bobA, conv, "barrier");
  await waitFor(alicePhone, "message:new", (e) => e.message.id === later.id);
  await waitFor(bobB, "message:new", (e) => e.message.id === later.id);
  const carolBarrier = await send(bobA, other, "for carol");
  await waitFor(carolA, "message:new", (e) => e.message.id === carolBarrier.id);

  assert.equal(received(alicePhone, "message:new", (e) => e.message.id === msg.id).length, 0, "sending socket must not get its own message");
  assert.equal(received(carolA, "message:new", (e) => e.message.conversationId === conv).length, 0, "non-member must not receive");
  for (const s of [aliceWeb, bobA, bobB]) {
    assert.equal(received(s, "message:new", (e) => e.message.id === msg.id).length, 1, "exactly once per device");
  }
  assert.equal(received(bobA, "message:new", (e) => e.message.id === later.id).length, 0, "bob's sending socket excluded");
  assert.equal(received(bobB, "message:new", (e) => e.message.id === later.id).length, 1, "bob's other device gets it");
});

test("resending a clientMessageId returns the same message and delivers nothing again", async () => {
  const alice = uid("alice"), bob = uid("bob");
  const conv = await conversation([alice, bob]);
  const a = await connect(env.a, { user: alice, deviceId: "d" });
  const b = await connect(env.b, { user: bob, deviceId: "d" });
  const cmid = randomUUID();
  const first = await send(a, conv, "once", cmid);
  const again = await send(a, conv, "once", cmid);
  assert.deepEqual(again, first);
  const next = await send(a, conv, "next");
  assert.equal(next.seq, first.seq + 1, "the duplicate consumed no seq");
  await waitFor(b, "message:new", (e) => e.message.id === next.id);
  assert.equal(received(b, "message:new", (e) => e.message.id === first.id).length, 1);
});

test("seq is unique and strictly increasing per conversation under concurrent senders on two nodes", async () => {
  const users = [uid("u1"), uid("u2"), uid("u3")];
  const watcher = uid("watch");
  const conv = await conversation([...users, watcher]);
  const senders = await Promise.all(users.map((u, i) => connect(i % 2 ? env.b : env.a, { user: u, deviceId: "d" })));
  const w = await connect(env.b, { user: watcher, deviceId: "d" });
  const perSender = 15;
  const acks = await Promise.all(
    senders.map(async (s) => {
      const pending = [];
      for (let i = 0; i < perSender; i++) pending.push(send(s, conv, `m${i}`));
      return Promise.all(pending);
    }),
  );
  const all = acks.flat().map((m) => m.seq).sort((x, y) => x - y);
  assert.deepEqual(all, Array.from({ length: users.length * perSender }, (_, i) => i + 1));
  for (const list of acks) {
    for (let i = 1; i < list.length; i++) assert.ok(list[i].seq > list[i - 1].seq, "one socket's sends keep their order");
  }
  const total = users.length * perSender;
  const deadline = Date.now() + 5000;
  while (received(w, "message:new", (e) => e.message.conversationId === conv).length < total && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const got = received(w, "message:new", (e) => e.message.conversationId === conv).map((e) => e.message.seq);
  // Messages are persisted before fan-out, so concurrent sends from two
  // nodes may arrive out of seq order; clients order by seq.
  assert.deepEqual([...got].sort((x, y) => x - y), all, "watcher got each message exactly once");
});

test("messages:sync returns the messages after a seq, ascending", async () => {
  const alice = uid("alice"), bob = uid("bob");
  const conv = await conversation([alice, bob]);
  const a = await connect(env.a, { user: alice, deviceId: "d" });
  const sent = [];
  for (let i = 0; i < 5; i++) sent.push(await send(a, conv, `m${i}`));
  const b = await connect(env.b, { user: bob, deviceId: "d" });
  const res = await ack(b, "messages:sync", { conversationId: conv, afterSeq: 2 });
  assert.equal(res.ok, true);
  assert.deepEqual(res.messages.map((m) => m.seq), [3, 4, 5]);
  assert.deepEqual(res.messages, sent.slice(2));
  const limited = await ack(b, "messages:sync", { conversationId: conv, limit: 2 });
  assert.deepEqual(limited.messages.map((m) => m.seq), [1, 2]);
});

test("send is rate limited per user with retryAfterMs", async () => {
  const alice = uid("alice"), bob = uid("bob");
  const conv = await conversation([alice, bob]);
  const a = await connect(env.a, { user: alice, deviceId: "d" });
  for (let i = 0; i < env.rateLimit; i++) await send(a, conv, `m${i}`);
  const res = await ack(a, "message:send", { conversationId: conv, clientMessageId: randomUUID(), content: "too many" });
  assert.equal(res.ok, false);
  assert.equal(res.error.code, "rate_limited");
  assert.ok(res.error.retryAfterMs > 0, `retryAfterMs ${res.error.retryAfterMs}`);
  // The limit is per user, not per socket: another device is limited too.
  const a2 = await connect(env.b, { user: alice, deviceId: "d2" });
  const res2 = await ack(a2, "message:send", { conversationId: conv, clientMessageId: randomUUID(), content: "x" });
  assert.equal(res2.error.code, "rate_limited");
});

test("bad input gets clear error codes and stores nothing", async () => {
  const alice = uid("alice"), bob = uid("bob"), carol = uid("carol");
  const conv = await conversation([alice, bob]);
  const a = await connect(env.a, { user: alice, deviceId: "d" });
  const c = await connect(env.a, { user: carol, deviceId: "d" });
  const cases = [
    [a, "message:send", {}, "invalid"],
    [a, "message:send", "not an object", "invalid"],
    [a, "message:send", { conversationId: conv, clientMessageId: "x", content: "" }, "invalid"],
    [a, "message:send", { conversationId: "bad id", clientMessageId: "x", content: "hi" }, "invalid"],
    [a, "message:send", { conversationId: conv, clientMessageId: "x{}", content: "hi" }, "invalid"],
    [a, "message:send", { conversationId: conv, clientMessageId: "x", content: "y".repeat(17 * 1024) }, "too_large"],
    [a, "message:send", { conversationId: conv, clientMessageId: "x", content: "hi", type: "no spaces allowed" }, "invalid"],
    [a, "message:send", { conversationId: uid("nope"), clientMessageId: "x", content: "hi" }, "not_found"],
    [c, "message:send", { conversationId: conv, clientMessageId: "x", content: "hi" }, "forbidden"],
    [c, "messages:sync", { conversationId: conv }, "forbidden"],
    [c, "typing:start", { conversationId: conv }, "forbidden"],
    [a, "messages:sync", { conversationId: conv, afterSeq: -1 }, "invalid"],
    [a, "presence:update", { status: "sleeping" }, "invalid"],
    [a, "presence:get", { userIds: ["bad id"] }, "invalid"],
    [a, "presence:get", { userIds: Array.from({ length: 501 }, (_, i) => `u${i}`) }, "too_large"],
    [a, "no:such:event", {}, "invalid"],
  ];
  for (const [s, event, payload, code] of cases) {
    const res = await ack(s, event, payload);
    assert.equal(res.ok, false, `${event} ${JSON.stringify(payload).slice(0, 80)}`);
    assert.equal(res.error.code, code, `${event} ${JSON.stringify(payload).slice(0, 80)}: ${JSON.stringify(res.error)}`);
    assert.ok(res.error.message.length > 0);
  }
  const sync = await ack(a, "messages:sync", { conversationId: conv });
  assert.deepEqual(sync.messages, [], "nothing was stored");
});
