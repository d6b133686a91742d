// Prints two chatstate-bench results side by side with their ratios, for
// scripts/compare.sh:
//
//   node bench/compare-report.mjs WORK/chatstate WORK/node-ref
//
// Each argument is a prefix: PREFIX.json is the tool's -json output, and
// PREFIX.cmd0 / PREFIX.cmd1 are Redis `INFO commandstats` at the start and
// the end of the send phase (warmup included).
import { load } from "./results.mjs";

const [a, b] = process.argv.slice(2).map(load);
if (!a || !b) {
  console.error("usage: node bench/compare-report.mjs PREFIX_A PREFIX_B");
  process.exit(2);
}

const fmt = (v, digits) => (Number.isFinite(v) ? v.toFixed(digits) : "-");
const ratio = (x, y) => (Number.isFinite(x) && Number.isFinite(y) && y !== 0 ? `${(x / y).toFixed(2)}x` : "-");
const rows = [
  ["deliveries/s (window)", "deliveriesPerSec", 0],
  ["server CPU-s (window, all nodes)", "serverCPU", 2],
  ["Redis CPU-s (send phase)", "redisCPU", 2],
  ["CPU-s per 1,000 deliveries (servers + Redis)", "cpuPer1000", 3],
  ["deliveries per CPU-second (servers + Redis)", "perCPUSecond", 0],
  ["delivery latency p50 ms", "p50", 2],
  ["delivery latency p99 ms", "p99", 2],
  ["ack latency p50 ms", "ackP50", 2],
  ["ack latency p99 ms", "ackP99", 2],
  ["lost deliveries", "lost", 0],
  ["ack errors / missing acks", null, 0],
  ["Redis commands per message", "cmdsPerMsg", 1],
  ["Redis usec per message (commandstats)", "redisUSecPerMsg", 1],
  ["Redis CPU us per message (/proc)", "redisCPUPerMsg", 1],
  ["server RSS per connection KiB (under load)", "rssPerConn", 1],
];

const o = a.r.options;
console.log(`=== side by side: ${o.clients} clients, conversations of ${o.conv}, ${o.rate} msg/s, ${o.duration} (+${o.warmup} warmup), ${o.nodes.length} node(s), one redis-server ===`);
const w0 = 46;
const pad = (s, n) => String(s).padStart(n);
console.log(`${"".padEnd(w0)}${pad(a.name, 12)}${pad(b.name, 12)}${pad(`${a.name}/${b.name}`, 22)}`);
for (const [label, key, digits] of rows) {
  let x, y, q;
  if (key === null) {
    x = `${a.ackErrors} / ${a.unacked}`;
    y = `${b.ackErrors} / ${b.unacked}`;
    q = "";
  } else {
    x = fmt(a[key], digits);
    y = fmt(b[key], digits);
    q = key === "lost" ? "" : ratio(a[key], b[key]);
  }
  console.log(`${label.padEnd(w0)}${pad(x, 12)}${pad(y, 12)}${pad(q, 22)}`);
}
console.log(`messages sent (send phase)`.padEnd(w0) + pad(a.sent, 12) + pad(b.sent, 12));
console.log(`lost of expected`.padEnd(w0) + pad(`${a.lost}/${a.expected}`, 12) + pad(`${b.lost}/${b.expected}`, 12));
console.log();
const top = (s) =>
  [...s.cmds]
    .sort((p, q) => q[1].usec - p[1].usec)
    .slice(0, 6)
    .map(([n, v]) => `${n} ${(v.calls / s.sent).toFixed(2)}x ${(v.usec / s.sent).toFixed(1)}us`)
    .join(", ");
console.log(`Redis per message, by command (calls, usec):`);
console.log(`  ${a.name}: ${top(a)}`);
console.log(`  ${b.name}: ${top(b)}`);
console.log();
console.log(
  `${a.name} delivers ${ratio(a.perCPUSecond, b.perCPUSecond)} ${b.name}'s deliveries per CPU-second (issue 10 target: >= 3x); ` +
    `Redis time per message ${ratio(a.redisUSecPerMsg, b.redisUSecPerMsg)} (target <= 1x).`,
);
console.log(`${a.name} persists every message (SQLite); ${b.name} persists nothing.`);
