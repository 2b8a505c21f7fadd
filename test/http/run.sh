#!/usr/bin/env bash
# HTTP tests: a throwaway cluster, real psk-shim processes, every endpoint
# driven over HTTP by test_http.py.  Ends with "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

make -s >/dev/null || { echo "build failed"; exit 1; }
make -s install DESTDIR="$PSK_PGROOT" >/dev/null || { echo "install failed"; exit 1; }

work=$(mktemp -d /tmp/psk-http.XXXXXX)
chmod 755 "$work"
cleanup() {
	# shims the tests started and did not stop (each wrote its pid here)
	for f in "$work"/*.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	cluster_stop "$work/data" immediate
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pgport=$(free_port)
cluster_init "$work/data" || exit 1
cluster_start "$work/data" "$pgport" || exit 1
export PGHOST=127.0.0.1 PGPORT=$pgport PGUSER=postgres PGDATABASE=psk_http
psql -qX -d postgres -c "CREATE DATABASE psk_http" >/dev/null || exit 1
psql -qX -f test/http/setup.sql >/dev/null || { echo "fixture failed"; exit 1; }

PSK_HTTP_WORK=$work PSK_SHIM=shim/psk-shim python3 test/http/test_http.py
