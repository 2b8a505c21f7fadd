#!/usr/bin/env bash
# The expiry background worker: with psk in shared_preload_libraries it
# returns overdue holds (reservations, codes in use) to their pool every
# psk.expiry_interval in each database of psk.database, and forgets the
# request_ids of reserves older than 24 hours.  Then the edges of issue 13:
# a hot standby of it (pg_basebackup -R), where every change is refused
# with 25006 before anything changes and no worker runs until it is
# promoted; a READ ONLY transaction on the primary; a database dropped
# under its worker.  Own throwaway clusters; prints "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
# every shim started here takes a free admin port, never 8001
export PSK_ADMIN_LISTEN=127.0.0.1:0

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
	-c psk.database=psk_worker,postgres -c psk.expiry_interval=1 -c autovacuum_naptime=1 || exit 1

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
# the old row's week is over: the worker freezes its partition once
# (freeze.c: VACUUM (FREEZE), then autovacuum_freeze_min_age = 0 as the
# record), and leaves this week's and those ahead alone
old_part=psk.audit_log_p$(sql "SELECT to_char(date_trunc('week', now() - interval '60 days', 'UTC'), 'YYYYMMDD')")
for _ in $(seq 50); do
	grep -q "psk: audit log partition $old_part frozen" "$work/data/server.log" && break
	sleep 0.2
done
sql "CREATE EXTENSION IF NOT EXISTS pg_visibility" >/dev/null
check "freeze: every page of the closed partition all-frozen, its relfrozenxid past its row's xmin, recorded" \
	"1 1 true {autovacuum_freeze_min_age=0,autovacuum_freeze_table_age=0}" \
	"$(sql "SELECT s.all_frozen || ' ' || c.relpages || ' ' ||
	               (age(c.relfrozenxid) < (SELECT age(xmin) FROM psk.audit_log WHERE code = 'OLD-W')) || ' ' ||
	               c.reloptions::text
	          FROM pg_class c, pg_visibility_map_summary(c.oid) s WHERE c.oid = '$old_part'::regclass")"
for _ in $(seq 50); do # the other closed weeks (tap.sql's rows), one a round
	[ "$(sql "SELECT count(*) FROM psk.audit_partitions_to_freeze()")" = 0 ] && break
	sleep 0.2
done
check "freeze: this week's partition and those ahead freeze as they fill, not recorded as frozen; none left to freeze" "3 3 0 0" \
	"$(sql "SELECT count(*) || ' ' ||
	               count(*) FILTER (WHERE 'autovacuum_freeze_min_age=0' = ANY (c.reloptions)) || ' ' ||
	               count(*) FILTER (WHERE 'autovacuum_freeze_table_age=0' = ANY (c.reloptions)) || ' ' ||
	               (SELECT count(*) FROM psk.audit_partitions_to_freeze())
	          FROM psk.audit_partitions() p JOIN pg_class c ON c.oid = p.part WHERE p.upper_bound > now()")"
sleep 3 # three more rounds of the worker
check "freeze: done once (one log line, one vacuum of it in three rounds)" "1 1" \
	"$(grep -c "psk: audit log partition $old_part frozen" "$work/data/server.log") $(sql "SELECT vacuum_count FROM pg_stat_all_tables WHERE relid = '$old_part'::regclass")"
# the default partition (kept empty by the upkeep, so no autovacuum visits
# it): frozen whenever it is the table that holds age(datfrozenxid) back.
# Every other table frozen now, so that it is the oldest.
default_age=$(sql "SELECT age(relfrozenxid) FROM pg_class WHERE oid = 'psk.audit_log_default'::regclass")
sql "$(sql "SELECT 'VACUUM (FREEZE) ' || string_agg(oid::regclass::text, ', ') FROM pg_class
            WHERE relkind IN ('r', 'm') AND oid <> 'psk.audit_log_default'::regclass")" >/dev/null
for _ in $(seq 50); do
	grep -q "psk: audit log partition psk.audit_log_default frozen" "$work/data/server.log" && break
	sleep 0.2
