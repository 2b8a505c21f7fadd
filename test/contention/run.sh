#!/usr/bin/env bash
# Contention: 32 clients reserve and release as fast as they can, all in one
# pool (OSV) with plenty of free codes and no COMMON codes to fall back on.
# A reserve may never come back empty-handed (PK001) while the pool has free
# codes, and every cycle leaves its two audit rows.  (An earlier reserve in
# one statement lost about 3% of reservations this way under load.)
# Own throwaway cluster; prints "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

clients=${PSK_CONTENTION_CLIENTS:-32}
seconds=${PSK_CONTENTION_SECONDS:-8}
source test/suite.sh
suite_cluster contention
export PGDATABASE=postgres

cluster_init "$work/data" || exit 1
cluster_start "$work/data" "$port" -c max_connections=100 -c shared_preload_libraries=psk || exit 1
psql -XAtq -v ON_ERROR_STOP=1 -c "CREATE EXTENSION psk CASCADE" -f test/fixtures/tap.sql >/dev/null 2>&1 ||
	{ echo "setup failed"; exit 1; }
sql "SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV',
        ARRAY(SELECT 'K-' || g FROM generate_series(1, 500) g))" >/dev/null

cat >"$work/cycle.sql" <<'SQL'
SELECT code FROM psk_reserve('osv@example.com', 'contention') \gset
SELECT FROM psk_release('osv@example.com', :code);
SQL
"$PGBIN/pgbench" -n -M prepared -c "$clients" -j 2 -T "$seconds" -f "$work/cycle.sql" \
	>"$work/pgbench.out" 2>&1
cycles=$(awk '/number of transactions actually processed/ {print $NF}' "$work/pgbench.out")
echo "# $clients clients, ${seconds}s: ${cycles:-0} reserve+release cycles"

check "no reserve came back empty while the pool had codes" 0 \
	"$(grep -c 'no codes available' "$work/pgbench.out")"
check "no client aborted" 0 "$(grep -c 'aborted' "$work/pgbench.out")"
check "cycles ran" yes "$([ "${cycles:-0}" -gt 1000 ] && echo yes || echo "only ${cycles:-0}")"
check "every code is free again" "CAN_BE_USED 500" \
	"$(sql "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM psk.codes GROUP BY 1) s")"
check "one RESERVED and one RELEASED row per cycle" "$cycles $cycles" \
	"$(sql "SELECT count(*) FILTER (WHERE action = 'RESERVED') || ' ' || count(*) FILTER (WHERE action = 'RELEASED') FROM psk.audit_log")"
check "nothing came from another pool" OSV \
	"$(sql "SELECT string_agg(DISTINCT code_type, ',') FROM psk.audit_log WHERE action = 'RESERVED'")"

# Issue 18: reserve order while a snapshot is held (order.sql says how; in
# pool HSV, which holds only its own codes).
steps=${PSK_ORDER_STEPS:-600}
psql -XAtq -v ON_ERROR_STOP=1 -v steps="$steps" -f test/contention/order.sql >"$work/order.out" 2>&1 ||
	{ echo "# order.sql failed:"; sed 's/^/#   /' "$work/order.out" | tail -20; }
echo "# order: $(sql "SELECT count(*) FROM public.order_check") reserves in $steps steps, $(sql "SELECT count(DISTINCT id) FROM public.order_hint") hint positions"
check "with a snapshot held, every reserve took the least recently used free code" "" \
	"$(sql "SELECT string_agg(step || ': ' || coalesce(got, '-') || ' not ' || coalesce(want, '-'), ', ' ORDER BY step)
	          FROM (SELECT * FROM public.order_check WHERE got IS DISTINCT FROM want LIMIT 5) m")"
check "the order test reserved codes" yes \
	"$(sql "SELECT CASE WHEN count(got) > $steps / 4 THEN 'yes' ELSE count(got)::text END FROM public.order_check")"
check "the hint moved on (the scan did not start at the pool's head)" yes \
	"$(sql "SELECT CASE WHEN count(DISTINCT id) > 10 THEN 'yes' ELSE count(DISTINCT id)::text END FROM public.order_hint")"
check "every kind of change ran" "ADDED DISASSOCIATED EXPIRED MARKED_NON_USABLE RELEASED RESERVED RESTORED" \
	"$(sql "SELECT string_agg(DISTINCT action, ' ' ORDER BY action) FROM psk.audit_log WHERE action <> 'USER_CREATED'")"

# Issue 18 again, concurrently: 32 clients cycle with a snapshot held while
# new codes (which sort first) are added; no code may go to two holders.
sql "SELECT count(*) FROM psk.codes c, psk_release(CASE c.pool WHEN 'HSV' THEN 'hsv@example.com' ELSE 'osv@example.com' END, c.code) r
      WHERE c.status = 'RESERVED'" >/dev/null
sql "SELECT count(*) FROM psk.codes c, psk_restore('admin@example.com', c.code) r WHERE c.status = 'NON_USABLE'" >/dev/null
before=$(sql "SELECT max(id) FROM psk.audit_log")
PGAPPNAME=psk_held psql -XAtq -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT count(*) FROM psk.users" \
	-c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
held=$!
(for i in $(seq 1 $((seconds * 5))); do
	sql "SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['H-$i-1', 'H-$i-2'])" >/dev/null
	sleep 0.2
done) &
adder=$!
sleep 0.5
"$PGBIN/pgbench" -n -M prepared -c "$clients" -j 2 -T "$seconds" -f "$work/cycle.sql" \
	>"$work/pgbench-held.out" 2>&1
