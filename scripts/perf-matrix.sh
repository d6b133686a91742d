#!/usr/bin/env bash
# Runs the side-by-side comparison (scripts/compare.sh: chatstate against the
# Node socket.io reference, same workload, same machine, one after the
# other) over the matrix of docs/performance.md: conversations of 2, 10 and
# 100 on one and two nodes, and conversations of 10 at 2,000 msg/s; then
# prints one markdown table of the key figures. Each run keeps its raw
# results (bench JSON, Redis commandstats) under $OUT.
#
#   bash scripts/perf-matrix.sh
#   DURATION=15s OUT=/tmp/perf bash scripts/perf-matrix.sh
#
# A benchmark, not a test: CI never runs it. About 15 minutes with the
# defaults on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15s}
OUT=${OUT:-$(mktemp -d /tmp/chatstate-perf.XXXXXX)}
mkdir -p "$OUT"
# name conv rate nodes: conversations of 100 run at a tenth of the rate,
# so every row delivers about 10,000 messages a second or less.
MATRIX=${MATRIX:-"c2-n1 2 1000 1
c2-n2 2 1000 2
c10-n1 10 1000 1
c10-n2 10 1000 2
c100-n1 100 100 1
c100-n2 100 100 2
c10-n2-2000 10 2000 2"}
while read -r name conv rate nodes; do
	[[ -z $name ]] && continue
	echo "=== $name: conversations of $conv, $rate msg/s, $nodes node(s) ==="
	CONV=$conv RATE=$rate NODES=$nodes DURATION=$DURATION OUT="$OUT/$name" bash scripts/compare.sh | tee "$OUT/$name.txt" | tail -25
done <<<"$MATRIX"
node bench/matrix-report.mjs "$OUT"