done
check "freeze: the default partition, once the oldest table, is frozen: its relfrozenxid moves up, no longer the oldest" \
	"1 true 0" \
	"$(grep -c "psk: audit log partition psk.audit_log_default frozen" "$work/data/server.log") $(sql "SELECT
	        (SELECT age(relfrozenxid) < $default_age FROM pg_class WHERE oid = 'psk.audit_log_default'::regclass) || ' ' ||
	        (SELECT count(*) FROM psk.audit_default_to_freeze())")"
check "freeze: psk.audit_partition_frozen takes only partitions of the log" PK001 \
	"$(PGOPTIONS='-c log_min_messages=fatal' psql -XAtq -v VERBOSITY=sqlstate -c "SELECT psk.audit_partition_frozen('psk.codes')" 2>&1 | grep -o 'PK[0-9]*')"
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
check "no partition upkeep or freeze failed" 0 "$(grep -c 'not maintained\|not frozen' "$work/data/server.log")"

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
rc=$(readme_block retention-day | psql -XAtq -v ON_ERROR_STOP=1 >"$work/readme.out" 2>>"$work/readme.err"; echo $?)
check "README: an operator's day with retention runs as written, each closed week shown frozen" \
	"0 $(sql "SELECT count(*) || ' ' || count(*) FILTER (WHERE upper_bound < now()) FROM psk.audit_partitions()")" \
	"$rc $(grep -c '^psk\.audit_log_p[0-9]*|.*|[tf]$' "$work/readme.out") $(grep -c '^psk\.audit_log_p[0-9]*|.*|t$' "$work/readme.out")"
sql "ALTER SYSTEM RESET psk.audit_retention" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null

# psk.audit_partition_width (tests and the soak of make bench-scale):
# minute-wide partitions in a database of their own without a worker
# (psk_audit_maintain() as a scheduler calls it), retention at work within
# minutes; a width that does not divide a week is refused
psql -XAtq -d postgres -c "CREATE DATABASE psk_width" || exit 1
PGDATABASE=psk_width psql -XAtq -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" \
	-c "CREATE EXTENSION psk CASCADE" >/dev/null 2>&1 || exit 1
wsql() { PGDATABASE=psk_width PGOPTIONS="-c psk.audit_partition_width=60 $1" sql "$2"; }
made=$(wsql "" "SELECT count(*) FROM psk_audit_maintain() WHERE action = 'created'")
check "width: three partitions of a minute each from this minute on, named to the second" "3 3 true true" \
	"$made $(wsql "" "SELECT count(*) || ' ' || bool_and(upper_bound - lower_bound = interval '1 minute') || ' ' ||
	                         (min(lower_bound) = date_trunc('minute', now())
	                          AND bool_and(part::text ~ '^psk.audit_log_p[0-9]{8}_[0-9]{6}$'))
	                    FROM psk.audit_partitions()")"
wsql "" "INSERT INTO psk.audit_log (logged_at, action, code, note)
         VALUES (now() - interval '150 s', 'COMMENTED', 'WIDTH-OLD', 'old')" >/dev/null
moved=$(wsql "" "SELECT string_agg(action || ' ' || n, ',') FROM psk_audit_maintain() WHERE action = 'moved'")
check "width: an older row gets a partition of its minute" "moved 1 t" \
	"$moved $(wsql "" "SELECT upper_bound - lower_bound = interval '1 minute' FROM psk.audit_partitions() p
	                    WHERE p.lower_bound <= now() - interval '150 s' AND p.upper_bound > now() - interval '150 s'")"
dropped=$(wsql "-c psk.audit_retention=60" "SELECT string_agg(DISTINCT action, ',') FROM psk_audit_maintain() WHERE action = 'dropped'")
check "width: past a retention of a minute its partition is dropped, its row gone" "dropped 0" \
	"$dropped $(wsql "" "SELECT count(*) FROM psk.audit_log WHERE code = 'WIDTH-OLD'")"
check "width: one that does not divide a week is refused" 22023 \
	"$(PGDATABASE=psk_width PGOPTIONS='-c log_min_messages=fatal' psql -XAtq -v VERBOSITY=sqlstate -c "SET psk.audit_partition_width = '11min'" 2>&1 | grep -o '[0-9A-Z]\{5\}$')"

# a database without psk: the worker stays quiet and alive
check "the worker in a database without psk is alive" 1 \
	"$(sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'psk expiry worker' AND datname = 'postgres'")"
