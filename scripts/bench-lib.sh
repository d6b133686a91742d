# Shared by scripts/bench.sh and scripts/compare.sh (source it from the repo
# root, after set -euo pipefail): a private redis-server on a free port
# (never 6379), chatstate gateways on loopback, and a cleanup that ends every
# process they started. Callers set SECRET and API_KEY; this file sets WORK,
# PIDS and REDIS_PORT and installs the EXIT trap.

command -v redis-server >/dev/null || { echo "redis-server is required" >&2; exit 1; }
WORK=$(mktemp -d /tmp/chatstate-bench.XXXXXX)
PIDS=()
REDIS_PORT=

# stop_pids ends the processes in PIDS (TERM, then KILL after 5 s).
stop_pids() {
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	done
	PIDS=()
}

cleanup() {
	stop_pids
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

# build_bench builds the gateway and the load tool into $WORK.
build_bench() {
	echo "building into $WORK"
	go build -o "$WORK/chatstate" ./cmd/chatstate
	go build -o "$WORK/chatstate-bench" ./cmd/chatstate-bench
	# Servers inherit the highest open-files limit this shell may set.
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

start_redis() {
	REDIS_PORT=$(free_port $((7300 + RANDOM % 500)))
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
		--maxclients 10000 --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log" \
		${SLOWLOG:+--slowlog-log-slower-than 0 --slowlog-max-len 1000000}
	for _ in $(seq 50); do
		redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return
		sleep 0.1
	done
	echo "redis-server did not start" >&2
	exit 1
}

# wait_listening LOG NAME: waits until the process last added to PIDS logs
# "listening on", failing if it exits first or takes over 10 s.
wait_listening() {
	for _ in $(seq 100); do
		grep -q "listening on" "$1" 2>/dev/null && return
		kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$1" >&2; exit 1; }
		sleep 0.1
	done
	echo "$2 did not start" >&2
	exit 1
}

# start_node NAME PORT: starts a chatstate gateway and waits until it listens.
start_node() {
	local log="$WORK/node-$1.log"
	# Both nodes persist into one SQLite file (one machine), which
	# CHATSTATE_STORE=sqlite states; set MONGODB_URI in the environment to
	# benchmark with MongoDB instead.
	local store=sqlite
	[[ -n ${MONGODB_URI:-} ]] && store=mongodb
	CHATSTATE_STORE=$store REDIS_PORT=$REDIS_PORT CHATSTATE_ADDR=127.0.0.1:$2 CHATSTATE_NODE_ID=$1 CHATSTATE_DATA_DIR="$WORK/data" \
		CHATSTATE_JWT_SECRET=$SECRET CHATSTATE_API_KEY=$API_KEY CHATSTATE_MESSAGE_RATE_LIMIT=100000 \
		CHATSTATE_SQLITE_SYNC="${SQLITE_SYNC:-full}" CHATSTATE_LOG_LEVEL=warn GOMAXPROCS="${NODE_GOMAXPROCS:-${GOMAXPROCS:-}}" "$WORK/chatstate" serve >"$log" 2>&1 &
	PIDS+=($!)
	wait_listening "$log" "gateway $1"
}

# ensure_node_ref installs the Node reference's packages (bench/node-ref) on
# first use, and again when its lock file changed.
ensure_node_ref() {
	command -v node >/dev/null || { echo "node is required (bench/node-ref)" >&2; exit 1; }
	if [[ ! -d bench/node-ref/node_modules ]] || [[ bench/node-ref/package-lock.json -nt bench/node-ref/node_modules ]]; then
		echo "npm ci in bench/node-ref"
		(cd bench/node-ref && npm ci --no-audit --no-fund --loglevel=error) && touch bench/node-ref/node_modules
	fi
}

# start_ref NAME PORT PREFIX: starts a Node reference server and waits until it listens.
start_ref() {
	local log="$WORK/ref-$1.log"
	REDIS_PORT=$REDIS_PORT REF_ADDR=127.0.0.1:$2 REF_NODE_ID=$1 REF_JWT_SECRET=$SECRET REF_API_KEY=$API_KEY \
		REF_KEY_PREFIX=$3 node bench/node-ref/server.mjs >"$log" 2>&1 &
	PIDS+=($!)
	wait_listening "$log" "node-ref $1"
}
