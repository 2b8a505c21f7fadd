#!/usr/bin/env bash
# The failover test: a pg_auto_failover formation of its own on loopback
# (scripts/ha-lib.sh: a monitor, node1 the primary, node2 a synchronous
# standby), the demo data and 32 users, a psk-shim with both nodes in --db,
# and 32 clients reserving, confirming and releasing over HTTP
# (clients.py).  Mid-load, the primary's WAL sender is stopped (SIGSTOP)
# for PSK_FAILOVER_LAG seconds (a standby falling behind: WAL the standby
# has not got), then the primary's machine "dies": its
# postmaster, every backend and its pg_autoctl are killed with SIGKILL at
# once.  The monitor promotes node2; the clients carry on through the shim.
# check.py then compares what the clients were told with the audit log on
# the new primary.  Prints "N passed, M failed" and the figures.
#
# Knobs: PSK_FAILOVER_REPLICATION=async makes node2 an asynchronous
# standby (replication-quorum false): the test must then be able to catch
# acknowledged changes lost with the old primary (it fails when it does).
# PSK_FAILOVER_LAG (seconds, default 2), PSK_FAILOVER_CLIENTS (default 32),
# PSK_FAILOVER_KEEP=1 keeps the scratch directory.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
source scripts/ha-lib.sh
source test/suite.sh
# every connection below names its server (pg_autoctl would take PG* as defaults)
unset PGHOST PGPORT PGUSER PGDATABASE

mode=${PSK_FAILOVER_REPLICATION:-sync}
lag=${PSK_FAILOVER_LAG:-2}
nclients=${PSK_FAILOVER_CLIENTS:-32}
deadline=$((SECONDS + 280))

if [ -z "${PSK_TEST_WORK:-}" ]; then
	make -s >/dev/null || { echo "build failed"; exit 1; }
	make -s install DESTDIR="$PSK_PGROOT" >/dev/null || { echo "install failed"; exit 1; }
fi
[ -x shim/psk-shim ] || { echo "shim/psk-shim is not built"; exit 1; }

