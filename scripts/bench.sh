#!/usr/bin/env bash
# Runs the two load scenarios of the chatstate gateway with cmd/chatstate-bench
# against processes it starts itself on loopback, then cleans everything up:
#   1. load: 1,000 clients in conversations of 10 at 2,000 msg/s across two nodes
#   2. idle: RSS per idle connection with 10,000 connections on one node
# Each scenario gets a fresh redis-server and fresh gateways so the RSS
# baseline is not polluted by an earlier run. Never touches port 6379.
#
#   bash scripts/bench.sh                 # both scenarios once
#   RUNS=2 DURATION=20s bash scripts/bench.sh
#   SCENARIOS=idle IDLE_CLIENTS=10000 bash scripts/bench.sh
#   JSON=1 bash scripts/bench.sh          # machine-readable results
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-1}
SCENARIOS=${SCENARIOS:-"load idle"}
CLIENTS=${CLIENTS:-1000}
CONV=${CONV:-10}
RATE=${RATE:-2000}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
IDLE_CLIENTS=${IDLE_CLIENTS:-10000}
SECRET=bench-secret
API_KEY=bench-key

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
build_bench

bench_flags=(-secret "$SECRET" -api-key "$API_KEY")
[[ -n ${JSON:-} ]] && bench_flags+=(-json)

for run in $(seq "$RUNS"); do
	for scenario in $SCENARIOS; do
		start_redis
		port_a=$(free_port 18080)
		start_node a "$port_a"
		case $scenario in
		load)
			port_b=$(free_port $((port_a + 1)))
			start_node b "$port_b"
			echo
			echo "=== run $run: load, $CLIENTS clients, conversations of $CONV, $RATE msg/s, 2 nodes ==="
			set -x
			"$WORK/chatstate-bench" -nodes "http://127.0.0.1:$port_a,http://127.0.0.1:$port_b" \
				-clients "$CLIENTS" -conv "$CONV" -rate "$RATE" -duration "$DURATION" -warmup "$WARMUP" \
				-pids "${PIDS[0]},${PIDS[1]}" -redis-pid "$(cat "$WORK/redis.pid")" "${bench_flags[@]}"
			{ set +x; } 2>/dev/null
			;;
		idle)
			echo
			echo "=== run $run: idle, $IDLE_CLIENTS connections on 1 node ==="
			set -x
			"$WORK/chatstate-bench" -idle -nodes "http://127.0.0.1:$port_a" -clients "$IDLE_CLIENTS" \
				-settle 5s -pids "${PIDS[0]}" "${bench_flags[@]}"
			{ set +x; } 2>/dev/null
			;;
		*)
			echo "unknown scenario $scenario (load, idle)" >&2
			exit 2
			;;
		esac
		cleanup
	done
done
