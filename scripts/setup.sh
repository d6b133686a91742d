#!/usr/bin/env bash
# Installs what the tests need, idempotently: redis-server (Debian package)
# and the npm packages of the client tests. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null 2>&1; then
	echo "setup: installing redis-server from Debian packages"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
	# The package starts a service on 6379 on some machines; the tests never use it.
fi
for dir in $(find . -name package.json -not -path '*/node_modules/*' -path '*/testdata/*' -printf '%h\n' 2>/dev/null); do
	if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
		echo "setup: npm ci in $dir"
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) && touch "$dir/node_modules"
	fi
done
