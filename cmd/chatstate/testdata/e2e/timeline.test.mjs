// Timeline entries (docs/timeline.md): edits, deletes, reactions and
// membership changes are messages of their own (type edit | delete |
// reaction | members) that take the next seq and arrive as message:new;
// the stored and cached original shows the final state.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { env, connect, uid, closeAll, ack, waitFor, received, conversation, send, api } from "./lib.mjs";

after(closeAll);

// applyEntry is the client's reducer: view maps message id -> message as the
// app shows it. It mirrors chatstate.Message.Apply.
function applyEntry(view, m) {
  if (m.type === "members") return;
  if (!["edit", "delete", "reaction"].includes(m.type)) {
    view.set(m.id, structuredClone(m));
    return;
  }
  const o = view.get(m.target);
  if (!o || o.deleted) return;
  if (m.type === "edit") {
    o.content = m.content;
    o.editedAt = m.createdAt;
  } else if (m.type === "delete") {
    o.deleted = true;
    o.content = "";
    delete o.editedAt;
    delete o.reactions;
  } else {
    const r = o.reactions ?? {};
    const users = (r[m.content] ?? []).filter((u) => u !== m.senderId);
    if (!m.remove) users.push(m.senderId);
    if (users.length) r[m.content] = users;
    else delete r[m.content];
    if (Object.keys(r).length) o.reactions = r;
    else delete o.reactions;
  }
}

// track keeps a device's view and highest seq from message:new and its own acks.
function track(socket, conv) {
  const dev = { view: new Map(), last: 0, seqs: [] };
  dev.take = (m) => {
    if (m.conversationId !== conv || m.seq <= dev.last) return;
    dev.seqs.push(m.seq);
    dev.last = m.seq;
    applyEntry(dev.view, m);
  };
  socket.on("message:new", (e) => dev.take(e.message));
  return dev;
}

async function entry(socket, event, payload) {
  const res = await ack(socket, event, payload);
  if (!res.ok) throw new Error(`${event} failed: ${JSON.stringify(res)}`);
  return res.message;
}

const viewOf = (msgs) => {
  const v = new Map();
  for (const m of msgs) if (!["edit", "delete", "reaction", "members"].includes(m.type)) v.set(m.id, m);
  return v;
};

