// Two gateways on a Redis Sentinel deployment or a Redis Cluster with
// replicas (cmd/chatstate/failover_test.go). SCENARIO selects what happens
// while clients send:
//   basic         nothing: messages cross nodes through the Sentinel-found master
//   failover      SENTINEL FAILOVER, as an operator does for maintenance
//   kill          kill -9 of the master process
//   cluster-kill  kill -9 of a Cluster master that serves some of the
//                 conversations (CONV_IDS: the test picks ids on it and on
//                 the other masters); its replica takes over
//   cluster-reshard  the slots of two conversations (RESHARD_SLOTS) move
//                 with their keys from OLD_MASTER_ADDR to NEW_MASTER_ADDR
//                 (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE), as
//                 redis-cli --cluster reshard does
// The clients follow the documented contract: a refused send (error ack or
// no ack) is retried with the same clientMessageId until acknowledged; each
// device keeps the highest seq it has seen per conversation and calls
// messages:sync from it after a resync or a reconnect.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { randomUUID } from "node:crypto";
import { env, api, connect, uid, closeAll, ack, conversation, poll } from "./lib.mjs";

const scenario = process.env.SCENARIO;
const onCluster = scenario.startsWith("cluster-");
const sentinels = (process.env.SENTINEL_ADDRS ?? "").split(",").filter(Boolean);
const convIds = (process.env.CONV_IDS ?? "").split(",").filter(Boolean);
const masterName = process.env.SENTINEL_MASTER;
const oldMaster = process.env.OLD_MASTER_ADDR;
const newMaster = process.env.NEW_MASTER_ADDR;
const masterPid = Number(process.env.MASTER_PID);
const delay = (ms) => new Promise((r) => setTimeout(r, ms));
// aborted ends every retry loop once the test has failed, so node exits.
let aborted = false;
const t0 = Date.now();

after(closeAll);

// A device of one user on one gateway.
class Device {
  constructor(url, user, deviceId, convs) {
    Object.assign(this, { url, user, deviceId, convs });
    this.high = new Map(); // conversation -> highest seq seen
    this.how = new Map(); // message id -> Set of "live" | "sync" | "ack"
    this.resyncs = [];
    this.disconnects = 0;
    this.syncErrors = [];
    this.syncing = Promise.resolve();
    this.trace = []; // "ms:how:seq" and "ms:resync", printed when a check fails
  }

  async open() {
    const deadline = Date.now() + 60000;
    for (;;) {
      try {
        this.socket = await connect(this.url, { user: this.user, deviceId: this.deviceId });
        break;
      } catch (err) {
        if (aborted || Date.now() > deadline) throw err;
        await delay(200);
      }
    }
    this.socket.on("message:new", (e) => this.record(e.message, "live"));
    // The sync starts from the highest seq seen when the resync arrived: a
    // live message can be handled before an async sync starts (socket
    // frames read together are dispatched in one go), and syncing from
    // its seq would skip what the gap lost.
    this.socket.on("resync", () => {
      this.resyncs.push(Date.now());
      this.trace.push(`${Date.now() - t0}:resync`);
      this.syncAll(new Map(this.high));
    });
    this.socket.on("disconnect", () => {
      if (this.closed || aborted) return;
      this.disconnects++;
      this.open();
    });
    await this.syncAll(new Map(this.high));
  }

  record(m, how) {
    this.trace.push(`${Date.now() - t0}:${how}:${m.seq}`);
    if (!this.how.has(m.id)) this.how.set(m.id, new Set());
    this.how.get(m.id).add(how);
    if (m.seq > (this.high.get(m.conversationId) ?? 0)) this.high.set(m.conversationId, m.seq);
  }

  // syncAll syncs every conversation from the seqs in from; syncs of one
  // device never overlap.
  syncAll(from) {
    this.syncing = this.syncing.then(async () => {
      for (const c of this.convs) await this.sync(c, from.get(c) ?? 0);
    });
    return this.syncing;
  }

  async sync(conv, after) {
    const deadline = Date.now() + 60000;
    for (;;) {
      let res;
      try {
        this.trace.push(`${Date.now() - t0}:sync-from:${after}`);
        res = await ack(this.socket, "messages:sync", { conversationId: conv, afterSeq: after });
        this.trace.push(`${Date.now() - t0}:sync-got:${res.ok ? res.messages.map((m) => m.seq).join(",") : JSON.stringify(res.error)}`);
      } catch (err) {
        res = { ok: false, error: { code: "ack_timeout" } };
      }
      if (!res.ok) {
        if (aborted) throw new Error("aborted");
        this.syncErrors.push(res.error?.code);
        if (Date.now() > deadline) throw new Error(`${this.user}/${this.deviceId}: sync keeps failing: ${JSON.stringify(res)}`);
        await delay(Math.min(res.error?.retryAfterMs ?? 200, 1000));
        continue;
      }
      for (const m of res.messages) this.record(m, "sync");
      if (res.messages.length < 100) return;
      after = res.messages.at(-1).seq;
    }
  }

