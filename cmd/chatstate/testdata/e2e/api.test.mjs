import { test } from "node:test";
import assert from "node:assert/strict";
import { env, api, uid, connect, closeAll, conversation } from "./lib.mjs";
import { after } from "node:test";

after(closeAll);

test("service API requires the API key", async () => {
  for (const [method, path, body] of [
    ["POST", "/v1/conversations", { members: ["a"] }],
    ["PUT", "/v1/users/a/friends", { friends: [] }],
    ["GET", "/redis/stats"],
    ["GET", "/redis/online-users"],
  ]) {
    const none = await api(env.a, method, path, body, { key: "" });
    assert.equal(none.status, 401, `${method} ${path}`);
    assert.equal(none.body.error.code, "unauthorized");
    const wrong = await api(env.a, method, path, body, { key: "wrong" });
    assert.equal(wrong.status, 401);
  }
});

test("conversations and friends", async () => {
  const id = uid("conv");
  const res = await api(env.a, "POST", "/v1/conversations", { id, members: ["u1", "u2", "u1"] });
  assert.equal(res.status, 201);
  assert.deepEqual(res.body, { id, members: ["u1", "u2"] });
  assert.equal((await api(env.b, "POST", "/v1/conversations", { id, members: ["u3"] })).status, 409);
  const gen = await api(env.a, "POST", "/v1/conversations", { members: ["u1"] });
  assert.equal(gen.status, 201);
  assert.ok(gen.body.id);
  for (const bad of [{ members: [] }, { members: ["bad id"] }, { id: "x{y}", members: ["a"] }, "[]"]) {
    const r = await api(env.a, "POST", "/v1/conversations", bad);
    assert.equal(r.status, 400, JSON.stringify(bad));
    assert.equal(r.body.error.code, "invalid");
  }
  const f = await api(env.a, "PUT", "/v1/users/u1/friends", { friends: ["u2", "u3"] });
  assert.equal(f.status, 200);
  assert.deepEqual([...f.body.friends].sort(), ["u2", "u3"]);
  assert.equal((await api(env.a, "PUT", "/v1/users/bad%20id/friends", { friends: [] })).status, 400);
  assert.equal((await api(env.a, "PUT", "/v1/users/u1/friends", {})).status, 400);
});

test("redis health, stats and online users", async () => {
  const h = await api(env.a, "GET", "/redis/health", undefined, { key: "" });
  assert.equal(h.status, 200);
  assert.equal(h.body.status, "ok");
  for (const p of ["/healthz", "/readyz"]) assert.equal((await api(env.b, "GET", p, undefined, { key: "" })).status, 200);

  const s = await api(env.a, "GET", "/redis/stats");
  assert.equal(s.status, 200);
  assert.ok(s.body.redis.keys > 0, JSON.stringify(s.body.redis));
  assert.equal(typeof s.body.redis.usedMemory, "number"); // 0 on the embedded server, which has no INFO memory

  const user = uid("online");
  await connect(env.b, { user, deviceId: "d" });
  const seen = new Set();
  let cursor = "0";
  let pages = 0;
  do {
    const r = await api(env.a, "GET", `/redis/online-users?limit=2&cursor=${cursor}`);
    assert.equal(r.status, 200);
    r.body.users.forEach((u) => seen.add(u));
    cursor = r.body.cursor;
    pages++;
  } while (cursor !== "0" && pages < 10000);
  assert.ok(seen.has(user), "online user listed");
  assert.equal((await api(env.a, "GET", "/redis/online-users?limit=0")).status, 400);
  assert.equal((await api(env.a, "GET", "/redis/online-users?cursor=x")).status, 400);
});

test("metrics are exposed", async () => {
  const res = await fetch(env.a + "/metrics");
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /chatstate_gateway_connections/);
});

void conversation;

test("history: REST reads ascending pages after and before a seq", async () => {
  const { send } = await import("./lib.mjs");
  const alice = uid("alice");
  const conv = await conversation([alice, uid("bob")]);
  const a = await connect(env.a, { user: alice, deviceId: "d" });
  const sent = [];
  for (let i = 0; i < 5; i++) sent.push(await send(a, conv, `m${i}`));
  const all = await api(env.b, "GET", `/v1/conversations/${conv}/messages?afterSeq=0`);
  assert.equal(all.status, 200);
  assert.deepEqual(all.body.messages.map((m) => m.seq), [1, 2, 3, 4, 5]);
  assert.deepEqual(all.body.messages[0], sent[0]);
  const after = await api(env.b, "GET", `/v1/conversations/${conv}/messages?afterSeq=3&limit=1`);
  assert.deepEqual(after.body.messages.map((m) => m.seq), [4]);
  const before = await api(env.b, "GET", `/v1/conversations/${conv}/messages?beforeSeq=4&limit=2`);
  assert.deepEqual(before.body.messages.map((m) => m.seq), [2, 3]);
  assert.equal((await api(env.b, "GET", `/v1/conversations/${uid("nope")}/messages`)).status, 404);
  assert.equal((await api(env.b, "GET", `/v1/conversations/${conv}/messages?limit=101`)).status, 400);
  assert.equal((await api(env.b, "GET", `/v1/conversations/${conv}/messages?afterSeq=x`)).status, 400);
  assert.equal((await api(env.b, "GET", `/v1/conversations/${conv}/messages`, undefined, { key: "" })).status, 401);
});
