// Read receipts, unread counts and the conversation list (issue 9), across
// two gateway processes.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { env, connect, uid, closeAll, ack, waitFor, received, conversation, send, api } from "./lib.mjs";

after(closeAll);

async function read(socket, conversationId, seq) {
  const res = await ack(socket, "message:read", { conversationId, seq });
  assert.ok(res.ok, `message:read: ${JSON.stringify(res)}`);
  return res.readSeq;
}

async function list(socket, payload = {}) {
  const res = await ack(socket, "conversations:list", payload);
  assert.ok(res.ok, `conversations:list: ${JSON.stringify(res)}`);
  return res;
}

async function entry(socket, conv) {
  const { conversations } = await list(socket);
  const e = conversations.find((c) => c.id === conv);
  assert.ok(e, `${socket.user}: ${conv} missing from ${JSON.stringify(conversations)}`);
  return e;
}

async function httpList(base, user, query = "") {
  const res = await api(base, "GET", `/v1/users/${user}/conversations${query}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

test("unread counts are right after sends and reads made from several devices", async () => {
  const alice = uid("alice"), bob = uid("bob"), carol = uid("carol");
  const conv = await conversation([alice, bob, carol]);
  const phone = await connect(env.a, { user: alice, deviceId: "phone" });
  const tablet = await connect(env.b, { user: alice, deviceId: "tablet" });
  const bobB = await connect(env.b, { user: bob, deviceId: "d" });
  const carolA = await connect(env.a, { user: carol, deviceId: "d" });

  await send(bobB, conv, "1 from bob");
  await send(bobB, conv, "2 from bob");
  await send(phone, conv, "3 from alice");
  await send(bobB, conv, "4 from bob");
  const last = await send(carolA, conv, "5 from carol");

  // A member's own messages are read: alice has read up to her 3.
  const unread = async (socket) => (await entry(socket, conv)).unread;
  let e = await entry(tablet, conv);
  assert.equal(e.readSeq, 3);
  assert.equal(e.unread, 2, "bob's 4 and carol's 5");
  assert.equal(e.lastSeq, 5);
  assert.deepEqual(e.lastMessage, last);
  assert.deepEqual([...e.members].sort(), [alice, bob, carol].sort());
  assert.equal(await unread(phone), 2, "the same on alice's other device, other node");
  assert.equal(await unread(bobB), 1, "carol's 5");
  assert.equal(await unread(carolA), 0);

  assert.equal(await read(phone, conv, 4), 4);
  assert.equal(await unread(tablet), 1, "read on the phone clears on the tablet");
  const viaHTTP = (await httpList(env.b, alice)).conversations.find((c) => c.id === conv);
  assert.equal(viaHTTP.unread, 1);
  assert.equal(viaHTTP.readSeq, 4);

  assert.equal(await read(tablet, conv, 5), 5);
  assert.equal(await read(phone, conv, 2), 5, "the read position never goes back");
  assert.equal(await unread(phone), 0);
  assert.equal(await read(bobB, conv, 99), 5, "never past the last seq");
  assert.equal(await unread(bobB), 0);

  // New messages count again, from others only.
  await send(carolA, conv, "6 from carol");
  await send(tablet, conv, "7 from alice");
  await send(carolA, conv, "8 from carol");
  assert.equal(await unread(phone), 1, "carol's 8: alice's 7 read everything before it");
  assert.equal(await unread(bobB), 3);
  assert.equal(await unread(carolA), 0, "her own 8 read alice's 7 too");
  assert.equal(await read(bobB, conv, 7), 7);
  assert.equal(await unread(bobB), 1);
});

test("receipts reach the other members and the reader's other devices", async () => {
  const alice = uid("alice"), bob = uid("bob"), carol = uid("carol"), dave = uid("dave");
  const conv = await conversation([alice, bob, carol]);
  const phone = await connect(env.a, { user: alice, deviceId: "phone" });
  const tablet = await connect(env.b, { user: alice, deviceId: "tablet" });
  const bobB = await connect(env.b, { user: bob, deviceId: "d" });
  let carolA = await connect(env.a, { user: carol, deviceId: "d" });
  const daveB = await connect(env.b, { user: dave, deviceId: "d" });

  await send(bobB, conv, "one");
  await send(bobB, conv, "two");
  await send(bobB, conv, "three");
  const isAlice = (seq) => (r) => r.conversationId === conv && r.userId === alice && (seq === undefined || r.seq === seq);
  assert.equal(await read(phone, conv, 1), 1);
  for (const s of [bobB, carolA, tablet]) {
    assert.deepEqual(await waitFor(s, "receipt", isAlice(1)), { conversationId: conv, userId: alice, seq: 1 });
  }
  // Reads within a second are acked at once and announced together, once.
  assert.equal(await read(phone, conv, 2), 2);
  assert.equal(await read(phone, conv, 3), 3);
  for (const s of [bobB, carolA, tablet]) await waitFor(s, "receipt", isAlice(3));
  for (const s of [bobB, carolA, tablet]) {
    const seqs = received(s, "receipt", isAlice()).map((r) => r.seq);
    assert.equal(seqs.at(-1), 3);
    assert.ok(seqs.every((v, i) => i === 0 || v > seqs[i - 1]), `${s.user}: receipts in order ${seqs}`);
    assert.ok(seqs.length <= 3, `${s.user}: ${seqs}`);
  }
  assert.equal(received(phone, "receipt", isAlice(1)).length, 0, "the reading socket gets no receipt for its own read");
  assert.equal(received(daveB, "receipt").length, 0, "non-members get no receipts");
  // Bob's read reaches alice on both devices.
  assert.equal(await read(bobB, conv, 3), 3);
  for (const s of [phone, tablet]) await waitFor(s, "receipt", (r) => r.userId === bob && r.seq === 3);

  // A reconnecting client draws ✓✓ from the sync ack alone.
  carolA.close();
  carolA = await connect(env.b, { user: carol, deviceId: "d" });
  const sync = await ack(carolA, "messages:sync", { conversationId: conv, afterSeq: 0 });
  assert.ok(sync.ok, JSON.stringify(sync));
  assert.equal(sync.messages.length, 3);
  assert.deepEqual(sync.reads, { [alice]: 3, [bob]: 3, [carol]: 0 });

  const refused = await ack(daveB, "message:read", { conversationId: conv, seq: 1 });
  assert.equal(refused.ok, false);
  assert.equal(refused.error.code, "forbidden");
  const bad = await ack(phone, "message:read", { conversationId: conv });
  assert.equal(bad.ok, false);
  assert.equal(bad.error.code, "invalid");
});

test("the conversation list is ordered by last activity and paginates", async () => {
  const dave = uid("dave"), erin = uid("erin");
  const convs = [];
  for (let i = 0; i < 5; i++) convs.push(await conversation([dave, erin]));
  const daveA = await connect(env.a, { user: dave, deviceId: "d" });
  const erinB = await connect(env.b, { user: erin, deviceId: "d" });
  const lastAt = new Map();
  for (const i of [2, 0, 4, 1, 3]) {
    const m = await send(erinB, convs[i], `to ${i}`);
    lastAt.set(convs[i], m.createdAt);
  }
  // Most recent first; equal times in descending id order.
  const order = () => [...lastAt.keys()].sort((x, y) => lastAt.get(y) - lastAt.get(x) || (x < y ? 1 : x > y ? -1 : 0));

  const walk = async (page) => {
    const ids = [];
    let cursor = null, pages = 0;
    do {
      const res = await page(cursor);
      assert.ok(res.conversations.length <= 2, JSON.stringify(res));
      ids.push(...res.conversations.map((c) => c.id));
      cursor = res.cursor;
      pages++;
    } while (cursor !== null);
    return { ids, pages };
  };
  const socketPages = () => walk((cursor) => list(daveA, cursor ? { limit: 2, cursor } : { limit: 2 }));
  const httpPages = () => walk((cursor) => httpList(env.b, dave, `?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`));
  for (const got of [await socketPages(), await httpPages()]) {
    assert.deepEqual(got.ids, order());
    assert.equal(got.pages, 3);
  }
  const first = (await list(daveA, { limit: 1 })).conversations[0];
  assert.equal(first.unread, 1);
  assert.equal(first.lastMessage.senderId, erin);
  assert.equal(first.lastMessage.content, `to ${convs.indexOf(first.id)}`);

  // Activity moves a conversation to the top, seen through the other node.
  const bottom = order().at(-1);
  const m = await send(daveA, bottom, "back to the top");
  lastAt.set(bottom, m.createdAt);
  assert.equal(order()[0], bottom);
  for (const got of [await socketPages(), await httpPages()]) assert.deepEqual(got.ids, order());
  const top = (await httpList(env.b, erin, "?limit=1")).conversations[0];
  assert.equal(top.id, bottom);
  assert.equal(top.unread, 1, "dave's message is unread for erin");

  // A page size over the maximum is clamped, not refused.
  assert.equal((await list(daveA, { limit: 100000 })).conversations.length, 5);
  const bad = await ack(daveA, "conversations:list", { cursor: "nonsense" });
  assert.equal(bad.ok, false);
  assert.equal(bad.error.code, "invalid");
  const noKey = await api(env.b, "GET", `/v1/users/${dave}/conversations`, undefined, { key: "wrong" });
  assert.equal(noKey.status, 401);
});