test("a device that was offline through an edit, a delete and a reaction syncs from its last seq and ends with the same view as a device that stayed online", async () => {
  const alice = uid("alice"), bob = uid("bob");
  const conv = await conversation([alice, bob]);
  const alicePhone = await connect(env.a, { user: alice, deviceId: "phone" });
  const bobPhone = await connect(env.b, { user: bob, deviceId: "phone" });
  const bobTablet = await connect(env.a, { user: bob, deviceId: "tablet" });
  const online = track(bobPhone, conv);
  const tablet = track(bobTablet, conv);

  const m1 = await send(alicePhone, conv, "first");
  const m2 = await send(alicePhone, conv, "second");
  const m3 = await send(alicePhone, conv, "third");
  await waitFor(bobTablet, "message:new", (e) => e.message.id === m3.id);
  await waitFor(bobPhone, "message:new", (e) => e.message.id === m3.id);
  assert.equal(tablet.last, m3.seq);
  bobTablet.close();

  const edit = await entry(alicePhone, "message:edit", { conversationId: conv, messageId: m1.id, content: "first, edited" });
  assert.equal(edit.type, "edit");
  assert.equal(edit.target, m1.id);
  assert.equal(edit.targetSeq, m1.seq);
  assert.equal(edit.content, "first, edited");
  assert.equal(edit.seq, m3.seq + 1, "an entry takes the next seq");
  const del = await entry(alicePhone, "message:delete", { conversationId: conv, messageId: m2.id });
  assert.equal(del.type, "delete");
  assert.equal(del.target, m2.id);
  // Bob's own reactions reach his phone as acks (the sending socket is
  // excluded from the publication), alice's as message:new.
  online.take(await entry(bobPhone, "message:react", { conversationId: conv, messageId: m3.id, emoji: "👍" }));
  await entry(alicePhone, "message:react", { conversationId: conv, messageId: m3.id, emoji: "❤️" });
  const unreact = await entry(bobPhone, "message:react", { conversationId: conv, messageId: m3.id, emoji: "👍", remove: true });
  assert.equal(unreact.type, "reaction");
  assert.equal(unreact.remove, true);
  assert.equal(unreact.content, "👍");
  await waitFor(bobPhone, "message:new", (e) => e.message.seq === unreact.seq - 1);
  online.take(unreact);
  const last = await send(alicePhone, conv, "after the changes");
  await waitFor(bobPhone, "message:new", (e) => e.message.id === last.id);

  // The phone saw every seq once, in order.
  assert.deepEqual(online.seqs, Array.from({ length: last.seq }, (_, i) => i + 1));
  const want = new Map([
    [m1.id, { ...m1, content: "first, edited", editedAt: edit.createdAt }],
    [m2.id, { ...m2, content: "", deleted: true }],
    [m3.id, { ...m3, reactions: { "❤️": [alice] } }],
    [last.id, last],
  ]);
  assert.deepEqual(online.view, want);

  // The tablet comes back on the other node and syncs from its last seq.
  const back = await connect(env.b, { user: bob, deviceId: "tablet" });
  const res = await ack(back, "messages:sync", { conversationId: conv, afterSeq: tablet.last });
  assert.ok(res.ok, JSON.stringify(res));
  assert.deepEqual(res.messages.map((m) => m.seq), Array.from({ length: last.seq - m3.seq }, (_, i) => m3.seq + 1 + i), "every change, in order, no gap");
  assert.deepEqual(res.messages.map((m) => m.type), ["edit", "delete", "reaction", "reaction", "reaction", "text"]);
  for (const m of res.messages) tablet.take(m);
  assert.deepEqual(tablet.view, online.view, "the synced device shows what the online one shows");

  // History shows the final state: from the cache (sync from 0) and from
  // the store (paging back with beforeSeq).
  const all = await ack(back, "messages:sync", { conversationId: conv, afterSeq: 0 });
  assert.deepEqual(viewOf(all.messages), want, "cached history");
  const page = await api(env.a, "GET", `/v1/conversations/${conv}/messages?beforeSeq=${last.seq + 1}&limit=100`);
  assert.equal(page.status, 200, JSON.stringify(page.body));
  assert.deepEqual(viewOf(page.body.messages), want, "stored history");
});