wait "$adder"
cycles=$(awk '/number of transactions actually processed/ {print $NF}' "$work/pgbench-held.out")
echo "# with a snapshot held: $clients clients, ${seconds}s: ${cycles:-0} cycles"
check "the snapshot was held throughout" 1 \
	"$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'psk_held' AND backend_xmin IS NOT NULL")"
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'psk_held'" >/dev/null
wait "$held" 2>/dev/null
check "held: no reserve came back empty, no client aborted" "0 0" \
	"$(grep -c 'no codes available' "$work/pgbench-held.out") $(grep -c 'aborted' "$work/pgbench-held.out")"
check "held: cycles ran" yes "$([ "${cycles:-0}" -gt 1000 ] && echo yes || echo "only ${cycles:-0}")"
check "held: no code was reserved twice without a release between" 0 \
	"$(sql "SELECT count(*) FROM (SELECT action, lag(action) OVER (PARTITION BY code ORDER BY id) AS prev
	          FROM psk.audit_log WHERE id > $before AND action IN ('RESERVED', 'RELEASED')) s
	         WHERE action = prev")"
check "held: one RESERVED and one RELEASED row per cycle" "$cycles $cycles" \
	"$(sql "SELECT count(*) FILTER (WHERE action = 'RESERVED') || ' ' || count(*) FILTER (WHERE action = 'RELEASED') FROM psk.audit_log WHERE id > $before")"
check "held: every code is free again" "CAN_BE_USED" \
	"$(sql "SELECT string_agg(DISTINCT status, ',') FROM psk.codes")"
check "held: the codes added meanwhile were reserved too (they sort first)" yes \
	"$(sql "SELECT CASE WHEN count(*) FILTER (WHERE c.freed_at IS NULL) = 0 THEN 'yes' ELSE count(*) FILTER (WHERE c.freed_at IS NULL) || ' never reserved' END
	          FROM psk.codes c WHERE c.code LIKE 'H-%' AND c.id < (SELECT max(id) - 2 * $clients FROM psk.codes)")"

# Users deleted while they reserve (churn.sql): 16 clients reserve and
# release for 40 users while 2 more delete those users and put them back.
# holder_id has no foreign key (extension/holders.c): no code may be left
# with a holder that is gone, and a holder is never deleted.
psql -XAtq -f test/contention/churn.sql >"$work/churn.out" 2>&1 ||
	{ echo "# churn.sql failed:"; sed 's/^/#   /' "$work/churn.out" | tail -20; }
printf '\\set n random(1, 40)\nSELECT test_churn_hold(:n);\n' >"$work/churn-hold.sql"
printf '\\set n random(1, 40)\nSELECT test_churn_delete(:n);\n' >"$work/churn-delete.sql"
"$PGBIN/pgbench" -n -c 2 -j 1 -T "$seconds" -f "$work/churn-delete.sql" >"$work/churn-delete.out" 2>&1 &
deleter=$!
"$PGBIN/pgbench" -n -c 16 -j 2 -T "$seconds" -f "$work/churn-hold.sql" >"$work/churn-hold.out" 2>&1
wait "$deleter"
echo "# churn: $(sql "SELECT string_agg(what || ' ' || n, ', ' ORDER BY what) FROM (SELECT what, count(*) n FROM churn_outcome GROUP BY 1) s")"
check "churn: no client aborted" "0 0" \
	"$(grep -c 'aborted' "$work/churn-hold.out") $(grep -c 'aborted' "$work/churn-delete.out")"
check "churn: no code is held by a user who is gone" 0 \
	"$(sql "SELECT count(*) FROM psk.codes c WHERE c.holder_id IS NOT NULL
	          AND NOT EXISTS (SELECT FROM psk.users u WHERE u.id = c.holder_id)")"
check "churn: users were deleted, and holders refused (PK009 or 23503)" "yes yes" \
	"$(sql "SELECT CASE WHEN count(*) FILTER (WHERE what = 'deleted') > 10 THEN 'yes' ELSE count(*) FILTER (WHERE what = 'deleted') || ' deleted' END
	          || ' ' || CASE WHEN count(*) FILTER (WHERE what IN ('delete PK009', 'delete 23503')) > 10 THEN 'yes'
	                         ELSE count(*) FILTER (WHERE what IN ('delete PK009', 'delete 23503')) || ' refused' END
	          FROM churn_outcome")"
check "churn: codes were reserved and released meanwhile" yes \
	"$(sql "SELECT CASE WHEN count(*) FILTER (WHERE what = 'reserved') > 200 AND count(*) FILTER (WHERE what = 'released') > 200 THEN 'yes'
	               ELSE count(*) FILTER (WHERE what = 'reserved') || ' reserved, ' || count(*) FILTER (WHERE what = 'released') || ' released' END
	          FROM churn_outcome")"
check "churn: every RESERVED row of a code still held is its holder's" 0 \
	"$(sql "SELECT count(*) FROM psk.codes c
	          LEFT JOIN (SELECT DISTINCT ON (a.code) a.code, a.user_id FROM psk.audit_log a
	                      WHERE a.action = 'RESERVED' ORDER BY a.code, a.id DESC) r ON r.code = c.code
	         WHERE c.status = 'RESERVED' AND r.user_id IS DISTINCT FROM c.holder_id")"

suite_end
