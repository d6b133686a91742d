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

command -v redis-server >/dev/null || { echo "redis-server is required" >&2; exit 1; }
WORK=$(mktemp -d /tmp/chatstate-bench.XXXXXX)
PIDS=()
REDIS_PORT=

cleanup() {
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	done
	PIDS=()
	if [[ -n $REDIS_PORT ]]; then
		redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
		REDIS_PORT=
	fi
}
trap 'cleanup; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# free_port prints a loopback TCP port nobody listens on, starting at $1.
free_port() {
	local p=$1
	for _ in $(seq 500); do
		if [[ $p != 6379 ]] && ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
		p=$((p + 1))
	done
	echo "no free port from $1" >&2
	exit 1
}

echo "building into $WORK"
go build -o "$WORK/chatstate" ./cmd/chatstate
go build -o "$WORK/chatstate-bench" ./cmd/chatstate-bench

# Servers inherit the highest open-files limit this shell may set.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

start_redis() {
	REDIS_PORT=$(free_port $((7300 + RANDOM % 500)))
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
		--maxclients 10000 --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log"
	for _ in $(seq 50); do
		redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return
		sleep 0.1
	done
	echo "redis-server did not start" >&2
	exit 1
}

# start_node NAME PORT: starts a gateway and waits until it listens.
start_node() {
	local log="$WORK/node-$1.log"
	# Both nodes persist into one SQLite file (one machine), which
	# CHATSTATE_STORE=sqlite states; set MONGODB_URI in the environment to
	# benchmark with MongoDB instead.
	local store=sqlite
	[[ -n ${MONGODB_URI:-} ]] && store=mongodb
	CHATSTATE_STORE=$store REDIS_PORT=$REDIS_PORT CHATSTATE_ADDR=127.0.0.1:$2 CHATSTATE_NODE_ID=$1 CHATSTATE_DATA_DIR="$WORK/data" \
		CHATSTATE_JWT_SECRET=$SECRET CHATSTATE_API_KEY=$API_KEY CHATSTATE_MESSAGE_RATE_LIMIT=100000 \
		CHATSTATE_LOG_LEVEL=warn "$WORK/chatstate" serve >"$log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 100); do
		grep -q "listening on" "$log" 2>/dev/null && return
		kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$log" >&2; exit 1; }
		sleep 0.1
	done
	echo "gateway $1 did not start" >&2
	exit 1
}

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