test("edit and delete are for the sender only; reactions for any member, limited", async () => {
  const alice = uid("alice"), bob = uid("bob"), eve = uid("eve");
  const conv = await conversation([alice, bob]);
  await conversation([eve]);
  const a = await connect(env.a, { user: alice, deviceId: "d" });
  const b = await connect(env.b, { user: bob, deviceId: "d" });
  const e = await connect(env.a, { user: eve, deviceId: "d" });
  const m = await send(a, conv, "mine");
  const code = async (s, event, payload) => {
    const res = await ack(s, event, payload);
    assert.equal(res.ok, false, `${event} ${JSON.stringify(payload)} should fail`);
    return res.error.code;
  };

  assert.equal(await code(b, "message:edit", { conversationId: conv, messageId: m.id, content: "not yours" }), "forbidden");
  assert.equal(await code(b, "message:delete", { conversationId: conv, messageId: m.id }), "forbidden");
  assert.equal(await code(e, "message:react", { conversationId: conv, messageId: m.id, emoji: "👍" }), "forbidden", "non-member");
  assert.equal(await code(e, "message:edit", { conversationId: conv, messageId: m.id, content: "x" }), "forbidden", "non-member");
  assert.equal(await code(a, "message:edit", { conversationId: conv, messageId: "no-such-message", content: "x" }), "not_found");
  assert.equal(await code(a, "message:edit", { conversationId: conv, messageId: m.id, content: "" }), "invalid");
  assert.equal(await code(b, "message:react", { conversationId: conv, messageId: m.id, emoji: "a b" }), "invalid");
  assert.equal(await code(b, "message:react", { conversationId: conv, messageId: m.id, emoji: "x".repeat(33) }), "too_large");
  // Clients cannot write entries through message:send.
  for (const type of ["edit", "delete", "reaction", "members", "skip"]) {
    const res = await ack(a, "message:send", { conversationId: conv, clientMessageId: uid("c"), content: "x", type });
    assert.equal(res.ok, false);
    assert.equal(res.error.code, "invalid", type);
  }
  // Nobody saw an entry for a refused event.
  const barrier = await send(a, conv, "barrier");
  await waitFor(b, "message:new", (ev) => ev.message.id === barrier.id);
  assert.equal(barrier.seq, m.seq + 1, "refused events take no seq");

  const r = await entry(b, "message:react", { conversationId: conv, messageId: m.id, emoji: "👍" });
  const got = await waitFor(a, "message:new", (ev) => ev.message.id === r.id);
  assert.deepEqual(got.message, r);
  // An entry is not a message: it cannot be edited or reacted to.
  assert.equal(await code(b, "message:react", { conversationId: conv, messageId: r.id, emoji: "👍" }), "not_found");

  // Reactions per user per message are limited.
  const m2 = await send(a, conv, "react a lot");
  for (let i = 0; i < 19; i++) await entry(b, "message:react", { conversationId: conv, messageId: m2.id, emoji: `e${i}` });
  await entry(b, "message:react", { conversationId: conv, messageId: m2.id, emoji: "e0" }); // again: still 19
  await entry(b, "message:react", { conversationId: conv, messageId: m2.id, emoji: "last" });
  assert.equal(await code(b, "message:react", { conversationId: conv, messageId: m2.id, emoji: "one-too-many" }), "too_large");
  await entry(b, "message:react", { conversationId: conv, messageId: m2.id, emoji: "e1", remove: true });
  await entry(b, "message:react", { conversationId: conv, messageId: m2.id, emoji: "fits-again" });

  const ed = await entry(a, "message:edit", { conversationId: conv, messageId: m.id, content: "edited" });
  assert.equal((await waitFor(b, "message:new", (ev) => ev.message.id === ed.id)).message.content, "edited");
  await entry(a, "message:delete", { conversationId: conv, messageId: m.id });
  assert.equal(await code(a, "message:edit", { conversationId: conv, messageId: m.id, content: "again" }), "conflict", "editing a deleted message");
  assert.equal(await code(a, "message:delete", { conversationId: conv, messageId: m.id }), "not_found", "deleting twice");
  assert.equal(await code(b, "message:react", { conversationId: conv, messageId: m.id, emoji: "👍" }), "not_found", "reacting to a deleted message");
});

