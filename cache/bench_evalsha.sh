#!/usr/bin/env bash
# Runs redis-benchmark EVALSHA on the cache's Lua scripts (the same files the
# Go code embeds) against a redis-server started here on a free port, then
# shuts it down. Compare with: go test -run '^$' -bench . -benchtime 2s ./cache/
#
# usage: bash cache/bench_evalsha.sh [requests per script, default 100000] [pipeline, default 1]
#
# -P 1 is one request in flight per connection; rueidis auto-pipelines
# concurrent callers, so -P 16 is closer to what the Go benchmarks do.
set -euo pipefail
cd "$(dirname "$0")"
N=${1:-100000}
P=${2:-1}
C=128
R=1000 # distinct users (__rand_int__ range), as in the Go benchmarks

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ "$PORT" = 6379 ]; then echo "refusing port 6379" >&2; exit 1; fi
DIR=$(mktemp -d)
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
	--dir "$DIR" --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log"
cli() { redis-cli -p "$PORT" "$@"; }
cleanup() { cli shutdown nosave >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
for _ in $(seq 100); do cli ping >/dev/null 2>&1 && break; sleep 0.05; done

declare -A SHA
# Prepend the shared libs as cache.go's loadMessage and loadCounted do.
for f in *.lua; do
	case $f in
	*_lib.lua) continue ;;
	message_*) src=$(cat counted_lib.lua message_lib.lua "$f") ;;
	summary_*) src=$(cat counted_lib.lua "$f") ;;
	*) src=$(cat "$f") ;;
	esac
	SHA[${f%.lua}]=$(cli script load "$src")
done

bench() { # name, then EVALSHA arguments after the sha
	local name=$1; shift
	local out
	out=$(redis-benchmark -p "$PORT" -c "$C" -n "$N" -r "$R" -P "$P" -q evalsha "${SHA[$name]}" "$@" 2>&1 | tr '\r' '\n' | grep -o '[0-9.]* requests per second.*' | tail -1)
	printf '%-22s %s\n' "$name" "$out"
}
quiet() { redis-benchmark -p "$PORT" -c "$C" -n "$1" -r "$R" -q evalsha "${SHA[$2]}" "${@:3}" >/dev/null 2>&1; }

MSG='{"id":"0123456789abcdef0123456789abcdef","conversationId":"bench","senderId":"alice","content":"hello there, how are you doing today?","type":"text","clientMessageId":"cm__rand_int__"}'
SESSION='{"userId":"user","deviceId":"dev1","data":{"app":"3.2.1","os":"android"}}'
NOTE='{"id":"0123456789abcdef0123456789abcdef","userId":"user","priority":"normal","title":"New message","body":"alice: hello there","data":{"conversationId":"conv1"},"createdAt":1764000000000}'
EVENT='{"type":"login","ip":"203.0.113.7","deviceId":"dev1"}'
FRIENDS=()
for i in $(seq 0 99); do FRIENDS+=("friend$i"); done

echo "redis-benchmark -c $C -n $N -r $R -P $P, EVALSHA, $(redis-server --version | cut -d' ' -f3)"
bench message_add 3 'messages:{c:bench}' 'seq:{c:bench}' 'dedupe:{c:bench}' "$MSG" 0 0 'alice:cm__rand_int__' 100 86400000 100
bench message_seqfloor 2 'seq:{c:bench}' 'restored:{c:bench}' 5
bench session_create 1 'sessions:{u:user__rand_int__}' dev1 "$SESSION" 3600000 50
quiet 20000 session_create 1 'sessions:{u:user__rand_int__}' dev2 "$SESSION" 3600000 50
bench session_touch 1 'sessions:{u:user__rand_int__}' dev1 3600000
bench session_read 1 'sessions:{u:user__rand_int__}' ''
bench session_sweep 1 'sessions:{u:user__rand_int__}'
bench friends_set 1 'friends:{u:user__rand_int__}' 7200000 '~cached' "${FRIENDS[@]}"
bench notification_add 1 'notifications:{u:user__rand_int__}' "$NOTE" 100 604800000

bench ratelimit_check 1 'rate_limit:{u:user__rand_int__}:send_message' 30 60000000 'n__rand_int__'
bench securitylog_add 1 'security_log:{u:user__rand_int__}' "$EVENT" 0 100 7776000000