check "no worker errors in the log" 0 "$(grep -c 'ERROR' "$work/data/server.log")"

# a large overdue set: swept completely, in batches of psk.expiry_batch,
# each a transaction of its own (its EXPIRED rows share an xmin), every
# code with its EXPIRED row
sql "ALTER SYSTEM SET psk.expiry_batch = 100" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
sql "SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV',
     ARRAY(SELECT 'WB' || i FROM generate_series(1, 1000) i))" >/dev/null
sql "SET psk.reservation_ttl = '3s';
     SELECT count(*) FROM generate_series(1, 10) g, psk_reserve('osv@example.com', 'batch' || g, code_type => 'OSV', how_many => 100)" >/dev/null
check "1000 reserved" 1000 "$(sql "SELECT count(*) FROM psk.codes WHERE code LIKE 'WB%' AND status = 'RESERVED'")"
held=
for _ in $(seq 100); do
	held=$(sql "SELECT count(*) FROM psk.codes WHERE code LIKE 'WB%' AND status <> 'CAN_BE_USED'")
	[ "$held" = 0 ] && break
	sleep 0.2
done
check "1000 overdue reservations are all swept" 0 "$held"
check "every one has its EXPIRED row" 1000 \
	"$(sql "SELECT count(DISTINCT code) FROM psk.audit_log WHERE action = 'EXPIRED' AND code LIKE 'WB%'")"
check "no EXPIRED row twice" 1000 \
	"$(sql "SELECT count(*) FROM psk.audit_log WHERE action = 'EXPIRED' AND code LIKE 'WB%'")"
check "at most psk.expiry_batch holds per transaction" t \
	"$(sql "SELECT max(n) <= 100 FROM (SELECT count(*) n FROM psk.audit_log WHERE action = 'EXPIRED' AND code LIKE 'WB%' GROUP BY xmin::text) s")"
check "so at least ten transactions" t \
	"$(sql "SELECT count(DISTINCT xmin::text) >= 10 FROM psk.audit_log WHERE action = 'EXPIRED' AND code LIKE 'WB%'")"
check "no worker errors in the log after the batches" 0 "$(grep -c 'ERROR' "$work/data/server.log")"

# psk.codes' autovacuum freezes as it goes (autovacuum_freeze_min_age = 0,
# 00_schema.sql): after 6,000 dead rows, its relfrozenxid passes an xid
# taken before them (with the default 50M, the codes added earlier would
# hold it back)
mark=$(sql "SELECT txid_current()")
runs=$(sql "SELECT autovacuum_count FROM pg_stat_user_tables WHERE relid = 'psk.codes'::regclass")
for _ in 1 2 3 4 5 6; do
	sql "UPDATE psk.codes SET freed_at = coalesce(freed_at, now()) + interval '1 ms' WHERE code LIKE 'WB%'" >/dev/null
