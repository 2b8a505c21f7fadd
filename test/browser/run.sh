#!/usr/bin/env bash
# Browser tests: headless Chromium (Debian's chromium, driven by
# playwright-core, which scripts/deps.sh installs into test/browser/
# node_modules) against a real shim on 127.0.0.1: the old web client's
# calls through fetch() from a page on another origin (a second port),
# and the /docs page.  Ends with "N passed, M failed".
#
# Run by scripts/test.sh (PSK_TEST_WORK set): it uses that cluster and
# makes its own database there.  Run alone: it builds, installs into
# $PSK_PGROOT and starts a throwaway cluster of its own.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
# the shims' admin ports (/metrics): any free port, unless a test names one
export PSK_ADMIN_LISTEN=127.0.0.1:0

own_cluster=
if [ -n "${PSK_TEST_WORK:-}" ] && [ -n "${PGPORT:-}" ]; then
	work=$(mktemp -d "$PSK_TEST_WORK/browser.XXXXXX")
else
	make -s >/dev/null || { echo "build failed"; exit 1; }
	make -s install DESTDIR="$PSK_PGROOT" >/dev/null || { echo "install failed"; exit 1; }
	work=$(mktemp -d /tmp/psk-browser.XXXXXX)
	own_cluster=$work/data
fi
chmod 755 "$work"
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	if [ -n "$own_cluster" ]; then
		cluster_stop "$own_cluster" immediate
	else
		psql -qX -d postgres -c "DROP DATABASE IF EXISTS psk_browser WITH (FORCE)" \
			-c "DROP ROLE IF EXISTS psk_shim" >/dev/null 2>&1
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "not ok - $*"
	echo "0 passed, 1 failed"
	exit 1
}
[ -x shim/psk-shim ] || fail "shim/psk-shim is not built"
[ -d test/browser/node_modules/playwright-core ] || fail "playwright-core is not installed (scripts/deps.sh)"
command -v chromium >/dev/null || fail "chromium is not installed (scripts/deps.sh)"

if [ -n "$own_cluster" ]; then
	pgport=$(free_port)
	cluster_init "$own_cluster" || exit 1
	cluster_start "$own_cluster" "$pgport" || exit 1
	export PGHOST=127.0.0.1 PGPORT=$pgport PGUSER=postgres
fi
export PGDATABASE=psk_browser
psql -qX -d postgres -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS psk_browser WITH (FORCE)" \
	-c "DROP ROLE IF EXISTS psk_shim" -c "CREATE DATABASE psk_browser" >/dev/null &&
	psql -qX -f test/http/setup.sql >/dev/null || fail "fixture"

shim_port=$(free_port)
page_port=$(free_port)
stranger_port=$(free_port)
# the page's origin is listed; the stranger's (the same page on another port) is not
shim/psk-shim --listen "127.0.0.1:$shim_port" --threads 1 --pool 2 \
	--db "host=127.0.0.1 port=$PGPORT dbname=psk_browser user=psk_shim" \
	--cors-origins "http://127.0.0.1:$page_port" >"$work/shim.log" 2>&1 &
pids+=($!)
for port in "$page_port" "$stranger_port"; do
	python3 -m http.server --bind 127.0.0.1 --directory test/browser/page "$port" >"$work/page-$port.log" 2>&1 &
	pids+=($!)
done
for port in "$shim_port" "$page_port" "$stranger_port"; do
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		sleep 0.1
	done
done

PSK_SHIM_URL=http://127.0.0.1:$shim_port PSK_PAGE_URL=http://127.0.0.1:$page_port \
	PSK_STRANGER_URL=http://127.0.0.1:$stranger_port PSK_SHIM_LOG=$work/shim.log HOME=$work \
	timeout 300 node test/browser/browser.cjs
rc=$?
[ $rc -ne 0 ] && { echo "# shim log:"; tail -20 "$work/shim.log" | sed 's/^/# /'; }
exit $rc
