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

suite_end
