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

# the audit log's partitions: the worker makes this week's and two ahead,
# moves the rows written before them out of the default partition, and
# drops whole weeks past psk.audit_retention (partitions.c)
parts=
for _ in $(seq 50); do
	parts=$(sql "SELECT count(*) || ' ' || (max(upper_bound) = date_trunc('week', now(), 'UTC') + interval '504 hours')
	             FROM psk.audit_partitions()")
	[ "$parts" = "3 true" ] && break
	sleep 0.2
done
check "the worker makes the partitions of this week and two ahead" "3 true" "$parts"
check "the rows written before are moved out of the default partition" "0 true" \
	"$(sql "SELECT (SELECT count(*) FROM psk.audit_log_default) || ' ' ||
	               (SELECT count(*) > 0 FROM psk.audit_log)")"
sql "INSERT INTO psk.audit_log (logged_at, action, code, note)
     VALUES (now() - interval '60 days', 'COMMENTED', 'OLD-W', 'old')" >/dev/null
for _ in $(seq 50); do
	[ "$(sql "SELECT count(*) FROM psk.audit_log_default")" = 0 ] && break
	sleep 0.2
done
check "an old row gets the partition of its week" "1 0" \
	"$(sql "SELECT count(*) || ' ' || (SELECT count(*) FROM psk.audit_log_default) FROM psk.audit_log WHERE code = 'OLD-W'")"
sql "ALTER SYSTEM SET psk.audit_retention = '30d'" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 50); do
	[ "$(sql "SELECT count(*) FROM psk.audit_log WHERE code = 'OLD-W'")" = 0 ] && break
	sleep 0.2
done
check "past psk.audit_retention its partition is dropped, rows and all" "0 0 true" \
	"$(sql "SELECT (SELECT count(*) FROM psk.audit_log WHERE code = 'OLD-W') || ' ' ||
	               (SELECT count(*) FROM psk_log(code => 'OLD-W')) || ' ' ||
	               (SELECT min(lower_bound) = date_trunc('week', now() - interval '30 days', 'UTC') FROM psk.audit_partitions())")"
old_week=$(sql "SELECT to_char(date_trunc('week', now() - interval '60 days', 'UTC'), 'YYYYMMDD')")
check "the log says which partition went" 1 \
	"$(grep -c "psk: audit log partition psk.audit_log_p$old_week dropped" "$work/data/server.log")"
sql "ALTER SYSTEM RESET psk.audit_retention" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
check "no partition upkeep failed" 0 "$(grep -c 'not maintained' "$work/data/server.log")"

# the README's examples of the audit log, run as written
readme_block() { # readme_block MARK: the sql block after <!-- MARK --> in README.md
	awk -v mark="<!-- $1 -->" '$0 == mark {on = 1; next}
		on && /^```sql/ {inblock = 1; next} inblock && /^```/ {exit} inblock {print}' README.md
}
check "README: setting a retention runs as written" 0 \
	"$(readme_block audit-retention | psql -XAtq -v ON_ERROR_STOP=1 >/dev/null 2>"$work/readme.err"; echo $?)"
check "README: the retention is in force" 90d "$(sql "SHOW psk.audit_retention")"
check "README: reading a busy month runs as written" "0 3" \
	"$(readme_block busy-month | psql -XAtq -v ON_ERROR_STOP=1 >/dev/null 2>>"$work/readme.err"; echo $? \
	   "$(readme_block busy-month | grep -c 'FROM psk_log(')")"
sql "ALTER SYSTEM RESET psk.audit_retention" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null

# a database without psk: the worker stays quiet and alive
check "the worker in a database without psk is alive" 1 \
	"$(sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'psk expiry worker' AND datname = 'postgres'")"
check "no worker errors in the log" 0 "$(grep -c 'ERROR' "$work/data/server.log")"

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