work=$(mktemp -d /tmp/psk-failover.XXXXXX)
chmod 755 "$work"
ha=$work/ha
shim_pid=
clients_pid=
stopped_pid=
cleanup() {
	[ -n "$stopped_pid" ] && kill -CONT "$stopped_pid" 2>/dev/null
	[ -n "$clients_pid" ] && kill "$clients_pid" 2>/dev/null
	[ -n "$shim_pid" ] && kill "$shim_pid" 2>/dev/null
	ha_stop "$ha"
	if [ -n "${PSK_FAILOVER_KEEP:-}" ]; then
		echo "kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mport=$(free_port)
p1=$(free_port)
p2=$(free_port)
while [ "$p2" = "$p1" ]; do p2=$(free_port); done
http=$(free_port)

echo "# replication: $mode; the primary's WAL sender stopped ${lag} s before the kill; $nclients clients"
t=$SECONDS
if ! ha_start "$ha" "$mport" "$p1" "$p2" "$mode"; then
	tail -n 20 "$ha"/*.log
	check "the formation starts (monitor, primary, standby)" yes no
	suite_end
	exit 1
fi
echo "# formation up in $((SECONDS - t)) s"
want="ANY 1 (pgautofailover_standby_2)"
[ "$mode" = async ] && want=
check "synchronous_standby_names on the primary ($mode)" "$want" \
	"$(ha_sql "$ha" node1 "SHOW synchronous_standby_names")"
check "synchronous_commit on" on "$(ha_sql "$ha" node1 "SHOW synchronous_commit")"

# the demo data of make run, and a user per client (pool OSV, 100 codes)
"$PGBIN/psql" -XAtq -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$p1" -U postgres -d psk -1 \
	-f scripts/demo.sql >/dev/null || { echo "demo data failed"; exit 1; }
ha_sql "$ha" node1 "SELECT count(*) FROM generate_series(1, $nclients) i,
    psk_create_user('admin@example.com', 'Failover', 'fo' || i, 'fo' || i || '@example.com',
                    'Rdl@12345', pool => 'OSV')" >/dev/null || { echo "users failed"; exit 1; }
seq 1 "$nclients" | sed 's/.*/fo&@example.com/' >"$work/users"

shim/psk-shim --listen "127.0.0.1:$http" --db "$(ha_conninfo "$ha")" >"$work/shim.log" 2>&1 &
shim_pid=$!
for _ in $(seq 50); do
	curl -sf "http://127.0.0.1:$http/healthz" >/dev/null 2>&1 && break
	sleep 0.2
done
check "the shim answers through the multi-host --db" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http/healthz")"

# A primary that turns read-only under the shim's pooled connections (as a
# demoted one would, were it not restarted): the change is answered 503,
# the connection is dropped, and the shim connects again only to a server
# that takes writes.
url=http://127.0.0.1:$http
tok=$(curl -s "$url/auth/login" -d username=fo1@example.com -d password=Rdl@12345 |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
reserve() {
	curl -s -m 10 -o "$work/reserve.out" -w '%{http_code}' "$url/users/reserve" \
		-H "Authorization: Bearer $tok" -H 'Content-Type: application/json' -d '{"tester_name": "ro"}'
}
pg1() { "$PGBIN/psql" -XAtq -h 127.0.0.1 -p "$p1" -U postgres -d psk "$@"; }
pg1 -c "ALTER SYSTEM SET default_transaction_read_only = on" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
# one HTTP connection, so one shim thread and its pool: the reserve, then
# /healthz (a read, which the read-only server would answer)
codes=$(curl -s -m 20 -w '%{http_code} ' -o "$work/reserve.out" "$url/users/reserve" \
	-H "Authorization: Bearer $tok" -H 'Content-Type: application/json' -d '{"tester_name": "ro"}' \
	--next -s -m 20 -o /dev/null -w '%{http_code}' "$url/healthz")
check "a change on a read-only primary: 503 unavailable" "503 unavailable" \
	"${codes%% *} $(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["error"])' "$work/reserve.out")"
check "the shim drops its connections to the server that answered 25006" 1 \
	"$(grep -c 'is read-only (a standby now): reconnecting' "$work/shim.log")"
check "and finds no server that takes writes meanwhile (healthz on that pool)" 503 "${codes#* }"
pg1 -c "ALTER SYSTEM RESET default_transaction_read_only" -c "SELECT pg_reload_conf()" >/dev/null
st=
for _ in $(seq 40); do
	st=$(reserve)
	[ "$st" = 200 ] && break
	sleep 0.5
done
check "writable again: the shim reconnects and the reserve succeeds" 200 "$st"
code=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("code", ""))' "$work/reserve.out")
# The release comes on a new HTTP connection, which may land on the other
# shim thread: the one whose pool met the read-only server may still be
# waiting out its reconnect backoff (up to 1 s), and answers 503
# unavailable (nothing done) meanwhile, which a client retries.
for _ in $(seq 40); do
	st=$(curl -s -o /dev/null -w '%{http_code}' "$url/users/release" \
		-H "Authorization: Bearer $tok" -H 'Content-Type: application/json' -d "{\"code\": \"$code\"}")
	[ "$st" = 503 ] || break
	sleep 0.5
done
check "and the code is released" 200 "$st"

mkdir -p "$work/out"
python3 test/failover/clients.py --url "http://127.0.0.1:$http" --users "$work/users" \
	--password Rdl@12345 --kill-file "$work/kill" --out "$work/out" \
	--max-seconds $((deadline - SECONDS - 40)) &
clients_pid=$!
sleep 8

primary=node1 standby=node2
check "node1 is the primary before the kill" "$p1" "$(ha_primary "$ha")"
# The primary's WAL sender stops: with a synchronous standby, commits wait
# for it (unacknowledged); with an asynchronous one, they are acknowledged
# and the standby never gets them.
pm=$(head -1 "$ha/$primary/postmaster.pid")
stopped_pid=$(pgrep -P "$pm" -f 'walsender' | head -1)
check "the primary streams to the standby" yes "$([ -n "$stopped_pid" ] && echo yes)"
[ -n "$stopped_pid" ] && [ "$lag" != 0 ] && kill -STOP "$stopped_pid"
sleep "$lag"
# the primary's machine dies: every process at once
victims="$pm $(pgrep -P "$pm" | tr '\n' ' ') $(pgrep -s "$(cat "$ha/$primary.pid")" | tr '\n' ' ')"
date +%s.%N >"$work/kill"
kill -KILL $victims 2>/dev/null
stopped_pid=
echo "# killed $primary (postmaster $pm and $(echo $victims | wc -w) processes) at $(date +%T)"

wait "$clients_pid"
clients_pid=
check "node2 is the primary after the kill" "$p2" "$(ha_primary "$ha")"
check "node2 takes writes (not in recovery)" f "$(ha_sql "$ha" node2 "SELECT pg_is_in_recovery()")"
"$PGBIN/psql" -XAtq -h 127.0.0.1 -p "$p2" -U postgres -d psk -o "$work/out/audit.tsv" -F $'\t' -P null='\N' \
	-c "SELECT id, extract(epoch FROM logged_at), action, code, contact_email FROM psk.audit_log
	     WHERE code IN (SELECT code FROM psk.codes WHERE pool = 'OSV') ORDER BY id"
"$PGBIN/psql" -XAtq -h 127.0.0.1 -p "$p2" -U postgres -d psk -o "$work/out/codes.tsv" -F $'\t' -P null='\N' \
	-c "SELECT c.code, c.status, u.email FROM psk.codes c LEFT JOIN psk.users u ON u.id = c.holder_id
	     WHERE c.pool = 'OSV'"
grep -c 'database connection lost\|database connection failed' "$work/shim.log" |
	sed 's/^/# shim log lines about lost or failed connections: /'

python3 test/failover/check.py "$work/out" >"$work/check.out" 2>&1
cat "$work/check.out"
passed=$((passed + $(grep -c '^ok - ' "$work/check.out")))
failed=$((failed + $(grep -c '^not ok - ' "$work/check.out")))
grep -q '^ok - \|^not ok - ' "$work/check.out" || check "check.py ran" yes no
echo "# took $SECONDS s"
suite_end