done
frozen=
for _ in $(seq 100); do
	frozen=$(sql "SELECT (autovacuum_count > $runs) || ' ' || (age(c.relfrozenxid) < age('$mark'::text::xid))
	              FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE s.relid = 'psk.codes'::regclass")
	[ "$frozen" = "true true" ] && break
	sleep 0.2
done
check "autovacuum of psk.codes moves its relfrozenxid past the rows it saw" "true true" "$frozen"

# this week's partition freezes as it fills (autovacuum_freeze_min_age = 0,
# set by the worker): after 3,000 rows, its insert-triggered autovacuum
# moves its relfrozenxid past an xid taken before them (with the default,
# its earlier rows would hold it back)
week_part=$(sql "SELECT part FROM psk.audit_partitions() WHERE lower_bound <= now() AND upper_bound > now()")
mark=$(sql "SELECT txid_current()")
runs=$(sql "SELECT autovacuum_count FROM pg_stat_all_tables WHERE relid = '$week_part'::regclass")
sql "INSERT INTO psk.audit_log (action, code, note) SELECT 'COMMENTED', 'FILL-' || g, 'fill' FROM generate_series(1, 3000) g" >/dev/null
frozen=
for _ in $(seq 100); do
	frozen=$(sql "SELECT (autovacuum_count > $runs) || ' ' || (age(c.relfrozenxid) < age('$mark'::text::xid))
	              FROM pg_stat_all_tables s JOIN pg_class c ON c.oid = s.relid WHERE s.relid = '$week_part'::regclass")
	[ "$frozen" = "true true" ] && break
	sleep 0.2
done
check "autovacuum of this week's audit partition moves its relfrozenxid past the rows it saw" "true true" "$frozen"

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
check "metrics: the folded totals count every expiry (2, then 1000 in batches)" 1002 \
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

# --- a hot standby (issue 13, finding 6) -------------------------------------
# A database with an overdue reservation (not swept here: not in
# psk.database), a held code, a session, and psk_shim; then a standby of it
# (pg_basebackup -R) with its own expiry worker for it.
standby=$work/standby
sport=$(free_port)
shim_pid=
trap '[ -n "$shim_pid" ] && kill "$shim_pid" 2>/dev/null; cluster_stop "$standby" immediate; cluster_stop "$work/data" immediate; rm -rf "$work"' EXIT
psql -XAtq -d postgres -c "CREATE DATABASE psk_sb" || exit 1
sb() { PGDATABASE=psk_sb sql "$1"; }
PGDATABASE=psk_sb psql -XAtq -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "CREATE EXTENSION psk CASCADE" \
	-f test/fixtures/tap.sql -f scripts/shim-role.sql >/dev/null 2>&1 || exit 1
sb "SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['S1', 'S2', 'S3', 'S4'])" >/dev/null
lapsing=$(sb "SET psk.reservation_ttl = '1s'; SELECT code FROM psk_reserve('osv@example.com', 'lapsing')")
held=$(sb "SELECT code || ' ' || reservation_token FROM psk_reserve('osv@example.com', 'held')")
sb_token=$(sb "SELECT access_token FROM psk_login('osv@example.com', 'Rdl@12345')")
mkdir -p "$standby" && chmod 700 "$standby"
[ "$(id -u)" = 0 ] && chown postgres: "$standby"
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$port" -U postgres -D "$standby" -R -X stream -c fast \
	>"$work/basebackup.log" 2>&1 || { cat "$work/basebackup.log"; exit 1; }
cluster_start "$standby" "$sport" -c shared_preload_libraries=psk -c psk.database=psk_sb \
	-c psk.expiry_interval=1 || exit 1
ssql() { PGPORT=$sport PGDATABASE=psk_sb sql "$1"; }
for _ in $(seq 50); do
	[ "$(ssql "SELECT count(*) FROM psk.codes WHERE code = 'S4'" 2>/dev/null)" = 1 ] && break
	sleep 0.2
done
check "standby: in recovery, with the data" "true 4" "$(ssql "SELECT pg_is_in_recovery() || ' ' || count(*) FROM psk.codes")"
sleep 1.5
check "standby: no expiry worker while in recovery, the lapsed reservation stays" "0 RESERVED" \
	"$(ssql "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'psk%') || ' ' ||
	                (SELECT status FROM psk.codes WHERE code = '$lapsing')")"

# Every function that changes state: 25006, PostgreSQL's read-only error, at
# once (statement_timeout 3s would say 57014), and nothing changed.
fp="SELECT md5(string_agg(t, '|' ORDER BY t)) FROM (
      SELECT 'c' || c::text t FROM psk.codes c UNION ALL SELECT 'u' || u::text FROM psk.users u
      UNION ALL SELECT 's' || s::text FROM psk.sessions s UNION ALL SELECT 'f' || f::text FROM psk.login_failures f
      UNION ALL SELECT 'a' || count(*) FROM psk.audit_log UNION ALL SELECT 'r' || r::text FROM psk.regions r
      UNION ALL SELECT 'n' || n::text FROM psk.countries n) x"
before=$(ssql "$fp")
read -r hcode htoken <<<"$held"
states=
while IFS='|' read -r name call; do
	got=$(PGPORT=$sport PGDATABASE=psk_sb PGOPTIONS="-c statement_timeout=3s" \
		psql -XAtq -v VERBOSITY=sqlstate -c "$call" 2>&1 | grep -o 'ERROR: *[0-9A-Z]*' | awk '{print $2}')
	states="$states $name=${got:-none}"
