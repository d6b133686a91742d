// Prints the runs of scripts/perf-matrix.sh as one markdown table:
//
//   node bench/matrix-report.mjs OUT
//
// OUT holds one directory per run with chatstate.{json,cmd0,cmd1} and
// node-ref.{json,cmd0,cmd1}, as scripts/compare.sh OUT=... leaves them.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { load } from "./results.mjs";

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
    `| ${name} | ${o.conv} | ${o.rate} | ${o.nodes.length} | ${f(a.perCPUSecond, 0)} / ${f(b.perCPUSecond, 0)} | ${f(a.perCPUSecond / b.perCPUSecond, 2)}x | ` +
      `${f(a.cpuPer1000, 3)} / ${f(b.cpuPer1000, 3)} | ${f(a.p50, 2)} / ${f(b.p50, 2)} | ${f(a.p99, 1)} / ${f(b.p99, 1)} | ` +
      `${a.lost}/${a.expected} / ${b.lost}/${b.expected} | ${f(a.cmdsPerMsg, 1)} / ${f(b.cmdsPerMsg, 1)} | ` +
      `${f(a.redisUSecPerMsg, 1)} / ${f(b.redisUSecPerMsg, 1)} | ${f(a.redisCPUPerMsg, 1)} / ${f(b.redisCPUPerMsg, 1)} |`,
  );
}
