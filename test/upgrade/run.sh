#!/usr/bin/env bash
# An update on a running server: with psk in shared_preload_libraries (the
# library of this checkout loaded at start, the expiry worker running), a
# database made at 0.1.0 or 0.2.0 keeps working through its old SQL, and
# ALTER EXTENSION psk UPDATE runs without a restart while sessions opened
# before it keep reserving, confirming and releasing, before, during and
# after.  First: every C symbol that any release's SQL names is still in
# psk.so, so that old SQL finds the functions it names.  Own throwaway
# cluster; prints "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

source test/suite.sh
suite_cluster upgrade

# Every 'MODULE_PATHNAME', 'symbol' of every install and update script,
# released or not, in the library that is installed.
lib=$PSK_PGROOT$("$PG_CONFIG" --pkglibdir)/psk.so
refs=$(cat extension/psk--*.sql extension/sql/*.sql | grep -c "MODULE_PATHNAME")
named=$(cat extension/psk--*.sql extension/sql/*.sql | grep -o "'MODULE_PATHNAME', *'[A-Za-z0-9_]*'" | wc -l)
check "every MODULE_PATHNAME names its symbol on the same line" "$refs" "$named"
missing=
# (read once: grep -q on nm's pipe ends it early, and pipefail took the
# SIGPIPE for a missing symbol)
defined=$(nm -D --defined-only "$lib" | awk '{print $3}')
for sym in $(cat extension/psk--*.sql extension/sql/*.sql |
	grep -o "'MODULE_PATHNAME', *'[A-Za-z0-9_]*'" | sed "s/.*, *'//; s/'\$//" | sort -u); do
	grep -qx "$sym" <<<"$defined" || missing="$missing $sym"
done
check "psk.so has every C symbol that 0.1.0, 0.2.0 and 0.3.0 name" "" "$missing"

cluster_init "$work/data" || exit 1
cluster_start "$work/data" "$port" -c shared_preload_libraries=psk \
	-c psk.database=up010,up020 -c psk.expiry_interval=1 || exit 1

# One reserve, confirm and release through the old functions (psk_release
# without a token, as 0.1.0 and 0.2.0 have it), tester $1.
cycle() {
	cat <<SQL
SELECT code, reservation_token AS tok FROM psk_reserve('osv@example.com', '$1') \gset
SELECT status FROM psk_confirm('osv@example.com', :'code', :'tok');
SELECT count(*) FROM psk_release('osv@example.com', :'code');
SQL
}

# 0.2.0's routes as the shim's pooled connection calls them (psk.http_*):
# reserve, confirm, release, one line each ("http ...") in the output
http_calls() {
	cat <<'SQL'
SELECT access_token AS web FROM psk_login('osv@example.com', 'Rdl@12345') \gset
SELECT r->>'code' AS wcode, r->>'reservation_token' AS wtok FROM (SELECT psk.http_reserve(:'web', '{"tester_name": "web"}', '{}')::jsonb AS r) s \gset
SELECT 'http ' || (psk.http_confirm(:'web', json_build_object('code', :'wcode', 'reservation_token', :'wtok')::text, '{}')::jsonb->>'status');
SELECT 'http ' || json_typeof(psk.http_release(:'web', json_build_object('code', :'wcode')::text, '{}'));
SELECT 'http ' || status FROM psk.codes WHERE code = :'wcode';
SELECT 'http ' || json_typeof(psk.http_my_codes(:'web', NULL, '{}'));
SQL
}

# wait_for FILE MARK: until the session has answered up to MARK (30 s)
wait_for() {
	for _ in $(seq 300); do
		grep -qx "$2" "$1" && return 0
		sleep 0.1
	done
	return 1
}

for version in 0.1.0 0.2.0; do
	db=up${version//./}
	export PGDATABASE=$db
	psql -XAtq -d postgres -c "CREATE DATABASE $db" || exit 1
	psql -XAtq -v ON_ERROR_STOP=1 -c "CREATE EXTENSION pgcrypto" \
		-c "CREATE EXTENSION psk VERSION '$version'" -f test/fixtures/tap.sql >/dev/null || exit 1
	sql "SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV',
	     ARRAY(SELECT 'U' || i FROM generate_series(1, 50) i))" >/dev/null
	check "$version: installed at $version, psk preloaded" "$version" \
		"$(sql "SELECT extversion FROM pg_extension WHERE extname = 'psk'")"

	# the session opened before the update, fed through a FIFO
	fifo=$work/in-$db
	out=$work/out-$db
	mkfifo "$fifo"
	psql -XAtq -v ON_ERROR_STOP=0 <"$fifo" >"$out" 2>&1 &
	session=$!
	exec 7>"$fifo"
	{
		echo "SELECT pg_backend_pid() AS pid_before \\gset"
		echo "PREPARE mine AS SELECT count(*) FROM psk_my_codes('osv@example.com');"
		for _ in 1 2 3; do cycle before; done
		echo "EXECUTE mine;"
		[ "$version" = 0.2.0 ] && http_calls
		echo "\\echo before-done"
	} >&7
	wait_for "$out" before-done
	check "$version: the old session works on the old SQL" 3 \
		"$(sql "SELECT count(*) FROM psk.audit_log WHERE action = 'RELEASED' AND tester_name = 'before'")"

	# another old session keeps cycling while the update runs
	{
		for _ in $(seq 300); do cycle during; done
	} >"$work/during-$db.sql"
	psql -XAtq -v ON_ERROR_STOP=0 -f "$work/during-$db.sql" >"$work/during-$db.out" 2>&1 &
	during=$!
	cycled=0
	for _ in $(seq 100); do
		cycled=$(sql "SELECT count(*) FROM psk.audit_log WHERE action = 'RELEASED' AND tester_name = 'during'")
		[ "$cycled" -ge 5 ] && break
		sleep 0.1
	done
	check "$version: ALTER EXTENSION psk UPDATE without a restart" "" \
		"$(psql -XAtq -v ON_ERROR_STOP=1 -c "ALTER EXTENSION psk UPDATE" 2>&1)"
	check "$version: the update ran while the other session cycled" t \
		"$([ "$cycled" -ge 5 ] && [ "$(sql "SELECT count(*) FROM psk.audit_log WHERE action = 'RELEASED' AND tester_name = 'during'")" -lt 300 ] && echo t)"
	wait "$during"
	grep -A2 'ERROR' "$work/during-$db.out" >&2
	check "$version: no error in the session cycling through the update" 0 \
		"$(grep -c 'ERROR' "$work/during-$db.out")"
	check "$version: all its 300 cycles done" 300 \
		"$(sql "SELECT count(*) FROM psk.audit_log WHERE action = 'RELEASED' AND tester_name = 'during'")"

	# the first session, after the update: same backend, same calls, a
	# prepared statement made before, and the new function
	{
		for _ in 1 2 3; do cycle after; done
		echo "EXECUTE mine;"
		echo "SELECT pg_backend_pid() = :pid_before AS same_backend;"
		cycle renewer | head -1
		echo "SELECT status FROM psk_renew('osv@example.com', :'code', :'tok');"
		[ "$version" = 0.2.0 ] && http_calls
		echo "\\echo after-done"
	} >&7
	wait_for "$out" after-done
	exec 7>&-
	wait "$session"
	grep -A2 'ERROR' "$out" >&2
	check "$version: no error in the session opened before the update" 0 "$(grep -c 'ERROR' "$out")"
	check "$version: it cycled after the update" 3 \
		"$(sql "SELECT count(*) FROM psk.audit_log WHERE action = 'RELEASED' AND tester_name = 'after'")"
	check "$version: in the same backend, and renewed through 0.3.0's psk_renew" "t RESERVED" \
		"$(grep -x 't\|RESERVED' "$out" | tr '\n' ' ' | sed 's/ $//')"
	[ "$version" = 0.2.0 ] && check "0.2.0: its psk.http_* routes, before and after the update" \
		"http IN_USE|http object|http CAN_BE_USED|http array|http IN_USE|http object|http CAN_BE_USED|http array" \
		"$(grep '^http ' "$out" | paste -sd'|')"
	check "$version: a new session sees 0.3.0" 0.3.0 \
		"$(sql "SELECT extversion FROM pg_extension WHERE extname = 'psk'")"
	check "$version: and reserves with a request_id" 1 \
		"$(sql "SELECT count(*) FROM psk_reserve('osv@example.com', 'new', request_id => 'r1')")"
	check "$version: no code held twice, nothing left held but the two" 2 \
		"$(sql "SELECT count(*) FROM psk.codes WHERE status <> 'CAN_BE_USED'")"
done

grep -A1 'ERROR' "$work/data/server.log" | head -20 >&2
check "the server logged no error" 0 "$(grep -c 'ERROR' "$work/data/server.log")"
suite_end
