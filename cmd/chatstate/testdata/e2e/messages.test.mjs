import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { env, connect, uid, closeAll, ack, waitFor, received, conversation, send, poll } from "./lib.mjs";

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

test("concurrent senders on two nodes: unique seqs, and every device and sync sees them in order with no gap", async () => {
  const users = Array.from({ length: 6 }, (_, i) => uid(`u${i}`));
  const watcher = uid("watch"), reader = uid("reader");
  const conv = await conversation([...users, watcher, reader]);
  const senders = await Promise.all(users.map((u, i) => connect(i % 2 ? env.b : env.a, { user: u, deviceId: "d" })));
  const w = await connect(env.b, { user: watcher, deviceId: "d" });
  const r = await connect(env.a, { user: reader, deviceId: "d" });
  const perSender = 10;
  const total = users.length * perSender;
  // The reader syncs from the highest seq it has seen, over and over, while
  // the senders run: it must never skip one.
  const readerSeen = [];
  let stop = false;
  const reading = (async () => {
    for (;;) {
      const done = stop; // every send was acked before this sync
      const res = await ack(r, "messages:sync", { conversationId: conv, afterSeq: readerSeen.at(-1) ?? 0 });
      assert.equal(res.ok, true, JSON.stringify(res));
      readerSeen.push(...res.messages.map((m) => m.seq));
      if (readerSeen.length >= total || (done && res.messages.length === 0)) return;
      await new Promise((resolve) => setTimeout(resolve, 60)); // pace: the event rate limit is 20/s
    }
  })();
  const acks = await Promise.all(
    senders.map(async (s) => {
      const pending = [];
      for (let i = 0; i < perSender; i++) {
        pending.push(send(s, conv, `m${i}`).then((m) => (s.log.push({ event: "ack", args: [{ message: m }] }), m)));
      }
      return Promise.all(pending);
    }),
  );
  stop = true;
  await reading;
  const all = acks.flat().map((m) => m.seq).sort((x, y) => x - y);
  assert.deepEqual(all, Array.from({ length: total }, (_, i) => i + 1));
  for (const list of acks) {
    for (let i = 1; i < list.length; i++) assert.ok(list[i].seq > list[i - 1].seq, "one socket's sends keep their order");
  }
  assert.deepEqual(readerSeen, all, "syncing from the highest seq seen never skips one");
  const inConv = (e) => (e.event === "message:new" || e.event === "ack") && e.args[0].message.conversationId === conv;
  await poll(() => w.log.filter(inConv).length === total, 10000, "watcher deliveries");
  for (const s of [w, ...senders]) {
    await poll(() => s.log.filter(inConv).length === total, 10000, `${s.user}: every message, live or acked`);
    const log = s.log.filter(inConv).map((e) => ({ ack: e.event === "ack", seq: e.args[0].message.seq }));
    const trace = JSON.stringify(log.map((e) => (e.ack ? "a" : "m") + e.seq));
    assert.deepEqual(log.map((e) => e.seq).sort((x, y) => x - y), all, `${s.user} got each message exactly once: ${trace}`);
    // Live deliveries come in seq order. An ack may come after later
    // messages (the socket's handler wakes after the hub delivered them:
    // the client still holds that message as unacked and would resend it),
    // but never before an earlier one.
    const live = log.filter((e) => !e.ack).map((e) => e.seq);
    assert.deepEqual(live, [...live].sort((x, y) => x - y), `${s.user}: live deliveries out of seq order: ${trace}`);
    log.forEach((e, i) => {
      if (!e.ack) return;
      const seen = new Set(log.slice(0, i).map((x) => x.seq));
      for (let q = 1; q < e.seq; q++) assert.ok(seen.has(q), `${s.user}: the ack of ${e.seq} came before seq ${q}: ${trace}`);
    });
  }
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
