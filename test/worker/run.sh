#!/usr/bin/env bash
# The expiry background worker: with psk in shared_preload_libraries it
# returns overdue holds (reservations, codes in use) to their pool every
# psk.expiry_interval in each database of psk.database, and forgets the
# request_ids of reserves older than 24 hours.  Own throwaway cluster;
# prints "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

source test/suite.sh
suite_cluster worker
export PGDATABASE=psk_worker

cluster_init "$work/data" || exit 1
cluster_start "$work/data" "$port" || exit 1
psql -XAtq -d postgres -c "CREATE DATABASE psk_worker" || exit 1
psql -XAtq -v ON_ERROR_STOP=1 -c "CREATE EXTENSION psk CASCADE" -f test/fixtures/tap.sql >/dev/null 2>&1
sql "SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['W1', 'W2', 'W3', 'W4'])" >/dev/null
cluster_stop "$work/data"
cluster_start "$work/data" "$port" -c shared_preload_libraries=psk \
	-c psk.database=psk_worker,postgres -c psk.expiry_interval=1 || exit 1

check "psk.database is read at start" "psk_worker,postgres" "$(sql "SHOW psk.database")"
sleep 1
check "one worker per listed database" 2 \
	"$(sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'psk expiry worker'")"

sql "SET psk.reservation_ttl = '1s'; SELECT code FROM psk_reserve('osv@example.com', 'w')" >/dev/null
sql "SELECT code FROM psk_reserve('osv@example.com', 'w')" >/dev/null
status=
for _ in $(seq 50); do
	status=$(sql "SELECT status FROM psk.codes WHERE code = 'W1'")
	[ "$status" = CAN_BE_USED ] && break
	sleep 0.2
done
check "an overdue reservation returns to the pool" CAN_BE_USED "$status"
check "one EXPIRED audit row, the holder as actor" "W1|osv@example.com|w" \
	"$(sql "SELECT string_agg(code || '|' || contact_email || '|' || tester_name, ',') FROM psk.audit_log WHERE action = 'EXPIRED'")"
check "a reservation without TTL stays held" RESERVED \
	"$(sql "SELECT status FROM psk.codes WHERE code = 'W2'")"

# a code in use past psk.in_use_ttl returns as a reservation does
sql "SET psk.in_use_ttl = '1s'; SELECT status FROM psk_confirm('osv@example.com', 'W2',
     (SELECT reservation_token FROM psk.codes WHERE code = 'W2'))" >/dev/null
# request_ids: one made 25 hours ago (forgotten), one now (kept)
sql "SELECT code FROM psk_reserve('osv@example.com', 'w', request_id => 'old')" >/dev/null
sql "SELECT code FROM psk_reserve('osv@example.com', 'w', request_id => 'new')" >/dev/null
sql "UPDATE psk.reserve_requests SET made_at = made_at - interval '25 hours' WHERE request_id = 'old'" >/dev/null
for _ in $(seq 50); do
	status=$(sql "SELECT status FROM psk.codes WHERE code = 'W2'")
	remembered=$(sql "SELECT string_agg(request_id, ',' ORDER BY request_id) FROM psk.reserve_requests")
	[ "$status" = CAN_BE_USED ] && [ "$remembered" = new ] && break
	sleep 0.2
done
check "an overdue code in use returns to the pool" CAN_BE_USED "$status"
check "its EXPIRED row, the holder as actor" "W2|osv@example.com|w" \
	"$(sql "SELECT string_agg(code || '|' || contact_email || '|' || tester_name, ',') FROM psk.audit_log WHERE action = 'EXPIRED' AND code = 'W2'")"
check "request_ids older than 24 hours are forgotten, newer ones kept" new "$remembered"
check "the log says what the worker did" 1 \
	"$(grep -c 'psk: forgot 1 request ids older than 24 hours' "$work/data/server.log")"

# a database without psk: the worker stays quiet and alive
check "the worker in a database without psk is alive" 1 \
	"$(sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'psk expiry worker' AND datname = 'postgres'")"
check "no worker errors in the log" 0 "$(grep -c 'ERROR' "$work/data/server.log")"

# metrics: the worker's liveness in shared memory, and its folds of the log
metric() { sql "SELECT value FROM psk.metrics() WHERE name = '$1' AND labels = '$2'"; }
check "metrics: the worker is up" 1 "$(metric psk_expiry_worker_up '')"
check "metrics: it swept within the last 3 s" t \
	"$(sql "SELECT now() - to_timestamp(value) < interval '3 s' FROM psk.metrics() WHERE name = 'psk_expiry_worker_last_sweep_timestamp_seconds'")"
folded=
for _ in $(seq 50); do
	folded=$(sql "SELECT folded_to = (SELECT max(id) FROM psk.audit_log) FROM psk.metrics_state")
	[ "$folded" = t ] && break
	sleep 0.2
done
check "metrics: the worker folds the log into the totals" t "$folded"
check "metrics: the folded totals count both expiries" 2 \
	"$(metric psk_transitions_total 'action="EXPIRED"')"
check "metrics: the worker counted the codes" t \
	"$(sql "SELECT counted_at > now() - interval '3 s' FROM psk.metrics_state")"
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'psk expiry worker' AND datname = 'psk_worker'" >/dev/null
up=
for _ in $(seq 25); do
	up=$(metric psk_expiry_worker_up '')
	[ "$up" = 0 ] && break
	sleep 0.2
done
check "metrics: a worker that died is down" 0 "$up"

# psk.database unset: no worker at all (not one in postgres, as before),
# and the log says so once
cluster_stop "$work/data"
: >"$work/data/server.log"
cluster_start "$work/data" "$port" -c shared_preload_libraries=psk || exit 1
sleep 1
check "psk.database unset: no expiry worker" 0 \
	"$(sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'psk expiry worker'")"
check "psk.database unset: said once in the log" 1 \
	"$(grep -c 'psk.database is not set, so no expiry worker runs' "$work/data/server.log")"

suite_end
