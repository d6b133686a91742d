#!/usr/bin/env bash
# Runs every test: installs prerequisites, then go vet, the Go tests (which
# start their own redis-server processes on free ports) and a short seed run
# of the fuzz targets.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
go vet ./...
go test -count=1 -timeout 10m ./...