  close() {
    this.closed = true;
    this.socket?.close();
  }
}

// send sends one message until it is acknowledged; refusals are counted by code.
async function sendUntilAcked(dev, conv, content, refusals) {
  const payload = { conversationId: conv, clientMessageId: randomUUID(), content };
  const deadline = Date.now() + 60000;
  for (;;) {
    let res;
    try {
      res = await ack(dev.socket, "message:send", payload);
    } catch {
      res = { ok: false, error: { code: "ack_timeout" } };
    }
    if (res.ok) {
      assert.equal(res.message.clientMessageId, payload.clientMessageId);
      dev.record(res.message, "ack");
      return { ...res.message, ackedAt: Date.now() };
    }
    if (aborted) throw new Error("aborted");
    const code = res.error?.code ?? "none";
    refusals[code] = (refusals[code] ?? 0) + 1;
    if (Date.now() > deadline) throw new Error(`send not acknowledged within 60s: ${JSON.stringify(res)}`);
    await delay(Math.min(res.error?.retryAfterMs ?? 200, 1000));
  }
}

// redis sends one command to a Redis or Sentinel over RESP2.
function redis(addr, ...args) {
  const [host, port] = addr.split(":");
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), host);
    let buf = Buffer.alloc(0);
    sock.setTimeout(2000, () => sock.destroy(new Error(`${addr}: timeout`)));
    sock.on("error", reject);
    sock.on("connect", () => sock.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")));
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parseRESP(buf, 0);
      if (!r) return;
      sock.end();
      if (r.value instanceof Error) reject(r.value);
      else resolve(r.value);
    });
  });
}

function parseRESP(buf, i) {
  const end = buf.indexOf("\r\n", i);
  if (end < 0) return null;
  const line = buf.toString("utf8", i + 1, end);
  switch (String.fromCharCode(buf[i])) {
    case "+":
      return { value: line, next: end + 2 };
    case "-":
      return { value: new Error(line), next: end + 2 };
    case ":":
      return { value: Number(line), next: end + 2 };
    case "$": {
      const n = Number(line);
      if (n < 0) return { value: null, next: end + 2 };
      if (buf.length < end + 4 + n) return null;
      return { value: buf.toString("utf8", end + 2, end + 2 + n), next: end + 4 + n };
    }
    case "*": {
      const out = [];
      let j = end + 2;
      for (let k = 0; k < Number(line); k++) {
        const r = parseRESP(buf, j);
        if (!r) return null;
        out.push(r.value);
        j = r.next;
      }
      return { value: out, next: j };
    }
  }
  throw new Error(`bad RESP reply ${JSON.stringify(line)}`);
}

// migrateSlot moves slot and its keys from oldMaster to newMaster while
// clients keep sending, then tells every master (CLUSTER_ADDRS) the new
// owner.
async function migrateSlot(slot) {
  const s = String(slot);
  const fromId = await redis(oldMaster, "CLUSTER", "MYID");
  const toId = await redis(newMaster, "CLUSTER", "MYID");
  const [toHost, toPort] = newMaster.split(":");
  assert.equal(await redis(newMaster, "CLUSTER", "SETSLOT", s, "IMPORTING", fromId), "OK");
  assert.equal(await redis(oldMaster, "CLUSTER", "SETSLOT", s, "MIGRATING", toId), "OK");
  for (;;) {
    const keys = await redis(oldMaster, "CLUSTER", "GETKEYSINSLOT", s, "10");
    if (keys.length === 0) break;
    await redis(oldMaster, "MIGRATE", toHost, toPort, "", "0", "5000", "KEYS", ...keys);
    await delay(20); // a resharding tool's pace: sends go on meanwhile
  }
  assert.equal(await redis(newMaster, "CLUSTER", "SETSLOT", s, "NODE", toId), "OK");
  assert.equal(await redis(oldMaster, "CLUSTER", "SETSLOT", s, "NODE", toId), "OK");
  for (const addr of (process.env.CLUSTER_ADDRS ?? "").split(",")) {
    if (addr !== oldMaster && addr !== newMaster && (await redis(addr, "ROLE"))[0] === "master") {
      assert.equal(await redis(addr, "CLUSTER", "SETSLOT", s, "NODE", toId), "OK");
    }
  }
}