test("a removed member stops receiving on both nodes at once and is refused on send and sync; an added member reads the whole history", async () => {
  const alice = uid("alice"), bob = uid("bob"), carol = uid("carol"), dave = uid("dave");
  const conv = await conversation([alice, bob, carol]);
  const elsewhere = await conversation([alice, carol]);
  const a = await connect(env.a, { user: alice, deviceId: "d" });
  const b = await connect(env.b, { user: bob, deviceId: "d" });
  const carolA = await connect(env.a, { user: carol, deviceId: "phone" });
  const carolB = await connect(env.b, { user: carol, deviceId: "web" });
  const d = await connect(env.b, { user: dave, deviceId: "d" });
  const before = await send(a, conv, "before the change");
  for (const s of [carolA, carolB]) await waitFor(s, "message:new", (e) => e.message.id === before.id);

  assert.equal((await api(env.b, "POST", `/v1/conversations/${conv}/members`, { remove: [carol] }, { key: "wrong" })).status, 401);
  assert.equal((await api(env.b, "POST", `/v1/conversations/${uid("nope")}/members`, { add: [dave] })).status, 404);
  assert.equal((await api(env.b, "POST", `/v1/conversations/${conv}/members`, {})).status, 400);
  assert.equal((await api(env.b, "POST", `/v1/conversations/${conv}/members`, { add: [carol], remove: [carol] })).status, 400);

  // Sends on both nodes race the change: none with a seq above the members
  // entry may reach carol.
  const bobA = await connect(env.a, { user: bob, deviceId: "second" });
  const racing = [];
  for (let i = 0; i < 6; i++) racing.push(send(i % 2 ? a : bobA, conv, `racing ${i}`), send(b, conv, `racing b ${i}`));
  const [res] = await Promise.all([
    api(env.b, "POST", `/v1/conversations/${conv}/members`, { add: [dave], remove: [carol], actorId: alice }),
    ...racing,
  ]);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.id, conv);
  assert.deepEqual(res.body.members, [alice, bob, dave]);
  // Old and new members (both of carol's devices on both nodes, and dave)
  // get the members entry.
  for (const s of [a, b, carolA, carolB, d]) {
    const got = await waitFor(s, "message:new", (e) => e.message.conversationId === conv && e.message.type === "members");
    assert.deepEqual(got.message.members, { added: [dave], removed: [carol] });
    assert.equal(got.message.senderId, alice);
    assert.equal(got.message.seq, res.body.entry.seq);
  }
  const entrySeq = res.body.entry.seq;

  const afterMsg = await send(a, conv, "after the change");
  for (const s of [b, d]) await waitFor(s, "message:new", (e) => e.message.id === afterMsg.id);
  // Barrier: a later message to carol in another conversation reached both
  // her devices, so anything published to her before it has arrived.
  const barrier = await send(a, elsewhere, "barrier");
  for (const s of [carolA, carolB]) await waitFor(s, "message:new", (e) => e.message.id === barrier.id);
  for (const s of [carolA, carolB]) {
    assert.equal(received(s, "message:new", (e) => e.message.id === afterMsg.id).length, 0, "a removed member receives nothing more");
    const late = received(s, "message:new", (e) => e.message.conversationId === conv && e.message.seq > entrySeq);
    assert.deepEqual(late.map((e) => e.message.seq), [], "nothing after the members entry, even from sends racing it");
  }
  for (const [event, payload] of [
    ["message:send", { conversationId: conv, clientMessageId: uid("c"), content: "still here?" }],
    ["messages:sync", { conversationId: conv, afterSeq: 0 }],
    ["message:react", { conversationId: conv, messageId: before.id, emoji: "👍" }],
    ["typing:start", { conversationId: conv }],
  ]) {
    for (const s of [carolA, carolB]) {
      const r = await ack(s, event, payload);
      assert.equal(r.ok, false, event);
      assert.equal(r.error.code, "forbidden", event);
    }
  }
  // Dave reads the whole history, from before he joined.
  const hist = await ack(d, "messages:sync", { conversationId: conv, afterSeq: 0 });
  assert.ok(hist.ok, JSON.stringify(hist));
  assert.deepEqual(hist.messages.map((m) => m.seq), Array.from({ length: afterMsg.seq }, (_, i) => i + 1));
  assert.equal(hist.messages[0].content, "before the change");
  // Dave can send; carol back in is a member again.
  await send(d, conv, "hi, I'm new");
  const readd = await api(env.a, "POST", `/v1/conversations/${conv}/members`, { add: [carol] });
  assert.deepEqual(readd.body.members, [alice, bob, dave, carol]);
  await waitFor(carolA, "message:new", (e) => e.message.conversationId === conv && e.message.type === "members" && e.message.members.added[0] === carol);
  await send(carolB, conv, "I'm back");
  // A change that changes nothing appends nothing.
  const noop = await api(env.a, "POST", `/v1/conversations/${conv}/members`, { add: [carol] });
  assert.equal(noop.status, 200);
  assert.equal(noop.body.entry, undefined);
  // With a requestId a retry answers the same entry, delivered once.
  const erin = uid("erin");
  const req = { add: [erin], requestId: uid("req") };
  const first = await api(env.a, "POST", `/v1/conversations/${conv}/members`, req);
  const retry = await api(env.b, "POST", `/v1/conversations/${conv}/members`, req);
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.deepEqual(retry.body, first.body);
  assert.deepEqual(first.body.entry.members, { added: [erin], removed: [] });
  const tail = await send(a, conv, "tail");
  await waitFor(b, "message:new", (e) => e.message.id === tail.id);
  assert.equal(received(b, "message:new", (e) => e.message.type === "members" && e.message.members.added[0] === erin).length, 1);
  assert.equal(tail.seq, first.body.entry.seq + 1, "the retry took no seq");
});
