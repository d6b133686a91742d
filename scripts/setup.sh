#!/usr/bin/env bash
# Installs what the tests need, idempotently: redis-server, chromium, an
# emoji font and python3-socketio (Debian packages) and the npm packages of the client and
# browser tests. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
updated=
# Another apt run (an unattended upgrade, a second checkout's setup) may
# hold the dpkg lock: wait for it instead of failing.
apt_lock=(-o DPkg::Lock::Timeout=300)
apt_install() {
	if [ -z "$updated" ]; then
		apt-get "${apt_lock[@]}" update -qq
		updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get "${apt_lock[@]}" install -y -qq "$@" >/dev/null
}
if ! command -v redis-server >/dev/null 2>&1; then
	echo "setup: installing redis-server from Debian packages"
	apt_install redis-server
	# The package starts a service on 6379 on some machines; the tests never use it.
fi
# The browser tests (TestBrowser) drive Debian's chromium with playwright-core;
# the font draws the demo page's emoji reactions in their screenshots.
if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/truetype/noto ]; then
	echo "setup: installing chromium and fonts-noto-color-emoji from Debian packages"
	apt_install chromium fonts-noto-color-emoji
fi
# The python-socketio client test (TestPythonClient) runs on Debian's python3,
# with the transports' libraries the client needs for websocket and polling.
if ! /usr/bin/python3 -c 'import socketio, websocket, requests' >/dev/null 2>&1; then
	echo "setup: installing python3-socketio, python3-websocket and python3-requests from Debian packages"
	apt_install python3 python3-socketio python3-websocket python3-requests
fi
for dir in $(find . -name package.json -not -path '*/node_modules/*' -path '*/testdata/*' -printf '%h\n' 2>/dev/null); do
	if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
		echo "setup: npm ci in $dir"
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) && touch "$dir/node_modules"
	fi
done
