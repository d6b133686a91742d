// Load clients for the fault scenarios (outage.mjs, nodekill.mjs). A Device
// follows the client rules of the README: it keeps the highest seq it has
// seen per conversation (acks, live message:new, sync replies), syncs from
// it after a reconnect or a `resync`, and retries a refused or unanswered
// send with the same clientMessageId until it is acknowledged.
import { io } from "socket.io-client";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { token, api } from "./lib.mjs";

// ACK_TIMEOUT_MS is how long a device waits for an ack: twice the gateway's
// event deadline (5 s), so a late ack is a bug, not a slow backend.
export const ACK_TIMEOUT_MS = 10000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// RULE_MUST_HOLD makes the scenarios assert the client rule itself: live
// delivery plus syncs from the highest seq seen give every device every
// acked message (docs/delivery.md). False would only check a full re-sync
// and print what the rule alone missed.
export const RULE_MUST_HOLD = true;

export class Device {
  constructor(user, deviceId, convs) {
    this.user = user;
    this.deviceId = deviceId;
    this.convs = convs; // conversations it is a member of
    this.highest = new Map(convs.map((c) => [c, 0]));
    this.seen = new Map(convs.map((c) => [c, new Set()])); // message ids, live or synced
    this.acked = []; // messages this device sent and got acked
    this.codes = {}; // refusal code -> count (sends and syncs)
    this.refusals = []; // refused acks, as received
    this.timeouts = 0; // acks that did not arrive within ACK_TIMEOUT_MS while connected
    this.lostAcks = 0; // acks lost with the socket (its node died)
    this.resyncs = 0;
    this.presence = []; // presence events received
    this.syncing = false; // sends wait while a catch-up after a reconnect runs
    this.socket = null;
    this.url = null;
    this.stopped = false;
  }

  note(m) {
    if (!this.seen.has(m.conversationId)) return;
    this.seen.get(m.conversationId).add(m.id);
    if (m.seq > this.highest.get(m.conversationId)) this.highest.set(m.conversationId, m.seq);
  }

  // connect opens a socket to url; it rejects with the connect_error.
  connect(url) {
    this.url = url;
    const socket = io(url, {
      auth: { token: token(this.user), deviceId: this.deviceId },
      transports: ["websocket"],
      reconnection: false,
      forceNew: true,
      timeout: ACK_TIMEOUT_MS,
    });
    socket.on("message:new", (e) => this.note(e.message));
    socket.on("presence", (p) => this.presence.push(p));
    socket.on("resync", () => {
      this.resyncs++;
      this.catchUp().catch(() => {});
    });
    return new Promise((resolve, reject) => {
      socket.once("connect", () => {
        this.socket = socket;
        resolve(this);
      });
      socket.once("connect_error", (err) => {
        socket.close();
        reject(err);
      });
    });
  }

  // connectUntil retries connect to url (a node, or one picked per try)
  // until it succeeds or deadlineMs passes.
  async connectUntil(pick, deadlineMs) {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      try {
        return await this.connect(typeof pick === "function" ? pick() : pick);
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`${this.user}/${this.deviceId}: no connection: ${err.message}`);
        await sleep(200);
      }
    }
  }

  // request emits with an ack: {res} or {err} (timeout or disconnect).
  async request(event, payload) {
    const s = this.socket;
    try {
      return { res: await s.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload) };
    } catch (err) {
      // An ack lost because the socket went away is the client's to retry;
      // one that did not come on a live socket breaks the ack deadline.
      if (s.connected) this.timeouts++;
      else this.lostAcks++;
      return { err };
    }
  }

  refused(res) {
    const code = res.error?.code ?? "none";
    this.codes[code] = (this.codes[code] ?? 0) + 1;
    this.refusals.push(res.error);
    return Math.max(res.error?.retryAfterMs ?? 0, 50);
  }

  // waitConnected resolves once the device has a connected socket again
  // (the scenario's reconnect logic replaces this.socket).
  async waitConnected() {
    while (!this.stopped && !this.socket?.connected) await sleep(50);
  }

  // reconnect follows the client rule after losing its node: connect to
  // another, sync every conversation from the highest seq seen, and only
  // then let the send loop resend its unacknowledged send.
  async reconnect(pick, deadlineMs = 60000) {
    this.syncing = true;
    this.highestAtReconnect = Object.fromEntries(this.highest);
    try {
      await this.connectUntil(pick, deadlineMs);
      await this.catchUp({ deadlineMs });
    } finally {
      this.syncing = false;
    }
  }

  // send delivers one message reliably: the same clientMessageId is resent
  // after a refusal (waiting retryAfterMs) or a lost ack until it is acked.
  async send(conv, content, deadlineMs = 60000) {
    const payload = { conversationId: conv, clientMessageId: randomUUID(), content };
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`${this.user}: send ${payload.clientMessageId} not acked within ${deadlineMs}ms`);
      await this.waitConnected();
      while (this.syncing) await sleep(20);
      if (this.stopped) throw new Error(`${this.user}/${this.deviceId} stopped`);
      const { res } = await this.request("message:send", payload);
      if (res?.ok) {
        this.note(res.message);
        this.acked.push(res.message);
        return res.message;
      }
      await sleep(res ? this.refused(res) : 100);
    }
  }

  // catchUp syncs every conversation from the highest seq seen (or, with
  // fromZero, its whole history), page by page, retrying refusals.
  // The starting seqs are taken at the call: acks that arrive meanwhile
  // must not move a later conversation's start past what was missed.
  async catchUp({ fromZero = false, deadlineMs = 60000 } = {}) {
    const deadline = Date.now() + deadlineMs;
    const from = new Map(this.convs.map((c) => [c, fromZero ? 0 : this.highest.get(c)]));
    for (const conv of this.convs) {
      let after = from.get(conv);
      for (;;) {
        if (Date.now() > deadline) throw new Error(`${this.user}: sync of ${conv} did not finish`);
        await this.waitConnected();
        const { res } = await this.request("messages:sync", { conversationId: conv, afterSeq: after, limit: 100 });
        if (!res) continue;
        if (!res.ok) {
          await sleep(this.refused(res));
          continue;
        }
        for (const m of res.messages) this.note(m);
        if (res.messages.length < 100) break;
        after = res.messages.at(-1).seq;
      }
    }
  }

  close() {
    this.stopped = true;
    this.socket?.close();
  }
}

