#!/usr/bin/env bash
# Finds the saturation point of chatstate and of the Node socket.io
# reference (bench/node-ref) on this machine: the highest send rate at
# which delivery p99 stays under 50 ms and nothing is lost, stepping the
# rate up (RATES) with the same workload against each: CLIENTS clients in
# conversations of CONV on two nodes and one redis-server. Prints one line
# per run and the saturation rate of each server.
#
#   bash scripts/saturation.sh
#   RATES="1000 2000 3000 4000" DURATION=10s bash scripts/saturation.sh
#   SERVERS=chatstate bash scripts/saturation.sh   # one of them only
#
# A benchmark: CI never runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-1000}
CONV=${CONV:-10}
RATES=${RATES:-"1000 1500 2000 3000 4000 5000 6000"}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-5s}
SERVERS=${SERVERS:-"chatstate node-ref"}
P99_MS=${P99_MS:-50}
SECRET=bench-secret
API_KEY=bench-key
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
if [[ $SERVERS == *node-ref* ]]; then ensure_node_ref; fi
build_bench


declare -A best=([chatstate]="not run" [node-ref]="not run")
for server in $SERVERS; do
	best[$server]=none
	for rate in $RATES; do
		start_redis
		pa=$(free_port 18380)
		pb=$(free_port $((pa + 1)))
		if [[ $server == chatstate ]]; then
			start_node a "$pa"
			start_node b "$pb"
		else
			start_ref a "$pa" "sat$rate:"
			start_ref b "$pb" "sat$rate:"
		fi
		out="$WORK/$server-$rate.json"
		timeout 300 "$WORK/chatstate-bench" -nodes "http://127.0.0.1:$pa,http://127.0.0.1:$pb" -clients "$CLIENTS" -conv "$CONV" \
			-rate "$rate" -duration "$DURATION" -warmup "$WARMUP" -pids "${PIDS[0]},${PIDS[1]}" -redis-pid "$(cat "$WORK/redis.pid")" \
			-secret "$SECRET" -api-key "$API_KEY" -json >"$out" 2>"$WORK/bench.log" || true
		cleanup
		line=$(node -e '
			const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
			const ok = r.latency.p99Ms < Number(process.argv[2]) && r.deliveries.lost === 0 && r.deliveries.ackErrors === 0;
			console.log(`${ok ? "ok" : "over"} ${r.window.deliveriesPerSec.toFixed(0)} deliveries/s, p50 ${r.latency.p50Ms.toFixed(2)} ms, p99 ${r.latency.p99Ms.toFixed(1)} ms, lost ${r.deliveries.lost}/${r.deliveries.expected}, ack errors ${r.deliveries.ackErrors}`);
		' "$out" "$P99_MS" 2>/dev/null || echo "over (no result)")
		echo "$server $rate msg/s: $line"
		if [[ $line == ok* ]]; then
			best[$server]="$rate msg/s"
		else
			break
		fi
	done
done
echo
echo "saturation (highest rate with p99 < ${P99_MS} ms and nothing lost; conversations of $CONV, $CLIENTS clients, 2 nodes):"
echo "  chatstate: ${best[chatstate]}"
echo "  node-ref:  ${best[node-ref]}"
