// The demo page's timeline reducer (web/static/thread.js) without a
// browser: dedupe by seq, entries applied by the server's rules
// (chatstate.Message.Apply), history pages put in front.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Thread, apply } from "../../../../web/static/thread.js";

const msg = (seq, extra = {}) => ({ id: `m${seq}`, seq, conversationId: "c", senderId: "alice", type: "text", content: `m${seq}`, createdAt: seq, ...extra });
const entry = (seq, type, target, extra = {}) => msg(seq, { type, target: target.id, targetSeq: target.seq, content: "", ...extra });

test("a seq taken in twice is drawn once", () => {
  const t = new Thread("c");
  assert.equal(t.add(msg(1)), true);
  assert.equal(t.add(msg(2)), true);
  assert.equal(t.add(msg(1)), false, "the same seq from a sync after the live copy");
  assert.deepEqual(t.ordered().map((m) => m.seq), [1, 2]);
  assert.equal(t.maxSeq, 2);
});

test("entries apply in seq order, and a delete is final", () => {
  const t = new Thread("c");
  const m = msg(1);
  t.add(m);
  t.add(entry(2, "edit", m, { content: "v2" }));
  t.add(entry(3, "reaction", m, { content: "👍", senderId: "bob" }));
  t.add(entry(4, "reaction", m, { content: "👍", senderId: "carol" }));
  t.add(entry(5, "reaction", m, { content: "👍", senderId: "bob", remove: true }));
  let got = t.byId.get("m1");
  assert.equal(got.content, "v2");
  assert.equal(got.editedAt, 2);
  assert.deepEqual(got.reactions, { "👍": ["carol"] });
  t.add(entry(6, "delete", m));
  t.add(entry(7, "edit", m, { content: "too late" }));
  got = t.byId.get("m1");
  assert.equal(got.deleted, true);
  assert.equal(got.content, "");
  assert.equal(got.reactions, undefined);
  assert.deepEqual(t.ordered().map((x) => x.seq), [1], "entries are not drawn");
});

test("an older page keeps the final state; entries that came first apply again", () => {
  const t = new Thread("c");
  t.covered = 41; // opened at seq 40: the latest page starts at 41
  const old = msg(5);
  t.add(entry(41, "edit", old, { content: "v2" }));
  t.add(entry(42, "edit", old, { content: "v3" }));
  // The store's copy, read later, is final: v3. Its page also holds an
  // older edit (seq 20), already reflected in it.
  const final = { ...msg(5), content: "v3", editedAt: 42 };
  t.addOlder([final, entry(20, "edit", old, { content: "v1" }), msg(21)], 11);
  assert.equal(t.byId.get("m5").content, "v3");
  assert.deepEqual(t.ordered().map((x) => x.seq), [5, 21]);
  assert.equal(t.covered, 11);
  assert.equal(t.atStart, false);
  t.addOlder([msg(1)], 1);
  assert.equal(t.atStart, true);
});

test("✓✓ once every other member read", () => {
  const t = new Thread("c");
  const m = msg(3);
  t.add(m);
  const members = ["alice", "bob", "carol"];
  assert.equal(t.receipt(m, "alice", members), "sent");
  t.read("bob", 3);
  assert.equal(t.receipt(m, "alice", members), "sent");
  t.read("carol", 9);
  assert.equal(t.receipt(m, "alice", members), "read");
  assert.equal(t.read("carol", 4), false, "a receipt never goes back");
});

test("apply leaves a deleted message alone", () => {
  const m = { ...msg(1), deleted: true, content: "" };
  apply(m, entry(2, "edit", msg(1), { content: "x" }));
  assert.equal(m.content, "");
});
