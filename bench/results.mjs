// Reads one chatstate-bench result as scripts/compare.sh leaves it:
// PREFIX.json is the tool's -json output, PREFIX.cmd0 / PREFIX.cmd1 are
// Redis `INFO commandstats` at the start and the end of the send phase
// (warmup included). Shared by compare-report.mjs and matrix-report.mjs.
import { readFileSync } from "node:fs";
import { basename } from "node:path";

function commandstats(file) {
  const out = new Map();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (m) out.set(m[1], { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return out;
}

export function load(prefix) {
  const r = JSON.parse(readFileSync(`${prefix}.json`, "utf8"));
  const c0 = commandstats(`${prefix}.cmd0`);
  const c1 = commandstats(`${prefix}.cmd1`);
  const cmds = new Map();
  for (const [name, v] of c1) {
    const before = c0.get(name) || { calls: 0, usec: 0 };
    const d = { calls: v.calls - before.calls, usec: v.usec - before.usec };
    if (d.calls > 0 && name !== "info") cmds.set(name, d);
  }
  const sent = r.deliveries.sent; // messages of the whole send phase
  const calls = [...cmds.values()].reduce((s, v) => s + v.calls, 0);
  const usec = [...cmds.values()].reduce((s, v) => s + v.usec, 0);
  const serverUS = r.serverCpu.usPerDelivery;
  const redisUS = r.redis ? r.redis.usPerDelivery : 0;
  return {
    name: basename(prefix),
    r,
    sent,
    cmds,
    deliveriesPerSec: r.window.deliveriesPerSec,
    serverCPU: r.serverCpu.seconds,
    redisCPU: r.redis ? r.redis.cpuSeconds : NaN,
    cpuPer1000: ((serverUS + redisUS) * 1000) / 1e6,
    perCPUSecond: 1e6 / (serverUS + redisUS),
    p50: r.latency.p50Ms,
    p99: r.latency.p99Ms,
    ackP50: r.ackLatency.p50Ms,
    ackP99: r.ackLatency.p99Ms,
    lost: r.deliveries.lost,
    expected: r.deliveries.expected,
    ackErrors: r.deliveries.ackErrors,
    unacked: r.deliveries.unacked,
    cmdsPerMsg: calls / sent,
    redisUSecPerMsg: usec / sent,
    redisCPUPerMsg: r.redis ? (r.redis.cpuSeconds / sent) * 1e6 : NaN,
    rssPerConn: (r.loadRss - r.baselineRss) / r.connections.ok / 1024,
  };
}

