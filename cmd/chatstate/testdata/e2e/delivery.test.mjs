// The seq invariant under faults (docs/delivery.md): a client that keeps
// the highest seq it has seen per conversation, and syncs from it after any
// reconnect, gets every acknowledged message exactly once. Gateway A holds
// a message's persist (its seq reserved) until the test releases it;
// gateway C holds one and is killed with SIGKILL while it does.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { env, connect, uid, closeAll, ack, waitFor, received, conversation, send, poll, api } from "./lib.mjs";

after(closeAll);

const dirs = [process.env.DIR_A, process.env.DIR_B, process.env.DIR_C];
const stored = (conv, seq) => dirs.some((d) => existsSync(join(d, `stored-${conv}-${seq}`)));
const held = (dir) => (existsSync(join(dir, "held")) ? Number(readFileSync(join(dir, "held"), "utf8")) : 0);

const sync = async (socket, conv, afterSeq) => {
  const res = await ack(socket, "messages:sync", { conversationId: conv, afterSeq });
  assert.equal(res.ok, true, JSON.stringify(res));
  return res.messages;
};
const liveSeqs = (socket, conv) => received(socket, "message:new", (e) => e.message.conversationId === conv).map((e) => e.message.seq);

test("a later seq stays hidden, live, in acks and in sync, until a held earlier one settles", async () => {
  const alice = uid("alice"), bob = uid("bob"), carol = uid("carol");
  const conv = await conversation([alice, bob, carol]);
  const aliceA = await connect(env.a, { user: alice, deviceId: "phone" });
  const bobB = await connect(env.b, { user: bob, deviceId: "phone" });
  const carolB = await connect(env.b, { user: carol, deviceId: "phone" });
  const carolA = await connect(env.a, { user: carol, deviceId: "tablet" });

  const first = await send(bobB, conv, "first");
  await waitFor(carolB, "message:new", (e) => e.message.id === first.id);
  let highest = first.seq; // what carol's phone remembers

  // Alice's message reserves the next seq and is held before its store write.
  const heldAck = ack(aliceA, "message:send", { conversationId: conv, clientMessageId: randomUUID(), content: process.env.HOLD_CONTENT });
  const heldSeq = await poll(() => held(process.env.DIR_A), 10000, "the held persist");
  assert.equal(heldSeq, first.seq + 1);

  // Bob's later message is stored on another node while alice's is held.
  let bobAcked = null;
  const laterAck = socketAck(bobB, { conversationId: conv, clientMessageId: randomUUID(), content: "later" }).then((res) => {
    bobAcked = { res, liveBefore: liveSeqs(bobB, conv) };
    return res;
  });
  await poll(() => stored(conv, heldSeq + 1), 10000, "the later message in the store");

  // Carol's phone syncs during the hold: nothing past the held seq, and
  // nothing live or acked either.
  assert.deepEqual(await sync(carolB, conv, highest), [], "sync must not expose a seq above an unsettled one");
  const history = await api(env.b, "GET", `/v1/conversations/${conv}/messages?afterSeq=${highest}`);
  assert.deepEqual(history.body.messages, [], "nor may history");
  for (const s of [carolB, carolA]) assert.ok(!liveSeqs(s, conv).includes(heldSeq + 1), "no live delivery past the held seq");
  assert.equal(bobAcked, null, "no ack past the held seq");
  carolB.close(); // and disconnects right after

  writeFileSync(join(process.env.DIR_A, "release"), "");
  const [heldRes, laterRes] = await Promise.all([heldAck, laterAck]);
  assert.equal(heldRes.ok, true, JSON.stringify(heldRes));
  assert.equal(laterRes.ok, true, JSON.stringify(laterRes));
  assert.deepEqual([heldRes.message.seq, laterRes.message.seq], [heldSeq, heldSeq + 1]);
  // Bob's own ack came behind alice's message on his socket.
  assert.ok(bobAcked.liveBefore.includes(heldSeq), `bob saw seq ${heldSeq} before the ack of ${heldSeq + 1}: ${bobAcked.liveBefore}`);

  // Carol's phone comes back through the other node and syncs from the
  // highest seq it saw: it gets the held message and the later one, once.
  const carolBack = await connect(env.a, { user: carol, deviceId: "phone" });
  const caught = await sync(carolBack, conv, highest);
  assert.deepEqual(caught.map((m) => m.id), [heldRes.message.id, laterRes.message.id]);
  highest = caught.at(-1).seq;
  assert.deepEqual(await sync(carolBack, conv, highest), []);
  // Carol's tablet stayed online: it got both live, in seq order.
  await waitFor(carolA, "message:new", (e) => e.message.id === laterRes.message.id);
  assert.deepEqual(liveSeqs(carolA, conv), [first.seq, heldSeq, heldSeq + 1]);
});

test("a seq held by a node killed with SIGKILL is skipped after the settle timeout and its message resent", async () => {
  const alice = uid("alice"), bob = uid("bob"), carol = uid("carol");
  const conv = await conversation([alice, bob, carol]);
  const aliceC = await connect(env.c, { user: alice, deviceId: "phone" });
  const bobB = await connect(env.b, { user: bob, deviceId: "phone" });
  const carolA = await connect(env.a, { user: carol, deviceId: "phone" });
  const first = await send(bobB, conv, "first");

  const cmid = randomUUID();
  const payload = { conversationId: conv, clientMessageId: cmid, content: process.env.DIE_CONTENT };
  const lost = socketAck(aliceC, payload).then((res) => ({ res }), (err) => ({ err }));
  const heldSeq = await poll(() => held(process.env.DIR_C), 10000, "the held persist on C");
  assert.equal(heldSeq, first.seq + 1);
  const gone = new Promise((resolve) => aliceC.once("disconnect", resolve));
  process.kill(Number(process.env.GATEWAY_C_PID), "SIGKILL");
  await gone;
  assert.ok((await lost).err, "no ack from the killed node");

  // Later sends complete once C's seq times out (1 s on C), and it is skipped.
  const later = await socketAck(bobB, { conversationId: conv, clientMessageId: randomUUID(), content: "later" }, 10000);
  assert.equal(later.ok, true, JSON.stringify(later));
  assert.equal(later.message.seq, heldSeq + 1);
  // Alice resends through another node: stored once, at a new seq.
  const aliceB = await connect(env.b, { user: alice, deviceId: "phone" });
  const resent = await socketAck(aliceB, payload, 10000);
  assert.equal(resent.ok, true, JSON.stringify(resent));
  assert.equal(resent.message.seq, heldSeq + 2);

  const all = await sync(carolA, conv, 0);
  assert.deepEqual(all.map((m) => m.seq), [first.seq, heldSeq + 1, heldSeq + 2], "the skipped seq is a gap, never a message");
  assert.equal(all.filter((m) => m.clientMessageId === cmid).length, 1);
  await waitFor(carolA, "message:new", (e) => e.message.id === resent.message.id);
  assert.deepEqual(liveSeqs(carolA, conv), [first.seq, heldSeq + 1, heldSeq + 2]);
});

// socketAck emits message:send with a longer deadline than lib's ack.
function socketAck(socket, payload, timeoutMs = 20000) {
  return socket.timeout(timeoutMs).emitWithAck("message:send", payload);
}