// history pages through the stored messages of conv over the REST API.
export async function history(base, conv) {
  const out = [];
  let after = 0;
  for (;;) {
    const res = await api(base, "GET", `/v1/conversations/${conv}/messages?afterSeq=${after}&limit=100`);
    if (res.status !== 200) throw new Error(`history of ${conv}: ${res.status} ${JSON.stringify(res.body)}`);
    out.push(...res.body.messages);
    if (res.body.messages.length < 100) return out;
    after = res.body.messages.at(-1).seq;
  }
}

// load runs every device's send loop: one message at a time per device,
// every intervalMs, to a random conversation of its own, until stop().
export function load(devices, intervalMs) {
  let running = true;
  const loops = devices.map(async (d, i) => {
    await sleep((intervalMs * i) / devices.length); // spread the sends
    for (let n = 0; running && !d.stopped; n++) {
      const conv = d.convs[n % d.convs.length];
      const started = Date.now();
      try {
        await d.send(conv, `${d.user}/${d.deviceId} #${n}`);
      } catch (err) {
        if (d.stopped) return; // a device that left for good abandons its send
        throw err;
      }
      await sleep(Math.max(0, intervalMs - (Date.now() - started)));
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

// checkStored asserts, for every conversation, that the store holds each
// clientMessageId and each seq once, and that every acked message is stored
// under the seq and id its ack gave. It returns the stored messages by id.
export async function checkStored(assert, base, convs, devices) {
  const stored = new Map();
  for (const conv of convs) {
    const msgs = await history(base, conv);
    const cmids = new Set(), seqs = new Set();
    for (const m of msgs) {
      const key = `${m.senderId}:${m.clientMessageId}`;
      assert.ok(!cmids.has(key), `clientMessageId ${key} stored twice in ${conv}`);
      assert.ok(!seqs.has(m.seq), `seq ${m.seq} used twice in ${conv}`);
      cmids.add(key);
      seqs.add(m.seq);
      stored.set(m.id, m);
    }
  }
  for (const d of devices) {
    for (const m of d.acked) {
      const s = stored.get(m.id);
      assert.ok(s, `acked message ${m.id} (${m.conversationId} seq ${m.seq}) is not stored`);
      assert.equal(s.seq, m.seq, `acked message ${m.id} stored under another seq`);
      assert.equal(s.clientMessageId, m.clientMessageId);
    }
  }
  return stored;
}

// missing returns, per device, the acked messages of its conversations it
// has neither received live nor synced.
export function missing(devices) {
  const acked = new Map(); // conv -> messages
  for (const d of devices) for (const m of d.acked) (acked.get(m.conversationId) ?? acked.set(m.conversationId, []).get(m.conversationId)).push(m);
  const out = [];
  for (const d of devices) {
    for (const conv of d.convs) {
      for (const m of acked.get(conv) ?? []) {
        if (!d.seen.get(conv).has(m.id)) {
          out.push({ device: `${d.user}/${d.deviceId}`, conv, seq: m.seq, id: m.id, sender: m.senderId, highestAtReconnect: d.highestAtReconnect?.[conv] });
        }
      }
    }
  }
  return out;
}

// The Go test drives the fault (stopping Redis, say) while the script runs:
// tell prints "@@<name>" for it to act on, and heard resolves when the Go
// test writes the line <name> to stdin.
export function tell(name) {
  process.stdout.write(`@@${name}\n`);
}

const lines = [];
const waiters = [];
let listening = false;

function listen() {
  if (listening) return;
  listening = true;
  process.stdin.setEncoding("utf8");
  let buf = "";
  process.stdin.on("data", (chunk) => {
    buf += chunk;
    for (let i; (i = buf.indexOf("\n")) >= 0; ) {
      lines.push(buf.slice(0, i).trim());
      buf = buf.slice(i + 1);
      for (const w of waiters.splice(0)) w();
    }
  });
}

export async function heard(name, timeoutMs = 120000) {
  listen();
  const deadline = Date.now() + timeoutMs;
  while (!lines.includes(name)) {
    if (Date.now() > deadline) throw new Error(`the Go test did not say ${name} within ${timeoutMs}ms`);
    await new Promise((r) => {
      waiters.push(r);
      setTimeout(r, 1000);
    });
  }
}

// releaseStdin lets the process exit once the scenario is done although
// stdin stays open.
export function releaseStdin() {
  if (listening) process.stdin.destroy();
}

// report hands the conversations and every acked message to the Go test
// (RESULT_FILE), which checks them against the store itself.
export function report(convs, devices) {
  const acked = devices.flatMap((d) => d.acked.map(({ id, conversationId, seq, senderId, clientMessageId }) => ({ id, conversationId, seq, senderId, clientMessageId })));
  writeFileSync(process.env.RESULT_FILE, JSON.stringify({ convs, acked }));
}
