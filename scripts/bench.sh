#!/usr/bin/env bash
# Runs the two load scenarios of the chatstate gateway with cmd/chatstate-bench
# against processes it starts itself on loopback, then cleans everything up:
#   1. load: 1,000 clients in conversations of 10 at 2,000 msg/s across two nodes
#   2. idle: RSS, goroutines and heap per idle connection with 10,000
#      connections on one node (IDLE_CLIENTS may list several counts, each
#      run against a fresh node)
# Each scenario gets a fresh redis-server and fresh gateways so the RSS
# baseline is not polluted by an earlier run. Never touches port 6379.
#
#   bash scripts/bench.sh                 # both scenarios once
#   RUNS=2 DURATION=20s bash scripts/bench.sh
#   SCENARIOS=idle IDLE_CLIENTS=10000 bash scripts/bench.sh
#   SCENARIOS=idle IDLE_CLIENTS=10000 IDLE_CONVS=20 bash scripts/bench.sh   # each user in 20 conversations of CONV
#   SCENARIOS=idle IDLE_CLIENTS="10000 50000" IDLE_SETTLE=5s bash scripts/bench.sh
#   JSON=1 bash scripts/bench.sh          # machine-readable results
#
# Past about 26,000 connections the tool spreads them over several source
# addresses (127.0.0.2, ...: each has its own ephemeral ports). The gateway
# and the tool each need an open-files limit above IDLE_CLIENTS; the script
# raises the soft limit to the hard one, and the hard one when it may (root
# with CAP_SYS_RESOURCE), and otherwise stops before starting anything.
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
IDLE_SETTLE=${IDLE_SETTLE:-5s}
IDLE_CONVS=${IDLE_CONVS:-0} # conversations (of CONV) each idle user is in
SECRET=bench-secret
API_KEY=bench-key

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
if [[ " $SCENARIOS " == *" idle "* ]]; then
	most=0
	for n in $IDLE_CLIENTS; do ((n > most)) && most=$n; done
	need=$((most + 1024))
	hard=$(ulimit -Hn)
	if [[ $hard != unlimited ]] && ((hard < need)); then
		ulimit -Hn "$need" 2>/dev/null || true
	fi
	if [[ $(ulimit -n) != unlimited ]] && (($(ulimit -n) < need)); then
		ulimit -n "$need" 2>/dev/null || true
	fi
	if [[ $(ulimit -n) != unlimited ]] && (($(ulimit -n) < need)); then
		echo "IDLE_CLIENTS=$most needs an open-files limit of $need for the gateway and the tool; this shell may raise it to $(ulimit -Hn) only (ulimit -Hn)." >&2
		echo "Raise the hard limit (as root: ulimit -Hn $need, or LimitNOFILE / limits.conf) or use fewer clients." >&2
		exit 2
	fi
fi

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
			first=1
			for n in $IDLE_CLIENTS; do
				if [[ -z $first ]]; then # a fresh node (and Redis) for each count
					cleanup
					start_redis
					port_a=$(free_port 18080)
					start_node a "$port_a"
				fi
				first=
				echo
				echo "=== run $run: idle, $n connections on 1 node ==="
				set -x
				"$WORK/chatstate-bench" -idle -nodes "http://127.0.0.1:$port_a" -clients "$n" \
					-settle "$IDLE_SETTLE" -pids "${PIDS[0]}" -idle-convs "$IDLE_CONVS" -conv "$CONV" "${bench_flags[@]}"
				{ set +x; } 2>/dev/null
			done
			;;
		*)
			echo "unknown scenario $scenario (load, idle)" >&2
			exit 2
			;;
		esac
		cleanup
	done
done
