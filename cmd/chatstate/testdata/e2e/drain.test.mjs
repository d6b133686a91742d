// Graceful drain: gateway A gets SIGTERM while its clients are connected.
// Run by TestDrainE2E, which owns gateways A and B (no other file uses them)
// and checks afterwards that A exited 0.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { randomUUID } from "node:crypto";
import { io } from "socket.io-client";
import { env, connect, uid, closeAll, ack, waitFor, received, friends, conversation, send, token, poll } from "./lib.mjs";

const pidA = Number(process.env.GATEWAY_A_PID);
const holdContent = process.env.HOLD_CONTENT;

const cleanups = [];
after(() => {
  closeAll();
  for (const f of cleanups) f();
});

async function ready(base) {
  try {
    const res = await fetch(base + "/readyz");
    return { status: res.status, body: await res.json() };
  } catch {
    return { status: 0 }; // not listening (any more)
  }
}

// startBalancer is a TCP load balancer in front of A and B, as in a rolling
// deploy: each new connection goes to A while A's /readyz answers 200, else
// to B. Clients behind it reconnect through it by themselves.
function startBalancer() {
  const picks = [];
  const sockets = new Set();
  const server = net.createServer(async (conn) => {
    sockets.add(conn);
    conn.pause();
    const target = (await ready(env.a)).status === 200 ? env.a : env.b;
    picks.push(target);
    const { hostname, port } = new URL(target);
    const up = net.connect(Number(port), hostname, () => {
      conn.pipe(up);
      up.pipe(conn);
      conn.resume();
    });
    sockets.add(up);
    for (const [x, y] of [[conn, up], [up, conn]]) {
      x.on("error", () => y.destroy());
      x.on("close", () => y.destroy());
    }
  });
  cleanups.push(() => {
    server.close();
    for (const s of sockets) s.destroy();
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve({ url: `http://127.0.0.1:${server.address().port}`, picks })),
  );
}

// appClient is the official client as an app uses it: default options
// (reconnection on), through the load balancer, no drain-specific code.
function appClient(url, user, deviceId) {
  const socket = io(url, { auth: { token: token(user), deviceId }, transports: ["websocket"], forceNew: true });
  cleanups.push(() => socket.close());
  socket.user = user;
  socket.log = [];
  socket.disconnects = [];
  socket.connects = 0;
  socket.onAny((event, ...args) => socket.log.push({ event, args }));
  socket.connectedAt = [];
  socket.on("connect", () => {
    socket.connects++;
    socket.connectedAt.push(Date.now());
  });
  socket.on("disconnect", (reason) => socket.disconnects.push({ reason, at: Date.now() }));
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

test("SIGTERM drains a node: readiness fails, in-flight acks arrive, clients move without going offline", async () => {
  const alice = uid("alice"), bob = uid("bob"), carol = uid("carol");
  await friends(alice, [bob]);
  await friends(carol, [bob]);
  const conv = await conversation([alice, bob]);
  const lb = await startBalancer();

  const bobB = await connect(env.b, { user: bob, deviceId: "web" });
  const aliceApp = await appClient(lb.url, alice, "phone");
  // Other users of A, so the disconnects are spread over the window.
  const others = [];
  for (let i = 0; i < 3; i++) others.push(await appClient(lb.url, uid("user"), "d"));
  // carol's client does not reconnect: she must show offline.
  const carolA = await connect(env.a, { user: carol, deviceId: "laptop" });
  assert.deepEqual(new Set(lb.picks), new Set([env.a]), "before the drain the balancer sends everyone to A");
  await waitFor(bobB, "presence", (p) => p.userId === alice && p.online);
  await waitFor(bobB, "presence", (p) => p.userId === carol && p.online);

  // Node A holds this send's ack until the drain closes alice's socket.
  const inflight = aliceApp.timeout(20000).emitWithAck("message:send", {
    conversationId: conv, clientMessageId: randomUUID(), content: holdContent,
  });
  await waitFor(bobB, "message:new", (e) => e.message.content === holdContent);
  const termAt = Date.now();
  process.kill(pidA, "SIGTERM");

  const draining = await poll(async () => {
    const r = await ready(env.a);
    return r.status === 503 && r;
  }, 10000, "A's /readyz to fail");
  assert.equal(draining.body.status, "draining");
  await assert.rejects(connect(env.a, { user: uid("late"), deviceId: "d" }), "new handshakes on A are refused");

  const res = await inflight;
  assert.equal(res.ok, true, `in-flight send acked: ${JSON.stringify(res)}`);
  await waitFor(aliceApp, "server:draining", (e) => e.reconnect === true, 20000);
  await poll(() => aliceApp.connects >= 2, 20000, "alice's client to reconnect by itself");
  assert.equal(aliceApp.disconnects[0].reason, "transport close", "a transport close, after which socket.io-client reconnects");
  assert.equal(lb.picks.at(-1), env.b, "the reconnect went to B");
  for (const s of others) await poll(() => s.connects >= 2, 20000, "every drained client to reconnect");
  const times = [aliceApp, ...others].map((s) => s.disconnects[0].at - termAt).sort((x, y) => x - y);
  console.log(`disconnects after SIGTERM (ms): ${times.join(", ")}`);
  const gaps = [aliceApp, ...others].map((s) => s.connectedAt[1] - s.disconnects[0].at);
  console.log(`reconnected to B after (ms): ${gaps.join(", ")}`);

  // Alice works on B.
  const m = await send(aliceApp, conv, "after the move");
  await waitFor(bobB, "message:new", (e) => e.message.id === m.id);

  // carol never came back: once A is marked dead the sweep announces her.
  const off = await waitFor(bobB, "presence", (p) => p.userId === carol && !p.online, 30000);
  assert.equal(off.status, "offline");
  assert.ok(off.lastSeen >= termAt, `carol's last seen ${off.lastSeen} is her drain, not her last refresh (SIGTERM at ${termAt})`);
  console.log(`carol offline for bob ${Date.now() - termAt} ms after SIGTERM`);
  assert.ok(carolA.disconnected);
  // By now A's devices have been swept: alice was never announced offline.
  assert.equal(received(bobB, "presence", (p) => p.userId === alice && !p.online).length, 0, "alice never showed offline");
  const p = (await ack(bobB, "presence:get", { userIds: [alice] })).presence[alice];
  assert.equal(p.online, true);
});
