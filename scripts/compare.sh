#!/usr/bin/env bash
# Runs one workload of cmd/chatstate-bench first against two chatstate
# gateways, then against two Node reference servers (bench/node-ref:
# socket.io 4.8.4 + @socket.io/redis-adapter 8.3.0), on one private
# redis-server (never 6379; each server gets fresh keys), and prints both
# results side by side with their ratios. Every process it starts is ended
# when it exits; each bench run is bounded by a timeout.
#
#   bash scripts/compare.sh
#   CLIENTS=1000 CONV=10 RATE=1000 DURATION=15s NODES=2 bash scripts/compare.sh
#   OUT=dir bash scripts/compare.sh   # also keeps both results (json, commandstats) in dir
#   SQLITE_SYNC=normal bash scripts/compare.sh   # gateways commit to SQLite without an fsync each (default full)
#   NODE_GOMAXPROCS=1 bash scripts/compare.sh     # one P per gateway process
#   SLOWLOG=1 OUT=dir bash scripts/compare.sh   # and every Redis call of the send phase (dir/NAME.slowlog)
#
# It is a benchmark: scripts/test.sh and CI never run it. The Node server's
# packages are installed with npm ci on first use.
set -euo pipefail

cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-1000}
CONV=${CONV:-10}
RATE=${RATE:-1000}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-5s}
NODES=${NODES:-2}
[[ $NODES == 1 || $NODES == 2 ]] || { echo "NODES is 1 or 2" >&2; exit 2; }
SECRET=bench-secret
API_KEY=bench-key

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
ensure_node_ref

# seconds DURATION: a Go duration of s or m (as the bench takes) in whole seconds.
seconds() {
	case $1 in
	*ms) echo 1 ;;
	*m) echo $((${1%m} * 60)) ;;
	*s) echo "${1%s}" | cut -d. -f1 ;;
	*) echo "DURATION and WARMUP take s or m, like 15s: $1" >&2; exit 2 ;;
	esac
}
# A bench run connects, sends for WARMUP+DURATION and drains for at most
# 10 s; anything past this budget is a hang.
BUDGET=$(($(seconds "$WARMUP") + $(seconds "$DURATION") + 180))


commandstats() { redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r'; }

# run_bench NAME: runs the workload against the two servers in PIDS on
# ports $port_a and $port_b. Writes $WORK/NAME.json and the Redis
# commandstats at the start ($WORK/NAME.cmd0) and end ($WORK/NAME.cmd1) of
# the send phase, told by the tool's "sending" and "draining" log lines. The
# tool is stopped (SIGSTOP) while the second snapshot is taken, so the
# commands of its closing sockets are not counted; its log comes through a
# FIFO read line by line, which bounds the run by BUDGET without a watchdog
# process.
run_bench() {
	local name=$1 fifo="$WORK/$1.fifo"
	echo
	echo "=== $name: $CLIENTS clients, conversations of $CONV, $RATE msg/s, $DURATION (+$WARMUP warmup), $NODES node(s) ==="
	local nodes="http://127.0.0.1:$port_a" pids="${PIDS[0]}"
	if ((NODES == 2)); then
		nodes+=",http://127.0.0.1:$port_b"
		pids+=",${PIDS[1]}"
	fi
	local cmd=("$WORK/chatstate-bench" -nodes "$nodes"
		-clients "$CLIENTS" -conv "$CONV" -rate "$RATE" -duration "$DURATION" -warmup "$WARMUP"
		-pids "$pids" -redis-pid "$(cat "$WORK/redis.pid")" -secret "$SECRET" -api-key "$API_KEY" -json)
	echo "+ ${cmd[*]}"
	mkfifo "$fifo"
	"${cmd[@]}" >"$WORK/$name.json" 2>"$fifo" &
	local bench=$! phase=0 line left
	PIDS+=("$bench")
	local deadline=$((SECONDS + BUDGET))
	while true; do
		left=$((deadline - SECONDS))
		if ((left <= 0)); then
			echo "$name: chatstate-bench ran past ${BUDGET}s" >&2
			exit 1
		fi
		local got=0
		IFS= read -r -t "$left" line || got=$?
		if ((got > 128)); then
			echo "$name: chatstate-bench ran past ${BUDGET}s" >&2
			exit 1
		fi
		((got == 0)) || break # end of its log: it exited
		echo "  $line"
		case $line in
		*"] sending "*)
			commandstats >"$WORK/$name.cmd0"
			if [ -n "${SLOWLOG:-}" ]; then redis-cli -p "$REDIS_PORT" slowlog reset >/dev/null; fi
			phase=1
			;;
		*"] draining "*)
			kill -STOP "$bench" 2>/dev/null || true
			commandstats >"$WORK/$name.cmd1"
			if [ -n "${SLOWLOG:-}" ]; then redis-cli -p "$REDIS_PORT" slowlog get -1 >"$WORK/$name.slowlog"; fi
			kill -CONT "$bench" 2>/dev/null || true
			phase=2
			;;
		esac
	done <"$fifo"
	local rc=0
	wait "$bench" || rc=$?
	unset 'PIDS[-1]'
	if ((rc != 0)); then
		echo "$name: chatstate-bench failed (exit $rc)" >&2
		exit 1
	fi
	((phase == 2)) || { echo "$name: missed the send phase's log lines" >&2; exit 1; }
}

build_bench
start_redis
RUN=$(date +%s)

port_a=$(free_port 18080)
start_node a "$port_a"
if ((NODES == 2)); then
	port_b=$(free_port $((port_a + 1)))
	start_node b "$port_b"
fi
run_bench chatstate
stop_pids

port_a=$(free_port 18090)
start_ref a "$port_a" "ref$RUN:"
if ((NODES == 2)); then
	port_b=$(free_port $((port_a + 1)))
	start_ref b "$port_b" "ref$RUN:"
fi
run_bench node-ref
stop_pids

echo
node bench/compare-report.mjs "$WORK/chatstate" "$WORK/node-ref"
if [[ -n ${OUT:-} ]]; then
	mkdir -p "$OUT"
	cp "$WORK"/chatstate.{json,cmd0,cmd1} "$WORK"/node-ref.{json,cmd0,cmd1} "$OUT"/
	if [ -n "${SLOWLOG:-}" ]; then cp "$WORK"/*.slowlog "$OUT"/; fi
fi
