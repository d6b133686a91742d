// Prints the runs of scripts/perf-matrix.sh as one markdown table:
//
//   node bench/matrix-report.mjs OUT
//
// OUT holds one directory per run with chatstate.{json,cmd0,cmd1} and
// node-ref.{json,cmd0,cmd1}, as scripts/compare.sh OUT=... leaves them.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

function commandstats(file) {
  const out = new Map();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (m) out.set(m[1], { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return out;
}

function load(prefix) {
  const r = JSON.parse(readFileSync(`${prefix}.json`, "utf8"));
  const c0 = commandstats(`${prefix}.cmd0`);
  let calls = 0, usec = 0;
  for (const [name, v] of commandstats(`${prefix}.cmd1`)) {
    if (name === "info") continue;
    const b = c0.get(name) || { calls: 0, usec: 0 };
    calls += v.calls - b.calls;
    usec += v.usec - b.usec;
  }
  const sent = r.deliveries.sent;
  const us = r.serverCpu.usPerDelivery + (r.redis ? r.redis.usPerDelivery : 0);
  return {
    r,
    perCPUs: 1e6 / us,
    cpuPer1000: (us * 1000) / 1e6,
    p50: r.latency.p50Ms,
    p99: r.latency.p99Ms,
    lost: `${r.deliveries.lost}/${r.deliveries.expected}`,
    cmds: calls / sent,
    usec: usec / sent,
    redisCPU: r.redis ? (r.redis.cpuSeconds / sent) * 1e6 : NaN,
  };
}

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node bench/matrix-report.mjs OUT");
  process.exit(2);
}
const f = (v, d) => (Number.isFinite(v) ? v.toFixed(d) : "-");
console.log(
  "| run | conv | msg/s | nodes | deliveries/CPU-s chatstate / node | ratio | CPU-s per 1,000 deliveries chatstate / node | p50 ms chatstate / node | p99 ms chatstate / node | lost chatstate / node | Redis cmds/msg chatstate / node | Redis us/msg (commandstats) chatstate / node | Redis CPU us/msg chatstate / node |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
for (const name of readdirSync(dir).sort()) {
  const d = join(dir, name);
  if (!statSync(d).isDirectory()) continue;
  let a, b;
  try {
    a = load(join(d, "chatstate"));
    b = load(join(d, "node-ref"));
  } catch {
    continue;
  }
  const o = a.r.options;
  console.log(
    `| ${name} | ${o.conv} | ${o.rate} | ${o.nodes.length} | ${f(a.perCPUs, 0)} / ${f(b.perCPUs, 0)} | ${f(a.perCPUs / b.perCPUs, 2)}x | ` +
      `${f(a.cpuPer1000, 3)} / ${f(b.cpuPer1000, 3)} | ${f(a.p50, 2)} / ${f(b.p50, 2)} | ${f(a.p99, 1)} / ${f(b.p99, 1)} | ` +
      `${a.lost} / ${b.lost} | ${f(a.cmds, 1)} / ${f(b.cmds, 1)} | ${f(a.usec, 1)} / ${f(b.usec, 1)} | ${f(a.redisCPU, 1)} / ${f(b.redisCPU, 1)} |`,
  );
}
