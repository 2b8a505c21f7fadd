#!/usr/bin/env bash
# HTTP tests: real psk-shim processes against a real cluster, every endpoint
# driven over HTTP by test_http.py.  Ends with "N passed, M failed".
#
# Run by scripts/test.sh (PSK_TEST_WORK set): it uses that cluster
# (PGHOST/PGPORT/PGUSER, psk installed) and makes its own database and role
# there.  Run alone: it builds, installs into $PSK_PGROOT and starts a
# throwaway cluster of its own.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
# the shims' admin ports (/metrics): any free port, unless a test names one
export PSK_ADMIN_LISTEN=127.0.0.1:0

own_cluster=
if [ -n "${PSK_TEST_WORK:-}" ] && [ -n "${PGPORT:-}" ]; then
	work=$(mktemp -d "$PSK_TEST_WORK/http.XXXXXX")
	# scripts/test.sh's cluster logs every statement, its user, to this file
	export PSK_HTTP_SERVER_LOG=${PSK_TEST_SERVER_LOG:-}
else
	make -s >/dev/null || { echo "build failed"; exit 1; }
	make -s install DESTDIR="$PSK_PGROOT" >/dev/null || { echo "install failed"; exit 1; }
	work=$(mktemp -d /tmp/psk-http.XXXXXX)
	own_cluster=$work/data
fi
chmod 755 "$work"
[ -x shim/psk-shim ] || { echo "shim/psk-shim is not built"; exit 1; }

cleanup() {
	# shims the tests started and did not stop (each wrote its pid here)
	for f in "$work"/*.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	if [ -n "$own_cluster" ]; then
		cluster_stop "$own_cluster" immediate
	else
		psql -qX -d postgres -c "DROP DATABASE IF EXISTS psk_http WITH (FORCE)" \
			-c "DROP ROLE IF EXISTS psk_shim" >/dev/null 2>&1
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "$own_cluster" ]; then
	pgport=$(free_port)
	cluster_init "$own_cluster" || exit 1
	# every statement logged: the tests check no secret reaches the log
	cluster_start "$own_cluster" "$pgport" -c shared_preload_libraries=psk -c log_statement=all \
		-c "log_line_prefix='%m [%p] %u '" || exit 1
	export PGHOST=127.0.0.1 PGPORT=$pgport PGUSER=postgres
	export PSK_HTTP_SERVER_LOG=$own_cluster/server.log
fi
export PGDATABASE=psk_http
# a fresh database for each script
fresh_db() {
	psql -qX -d postgres -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS psk_http WITH (FORCE)" \
		-c "DROP ROLE IF EXISTS psk_shim" -c "CREATE DATABASE psk_http" >/dev/null &&
		psql -qX -f test/http/setup.sql >/dev/null
}

# test_http.py: every endpoint; test_acl.py: who may call each of them;
# test_switch.py: CORS, gzip, logged_at_str, login trimming and /docs for
# the old service's users; test_metrics.py: the admin port; test_csv.py:
# CSV imports and exports.  Each prints "N passed, M failed" last; the sum
# is ours.
passed=0
failed=0
for t in test_http test_acl test_switch test_metrics test_csv; do
	echo "== $t.py"
	if ! fresh_db; then
		echo "fixture failed"
		failed=$((failed + 1))
		continue
	fi
	PSK_HTTP_WORK=$work PSK_SHIM=shim/psk-shim python3 "test/http/$t.py" | tee "$work/$t.out"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$work/$t.out" | tail -1)
	p=0 f=1
	[ -n "$line" ] && p=${line%% *} && f=$(echo "$line" | cut -d' ' -f3)
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	passed=$((passed + p))
	failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
