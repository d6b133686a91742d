// End-to-end scenarios for package socketio with the official client.
// Usage: node e2e.mjs <url> <scenario>. Exits 0 and prints "OK" on success.
import { io } from "socket.io-client";

const [url, scenario] = process.argv.slice(2);
const fail = (msg) => {
  console.error("FAIL:", msg);
  process.exit(1);
};
setTimeout(() => fail("timeout in scenario " + scenario), 8000).unref();

const expect = (cond, msg) => {
  if (!cond) fail(msg);
};
const once = (emitter, ev) => new Promise((resolve) => emitter.once(ev, (...a) => resolve(a)));
const ack = (socket, ...args) =>
  new Promise((resolve, reject) =>
    socket.timeout(3000).emit(...args, (err, ...res) => (err ? reject(err) : resolve(res)))
  );

async function connected(opts) {
  const socket = io(url, { reconnection: false, ...opts });
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (e) => reject(new Error("connect_error: " + e.message)));
  });
  return socket;
}

const scenarios = {
  async websocket() {
    const socket = await connected({ transports: ["websocket"], auth: { token: "good" } });
    expect(socket.io.engine.transport.name === "websocket", "transport " + socket.io.engine.transport.name);
    const res = await ack(socket, "echo", "hi", { n: 1 }, [true]);
    expect(JSON.stringify(res) === '["hi",{"n":1},[true]]', "echo ack " + JSON.stringify(res));
    socket.disconnect();
  },
  async upgrade() {
    const socket = io(url, { reconnection: false, auth: { token: "good" } });
    const firstTransport = once(socket.io, "open").then(() => socket.io.engine.transport.name);
    await once(socket, "connect");
    expect((await firstTransport) === "polling", "starts with polling");
    // Traffic before and during the upgrade must all arrive, in order.
    const before = await ack(socket, "echo", "before");
    expect(before[0] === "before", "ack before upgrade");
    if (socket.io.engine.transport.name !== "websocket") await once(socket.io.engine, "upgrade");
    expect(socket.io.engine.transport.name === "websocket", "upgraded");
    const after = await ack(socket, "echo", "after");
    expect(after[0] === "after", "ack after upgrade");
    socket.disconnect();
  },
  async polling() {
    const socket = await connected({ transports: ["polling"], auth: { token: "good" } });
    const res = await ack(socket, "echo", "p", 2);
    expect(JSON.stringify(res) === '["p",2]', "polling ack " + JSON.stringify(res));
    const buf = Buffer.from([0, 1, 2, 255]);
    socket.emit("bin", "x", buf);
    const [label, back] = await once(socket, "bin-back");
    expect(label === "x" && Buffer.compare(Buffer.from(back), buf) === 0, "polling binary");
    socket.disconnect();
  },
  async auth() {
    const ok = await connected({ transports: ["websocket"], auth: { token: "good" } });
    const who = await ack(ok, "whoami");
    expect(who[0] === "user-good", "auth data " + JSON.stringify(who));
    ok.disconnect();
    const bad = io(url, { reconnection: false, transports: ["websocket"], auth: { token: "bad" } });
    const [err] = await once(bad, "connect_error");
    expect(err.message === "unauthorized", "connect_error message " + err.message);
    expect(err.data && err.data.code === "unauthorized", "connect_error data " + JSON.stringify(err.data));
    bad.close();
    const plain = io(url, { reconnection: false, transports: ["websocket"] });
    const [err2] = await once(plain, "connect_error");
    expect(err2.message === "token required", "plain error " + err2.message);
    plain.close();
  },
  async acks() {
    const socket = await connected({ transports: ["websocket"], auth: { token: "good" } });
    socket.on("ask", (n, cb) => cb(n * 10, "ok"));
    const answer = once(socket, "answer");
    socket.emit("please-ask", 7);
    const [res] = await answer;
    expect(JSON.stringify(res) === "[70,\"ok\"]", "server ack result " + JSON.stringify(res));
    socket.disconnect();
  },
  async binary() {
    const socket = await connected({ transports: ["websocket"], auth: { token: "good" } });
    const a = Buffer.from([1, 2, 3]);
    const b = Buffer.alloc(70000, 7);
    socket.emit("bin", "y", a, b);
    const [label, ra, rb] = await once(socket, "bin-back");
    expect(label === "y", "label");
    expect(Buffer.compare(Buffer.from(ra), a) === 0 && Buffer.compare(Buffer.from(rb), b) === 0, "bytes");
    const res = await ack(socket, "bin-ack", Buffer.from("abc"));
    expect(Buffer.from(res[0]).toString() === "abc", "binary ack");
    socket.disconnect();
  },
  async kick() {
    const socket = await connected({ transports: ["websocket"], auth: { token: "good" } });
    const dc = once(socket, "disconnect");
    socket.emit("kick-me");
    const [reason] = await dc;
    expect(reason === "io server disconnect", "reason " + reason);
    const p = await connected({ auth: { token: "good" } });
    const dc2 = once(p, "disconnect");
    p.emit("kick-me");
    const [reason2] = await dc2;
    expect(reason2 === "io server disconnect", "polling reason " + reason2);
  },
};

if (!scenarios[scenario]) fail("unknown scenario " + scenario);
scenarios[scenario]()
  .then(() => {
    console.log("OK");
    // No process.exit: node exits once the client's last request (e.g. the
    // polling POST carrying DISCONNECT) has completed.
  })
  .catch((e) => fail(e.stack || String(e)));