done <<EOF2
reserve|SELECT * FROM psk_reserve('osv@example.com', 'x')
reserve_many|SELECT * FROM psk_reserve('osv@example.com', 'x', how_many => 2)
reserve_rid|SELECT * FROM psk_reserve('osv@example.com', 'x', request_id => 'r1')
renew|SELECT * FROM psk_renew('osv@example.com', '$hcode', '$htoken')
confirm|SELECT * FROM psk_confirm('osv@example.com', '$hcode', '$htoken')
release|SELECT * FROM psk_release('osv@example.com', '$hcode')
mark_non_usable|SELECT * FROM psk_mark_non_usable('osv@example.com', '$hcode', 'r')
comment|SELECT * FROM psk_comment('osv@example.com', '$hcode', 'c')
disassociate|SELECT * FROM psk_disassociate('admin@example.com', '$hcode')
restore|SELECT * FROM psk_restore('admin@example.com', 'S4')
delete_code|SELECT * FROM psk_delete_code('admin@example.com', 'S4')
add_codes|SELECT * FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['S9'])
expire|SELECT * FROM psk_expire_reservations()
add_region|SELECT * FROM psk_add_region('admin@example.com', 'Mars')
add_country|SELECT * FROM psk_add_country('admin@example.com', 'FR', 'Europe')
create_user|SELECT * FROM psk_create_user('admin@example.com', 'T', 'n', 'n@example.com', 'Pass-word-1')
update_user|SELECT * FROM psk_update_user('admin@example.com', 2, user_name => 'x')
delete_user|SELECT * FROM psk_delete_user('admin@example.com', 3)
login|SELECT * FROM psk_login('osv@example.com', 'Rdl@12345')
login_wrong|SELECT * FROM psk_login('osv@example.com', 'wrong')
logout|SELECT * FROM psk_logout('$sb_token')
http_reserve|SELECT psk.http_reserve('$sb_token', '{"tester_name": "x"}', '{}')
http_login|SELECT psk.http_login(NULL, '{"username": "osv@example.com", "password": "x"}', '{}')
EOF2
check "standby: every change refused with 25006" \
	" reserve=25006 reserve_many=25006 reserve_rid=25006 renew=25006 confirm=25006 release=25006 mark_non_usable=25006 comment=25006 disassociate=25006 restore=25006 delete_code=25006 add_codes=25006 expire=25006 add_region=25006 add_country=25006 create_user=25006 update_user=25006 delete_user=25006 login=25006 login_wrong=25006 logout=25006 http_reserve=25006 http_login=25006" \
	"$states"
check "standby: nothing changed" "$before" "$(ssql "$fp")"
# ten more logins: each refused at once, no worker asked for (it used to hang
# until the statement timeout and leak a worker registration each time)
logins=
for _ in $(seq 10); do
	logins="$logins$(PGPORT=$sport PGDATABASE=psk_sb PGOPTIONS="-c statement_timeout=3s" \
		psql -XAtq -v VERBOSITY=sqlstate -c "SELECT * FROM psk_login('osv@example.com', 'wrong')" 2>&1 |
		grep -o 'ERROR: *[0-9A-Z]*' | awk '{print $2}') "
done
check "standby: ten more logins, each 25006" "$(printf '25006 %.0s' $(seq 10))" "$logins"
check "standby: no psk worker started" 0 "$(ssql "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'psk%'")"
check "standby: reads work (the session, the holder's codes)" "osv@example.com 2" \
	"$(ssql "SELECT contact_email || ' ' || (SELECT count(*) FROM psk_my_codes('osv@example.com')) FROM psk_session_user('$sb_token')")"

# The shim on the standby: reads 200, changes 503 unavailable.
hport=$(free_port)
shim/psk-shim --listen "127.0.0.1:$hport" --db "host=127.0.0.1 port=$sport dbname=psk_sb user=psk_shim" \
	--threads 1 --pool 1 >"$work/shim.log" 2>&1 &
shim_pid=$!
for _ in $(seq 50); do
	curl -sf "http://127.0.0.1:$hport/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
