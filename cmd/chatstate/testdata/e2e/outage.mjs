// Redis outage under load: two gateways, 20 devices sending; the Go test
// (TestRedisOutageUnderLoad) stops redis-server for 10 s and starts it again
// empty. Run by the Go test with `node outage.mjs`, not by `node --test`.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { env, conversation, uid } from "./lib.mjs";
import { Device, load, checkStored, missing, tell, heard, releaseStdin, RULE_MUST_HOLD, report } from "./load.mjs";

const devices = [];
after(() => {
  for (const d of devices) d.close();
  releaseStdin();
});

test("a 10 s Redis outage under load: sends are refused unavailable, nothing acked is lost, seq continues, no restart", async () => {
  const users = Array.from({ length: 10 }, (_, i) => uid(`u${i}`));
  const groups = [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [0, 2, 4, 6, 8], [1, 3, 5, 7, 9]];
  const convs = [];
  for (const g of groups) convs.push(await conversation(g.map((i) => users[i])));
  for (const [i, u] of users.entries()) {
    const mine = convs.filter((_, k) => groups[k].includes(i));
    devices.push(new Device(u, "a", mine), new Device(u, "b", mine));
  }
  await Promise.all(devices.map((d) => d.connect(d.deviceId === "a" ? env.a : env.b)));

  const run = load(devices, 120);
  await poll(() => devices.every((d) => d.acked.length >= 15), "every device acked before the outage");
  tell("stop-redis");
  await heard("redis-stopped");
  // A connect during the outage is refused unavailable, with a retry hint.
  const late = new Device(uid("late"), "d", []);
  const refused = await late.connect(env.a).then(
    () => null,
    (err) => err,
  );
  late.close();
  assert.ok(refused, "a connect during the outage must be refused");
  assert.equal(refused.message, "unavailable");
  assert.ok(refused.data?.code === "unavailable" && refused.data.retryAfterMs > 0, `connect_error data ${JSON.stringify(refused.data)}`);
  await heard("redis-restarted");
  const ackedBefore = devices.map((d) => d.acked.length);
  const lastSeqBefore = new Map(convs.map((c) => [c, Math.max(0, ...devices.flatMap((d) => d.acked.filter((m) => m.conversationId === c).map((m) => m.seq)))]));
  // Self-recovery: every device gets sends acked again, without a restart.
  await poll(() => devices.every((d, i) => d.acked.length >= ackedBefore[i] + 15), "every device acked after Redis returned", 60000);
  await run.stop();

  // Every refusal during the outage was unavailable with a retry hint.
  const codes = {};
  for (const d of devices) for (const [c, n] of Object.entries(d.codes)) codes[c] = (codes[c] ?? 0) + n;
  const messages = {};
  for (const d of devices) for (const e of d.refusals) messages[e.message] = (messages[e.message] ?? 0) + 1;
  console.log("refusals by code:", JSON.stringify(codes), "by message:", JSON.stringify(messages), "acked:", devices.reduce((n, d) => n + d.acked.length, 0));
  assert.ok(codes.unavailable > 0, `no send was refused during the outage: ${JSON.stringify(codes)}`);
  assert.deepEqual(Object.keys(codes), ["unavailable"], `refusal codes ${JSON.stringify(codes)}: only unavailable is allowed`);
  for (const d of devices) for (const e of d.refusals) assert.ok(e.retryAfterMs > 0, `refusal without retryAfterMs: ${JSON.stringify(e)}`);
  assert.equal(devices.reduce((n, d) => n + d.timeouts, 0), 0, "every ack arrived within its deadline");

  // Each node resubscribed and told its sockets to resync; presence was
  // registered again in the empty Redis.
  await poll(() => devices.every((d) => d.resyncs > 0), "a resync event on every socket", 30000);
  await poll(async () => {
    const res = await devices[0].request("presence:get", { userIds: users });
    return res.res?.ok && users.every((u) => res.res.presence[u].online);
  }, "every user online again", 30000);

  // Seq continued from the store: no seq reused, sends after the outage
  // numbered above every seq acked before it.
  const stored = await checkStored(assert, env.a, convs, devices);
  report(convs, devices);
  for (const [i, d] of devices.entries()) {
    for (const m of d.acked.slice(ackedBefore[i])) {
      assert.ok(m.seq > lastSeqBefore.get(m.conversationId), `seq ${m.seq} in ${m.conversationId} acked after the outage is not above ${lastSeqBefore.get(m.conversationId)}`);
    }
  }

  // Nothing acknowledged lost: each device catches up from its highest
  // seq (the client rule), then from zero (see RULE_MUST_HOLD); every acked
  // message must be on every member device.
  await Promise.all(devices.map((d) => d.catchUp()));
  const ruleMisses = missing(devices);
  console.log(`acked messages missed by live delivery + sync from the highest seq: ${ruleMisses.length}`, JSON.stringify(ruleMisses.slice(0, 5)));
  if (RULE_MUST_HOLD) assert.deepEqual(ruleMisses, [], "acked messages missing on member devices");
  await Promise.all(devices.map((d) => d.catchUp({ fromZero: true })));
  assert.deepEqual(missing(devices), [], "acked messages missing on member devices after a full sync");
  console.log(`stored messages: ${stored.size}`);
});

async function poll(fn, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
