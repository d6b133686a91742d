// Kills gateway C with SIGKILL; no other test file uses C.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { env, connect, uid, closeAll, ack, waitFor, friends, poll } from "./lib.mjs";

after(closeAll);

test("users of a crashed node show offline within a minute and friends are told", async () => {
  const alice = uid("alice"), bob = uid("bob");
  await friends(alice, [bob]);
  const b = await connect(env.a, { user: bob, deviceId: "d" });
  await connect(env.c, { user: alice, deviceId: "phone" });
  await waitFor(b, "presence", (p) => p.userId === alice && p.online);
  assert.equal((await ack(b, "presence:get", { userIds: [alice] })).presence[alice].online, true);

  process.kill(env.pidC, "SIGKILL");
  const killedAt = Date.now();
  // The test configures a short node timeout; the 5-minute device TTL is untouched.
  await poll(async () => !(await ack(b, "presence:get", { userIds: [alice] })).presence[alice].online, 60000, "alice offline");
  const offline = await waitFor(b, "presence", (p) => p.userId === alice && !p.online, 60000);
  assert.equal(offline.status, "offline");
  assert.ok(Date.now() - killedAt < 60000);
});