http() { # METHOD PATH BODY: "STATUS KIND"
	curl -s -o "$work/reply" -w '%{http_code}' -X "$1" "http://127.0.0.1:$hport$2" \
		-H "Authorization: Bearer $sb_token" -H 'Content-Type: application/json' ${3:+-d "$3"}
	python3 -c 'import json, sys; b = json.load(open(sys.argv[1])); print("", b.get("error", "-") if isinstance(b, dict) else "-")' "$work/reply"
}
check "standby over HTTP: GET /auth/me 200" "200 -" "$(http GET /auth/me)"
check "standby over HTTP: POST /users/reserve 503" "503 unavailable" "$(http POST /users/reserve '{"tester_name": "x"}')"
check "standby over HTTP: POST /auth/login 503" "503 unavailable" \
	"$(http POST /auth/login '{"username": "osv@example.com", "password": "Rdl@12345"}')"
kill "$shim_pid" && wait "$shim_pid" 2>/dev/null
shim_pid=

# Promoted: the expiry worker starts without a restart and sweeps; logins
# work (the guard starts).
ssql "SELECT pg_promote()" >/dev/null
status=
for _ in $(seq 50); do
	status=$(ssql "SELECT status FROM psk.codes WHERE code = '$lapsing'" 2>/dev/null)
	[ "$status" = CAN_BE_USED ] && break
	sleep 0.2
done
check "promoted: the expiry worker sweeps the lapsed reservation" "CAN_BE_USED 1" \
	"$status $(ssql "SELECT count(*) FROM psk.audit_log WHERE action = 'EXPIRED'")"
check "promoted: a login works" bearer "$(ssql "SELECT token_type FROM psk_login('osv@example.com', 'Rdl@12345')")"
cluster_stop "$standby"

# A READ ONLY transaction on the primary: 25006 before any change (the
# transaction's own statistics count every row written, even rolled back;
# the audit id sequence does not move).
ro=$(PGDATABASE=psk_sb psql -XAtq -v VERBOSITY=sqlstate 2>&1 <<'EOF2'
SELECT last_value AS seq FROM psk.audit_log_id_seq \gset
BEGIN READ ONLY;
SAVEPOINT s;
SELECT * FROM psk_reserve('hsv@example.com', 'ro');
ROLLBACK TO s;
SELECT * FROM psk_release('osv@example.com', 'S2');
ROLLBACK TO s;
SELECT 'written ' || coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_xact_user_tables
 WHERE schemaname = 'psk';
ROLLBACK;
SELECT 'sequence moved ' || (last_value <> :seq) FROM psk.audit_log_id_seq;
EOF2
)
check "READ ONLY on the primary: 25006 before any change" "ERROR: 25006 ERROR: 25006 written 0 sequence moved false" \
	"$(echo $ro)"

# --- a database dropped under its worker ---------------------------------
# DROP DATABASE ... WITH (FORCE) ends the worker; started again it finds no
# database, says so once and stops (it used to fail every 10 s for ever).
psql -XAtq -d postgres -c "DROP DATABASE psk_worker WITH (FORCE)" || exit 1
for _ in $(seq 150); do
	grep -q 'database "psk_worker" does not exist' "$work/data/server.log" && break
	sleep 0.1
done
sleep 11
check "dropped database: said once, with what the worker does" "1 1" \
	"$(grep -c 'database "psk_worker" does not exist' "$work/data/server.log") $(grep -c 'The psk expiry worker for it stops trying until the server restarts' "$work/data/server.log")"
check "dropped database: its worker gone, the other one running" "postgres" \
	"$(PGDATABASE=postgres sql "SELECT string_agg(datname, ',') FROM pg_stat_activity WHERE backend_type = 'psk expiry worker'")"

# psk.database unset: no worker at all (not one in postgres, as before),
# and the log says so once
cluster_stop "$work/data"
: >"$work/data/server.log"
cluster_start "$work/data" "$port" -c shared_preload_libraries=psk || exit 1
sleep 1
check "psk.database unset: no expiry worker" 0 \
	"$(PGDATABASE=postgres sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'psk expiry worker'")"
check "psk.database unset: said once in the log" 1 \
	"$(grep -c 'psk.database is not set, so no expiry worker runs' "$work/data/server.log")"

suite_end
