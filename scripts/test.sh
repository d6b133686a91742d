#!/usr/bin/env bash
# Runs every test: installs prerequisites, then go vet, the Go tests (which
# start their own redis-server processes on free ports) and a short run of
# each fuzz target beyond its seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
go vet ./...
go test -count=1 -timeout 10m ./...
for target in FuzzEnginePayload FuzzSIODecode; do
	go test -run '^$' -fuzz "^${target}\$" -fuzztime 5s ./socketio/
done