// every sentinel names newMaster as the master; on a Cluster, newMaster is
// a master and the cluster serves every slot again.
async function failedOver() {
  if (onCluster) {
    const role = await redis(newMaster, "ROLE").catch(() => null);
    const info = await redis(newMaster, "CLUSTER", "INFO").catch(() => "");
    return role?.[0] === "master" && info.includes("cluster_state:ok");
  }
  for (const s of sentinels) {
    const hp = await redis(s, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName).catch(() => null);
    if (!hp || `${hp[0]}:${hp[1]}` !== newMaster) return false;
  }
  return true;
}

// gatewaySubscribers counts the Pub/Sub connections on a server that are not
// the sentinels' own (named sentinel-*).
async function gatewaySubscribers(addr) {
  const list = await redis(addr, "CLIENT", "LIST", "TYPE", "pubsub").catch(() => "");
  return list.split("\n").filter((l) => l.startsWith("id=") && !/ name=sentinel-/.test(l)).length;
}

// history returns every stored message of conv (REST, paged by seq).
async function history(conv) {
  const all = [];
  for (let after = 0; ; ) {
    const res = await api(env.a, "GET", `/v1/conversations/${conv}/messages?afterSeq=${after}&limit=100`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    all.push(...res.body.messages);
    if (res.body.messages.length < 100) return all;
    after = res.body.messages.at(-1).seq;
  }
}

// healthWatch polls /redis/health of a gateway until stopped and counts
// the statuses it saw.
function healthWatch(url) {
  const w = { counts: {}, stop: false };
  w.done = (async () => {
    while (!w.stop) {
      let status;
      try {
        const res = await fetch(url + "/redis/health", { signal: AbortSignal.timeout(5000) });
        status = res.status;
        await res.text();
      } catch {
        status = "no_reply";
      }
      w.counts[status] = (w.counts[status] ?? 0) + 1;
      await delay(50);
    }
  })();
  return w;
}

test(`${onCluster ? "Cluster" : "Sentinel"}: ${scenario}`, { timeout: 240000 }, async () => {
  const convs = [], health = [];
  let senders = [];
  try {
    const gws = [env.a, env.b];
    // Four conversations, each with one sender and one receiver who has a
    // device on each gateway; senders alternate gateways. One sender per
    // conversation keeps seqs of a conversation in send order, so what is
    // tested is the failover, not concurrent senders.
    for (let i = 0; i < 4; i++) {
      const sender = uid(`s${i}`), receiver = uid(`r${i}`);
      const conv = await conversation([sender, receiver], convIds[i]);
      const out = new Device(gws[i % 2], sender, "phone", [conv]);
      const ins = [new Device(gws[0], receiver, "a", [conv]), new Device(gws[1], receiver, "b", [conv])];
      await out.open();
      for (const d of ins) await d.open();
      convs.push({ conv, out, ins, acked: [] });
    }
    const devices = convs.flatMap((c) => [c.out, ...c.ins]);
    const refusals = {};
    health.push(...gws.map(healthWatch));
    let stop = false;
    senders = convs.map(async (c) => {
      for (let i = 0; !stop && !aborted; i++) {
        c.acked.push(await sendUntilAcked(c.out, c.conv, `m${i}`, refusals));
        await delay(100); // pace: stay under the per-socket event rate
      }
    });
    const ackedSince = (t) => Math.min(...convs.map((c) => c.acked.filter((m) => m.ackedAt > t).length));

    await poll(() => ackedSince(0) >= 10, 30000, "traffic before the fault");
    const faultAt = Date.now();
    let switchedAt = 0;
    if (scenario === "failover") {
      assert.equal(await redis(sentinels[0], "SENTINEL", "FAILOVER", masterName), "OK");
    } else if (scenario === "kill" || scenario === "cluster-kill") {
      process.kill(masterPid, "SIGKILL");
    } else if (scenario === "cluster-reshard") {
      for (const slot of new Set(process.env.RESHARD_SLOTS.split(","))) await migrateSlot(slot);
    }
    if (scenario !== "basic") {
      await poll(failedOver, 60000, onCluster ? `${newMaster} to take over` : `sentinels to name ${newMaster} master`);
    switchedAt = Date.now();
      // Both nodes moved their subscriber (on a Cluster: their shard
      // subscriber of the conversations it serves) to the new master. After SENTINEL
      // FAILOVER the old master is still up and still a master at that point
      // (Sentinel demotes it, dropping its subscribers, only about 10 s later):
      // the gateways followed +switch-master, not the demotion.
      await poll(async () => (await gatewaySubscribers(newMaster)) >= gws.length, 60000, "both gateways subscribed on the new master");
      if (scenario === "failover") {
        const role = await redis(oldMaster, "ROLE");
        assert.equal(role[0], "master", "the old master was demoted before the gateways moved their Pub/Sub");
      }
      // Each node restored its Pub/Sub on the new master and told its clients.
      for (const d of devices) await poll(() => d.resyncs.some((t) => t > faultAt), 60000, `${d.user}/${d.deviceId} resync`);
    }
    const recoveredAt = Date.now();
    await poll(() => ackedSince(recoveredAt) >= 10, 60000, "traffic after recovery");
    stop = true;
    await Promise.all(senders);

    // A message sent now, after the failover, is delivered live across nodes.
    for (const c of convs) {
      const probe = await sendUntilAcked(c.out, c.conv, "probe", refusals);
      c.acked.push(probe);
      for (const d of c.ins) await poll(() => d.how.get(probe.id)?.has("live"), 15000, `${d.user}/${d.deviceId}: live probe`);
    }
    for (const w of health) w.stop = true;
    await Promise.all(health.map((w) => w.done));
    // A last sync of every device, as after any reconnect; then compare.
    for (const d of devices) await d.syncAll(new Map(d.high));

    // Every problem is collected and printed with the summary, so a failure
    // shows all of them at once.
    const problems = [];
    let live = 0, viaSync = 0;
    for (const c of convs) {
      const stored = await history(c.conv);
      const byCmid = new Map();
      for (const m of stored) byCmid.set(m.clientMessageId, (byCmid.get(m.clientMessageId) ?? 0) + 1);
      for (const m of c.acked) {
        if (byCmid.get(m.clientMessageId) !== 1) {
          problems.push(`${c.conv}: acknowledged seq ${m.seq} stored ${byCmid.get(m.clientMessageId) ?? 0} times`);
        }
        for (const d of c.ins) {
          const how = d.how.get(m.id);
          if (!how || !(how.has("live") || how.has("sync"))) {
            problems.push(`${c.conv}: ${d.user}/${d.deviceId} never got acknowledged seq ${m.seq} (highest seen ${d.high.get(c.conv)})`);
          } else if (how.has("live")) live++;
          else viaSync++;
        }
      }
      if (stored.length !== byCmid.size) problems.push(`${c.conv}: a clientMessageId is stored twice`);
      if (problems.length) {
        for (const d of [c.out, ...c.ins]) problems.push(`${d.user}/${d.deviceId}@${d.url}: ${d.trace.join(" ")}`);
        problems.push(`fault at ${faultAt - t0}, sentinels agree at ${switchedAt - t0}, recovered at ${recoveredAt - t0}`);
        problems.push(`${c.conv}: stored seqs ${stored.map((m) => m.seq).join(",")}; acked seqs ${c.acked.map((m) => m.seq).join(",")}`);
      }
    }
    const acked = convs.reduce((n, c) => n + c.acked.length, 0);
    const summary = {
      scenario, acked, deliveries: live + viaSync, live, viaSync, refusals,
      health: Object.fromEntries(gws.map((g, i) => [g, health[i].counts])),
      resyncs: devices.reduce((n, d) => n + d.resyncs.length, 0),
      disconnects: devices.reduce((n, d) => n + d.disconnects, 0),
      syncErrors: devices.flatMap((d) => d.syncErrors),
      outageMs: recoveredAt - faultAt,
    };
    console.log("SUMMARY " + JSON.stringify(summary));
    assert.deepEqual(problems, [], "every acknowledged message stored once and seen by every member device");

    if (scenario === "basic") {
      assert.equal(viaSync, 0, "without a fault every delivery is live");
      assert.deepEqual(refusals, {}, "without a fault no send is refused");
    }
    if (scenario === "kill" || scenario === "cluster-kill") {
      // The master is gone for at least down-after-milliseconds (2 s; on a
      // Cluster cluster-node-timeout, 2 s, while no node serves its slots),
      // so each gateway reports 503.
      for (const [i, w] of health.entries()) assert.ok(w.counts[503] > 0, `${gws[i]} /redis/health never reported 503: ${JSON.stringify(w.counts)}`);
    }
    if (scenario === "cluster-reshard") {
      // Moving slots is no outage: every node keeps serving.
      for (const [i, w] of health.entries()) assert.ok(!w.counts[503], `${gws[i]} /redis/health reported 503 during a resharding: ${JSON.stringify(w.counts)}`);
    }
    for (const w of health) {
      // Health only ever answers ok or 503, never an error page or a hang.
      for (const s of Object.keys(w.counts)) assert.ok(s === "200" || s === "503", `health answered ${s}: ${JSON.stringify(w.counts)}`);
      assert.ok(w.counts[200] > 0, "health reported ok too");
    }
  } finally {
    aborted = true;
    for (const w of health) w.stop = true;
    for (const c of convs) for (const d of [c.out, ...c.ins]) d.close();
    await Promise.allSettled([...senders, ...health.map((w) => w.done)]);
  }
});
