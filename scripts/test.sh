#!/usr/bin/env bash
# Runs every test: installs prerequisites, then gofmt, go vet and staticcheck, the Go tests (which
# start their own redis-server processes on free ports) and a short run of
# each fuzz target beyond its seed corpus. The budget is a count, not a
# duration: Go 1.26's coordinator can fail a duration budget with "context
# deadline exceeded" at its end (golang/go#75804).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" $unformatted >&2
	exit 1
fi
go vet ./...
# staticcheck runs from the module proxy at a pinned version; it is a tool,
# not a dependency of the module.
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
go test -count=1 -timeout 10m ./...
for target in FuzzEnginePayload FuzzSIODecode; do
	go test -run '^$' -fuzz "^${target}\$" -fuzztime 100000x ./socketio/
done
