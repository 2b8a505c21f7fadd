#!/usr/bin/env bash
# bench/log_readers.sh [ROWS]: the audit log's readers on a big log, for
# make bench-scale (part 3) or alone against any database with psk
# (PGDATABASE etc. as psql takes them).  With ROWS > 0, first loads ROWS
# audit rows spread over 70 days (200 users, five actions, a million codes)
# into weekly partitions; then times each reader (the best of 3 calls, ms,
# the function as a caller sees it) and prints, as Markdown, one table row
# per reader followed by the plans of the statements each one runs
# (auto_explain at NOTICE: the plans the readers really use).
set -uo pipefail
rows=${1:-0}
[[ $rows =~ ^[0-9]+$ ]] || { echo "ROWS: a number" >&2; exit 1; }
q() { psql -XAtq -v ON_ERROR_STOP=1 "$@"; }

if [ "$rows" -gt 0 ]; then
	start=$(date +%s)
	q -c "INSERT INTO psk.audit_log (logged_at, action, note) VALUES (now() - interval '70 days', 'COMMENTED', 'seed')" \
		-c "SELECT count(*) FROM psk_audit_maintain()" >/dev/null || exit 1
	q -c "INSERT INTO psk.audit_log (logged_at, action, code, code_type, user_id, user_name, contact_email, tester_name)
	      SELECT now() - (g::float8 / $rows) * interval '70 days',
	             (ARRAY['RESERVED','RELEASED','CONFIRMED','EXPIRED','ADDED'])[1 + g % 5],
	             'CODE-' || (g % 1000000), 'OSV', 1 + g % 200, 'user' || (g % 200),
	             'u' || (g % 200) || '@example.com', 't'
	        FROM generate_series(1, $rows) g" -c "VACUUM ANALYZE psk.audit_log" || exit 1
	q -c "SELECT count(*) FROM psk_create_user(NULL, 'Bench', 'admin', 'admin@example.com', 'Rdl@12345', true)" -c "SELECT count(*) FROM psk_create_user('admin@example.com', 'Bench', 'user7', 'u7@example.com', 'Rdl@12345', pool => 'OSV')" >/dev/null 2>&1
	echo "Loaded $rows audit rows in $(($(date +%s) - start)) s." >&2
fi

month_since=$(q -c "SELECT date_trunc('month', now() - interval '35 days')")
month_until=$(q -c "SELECT date_trunc('month', now() - interval '35 days') + interval '1 month'")
uid=$(q -c "SELECT id FROM psk.users WHERE email = 'u7@example.com'")
readers=(
	"psk_log first page|psk_log(1, 20)"
	"psk_log page 100|psk_log(100, 20)"
	"psk_log last allowed page of a month|psk_log(500, 20, since => '$month_since', until => '$month_until')"
	"psk_log a month, first page|psk_log(1, 20, since => '$month_since', until => '$month_until')"
	"psk_log action=RELEASED|psk_log(1, 20, action => 'RELEASED')"
	"psk_log code prefix|psk_log(1, 20, code => 'CODE-12345')"
	"psk_log code suffix|psk_log(1, 20, code => '999999')"
	"psk_log code, a broad prefix|psk_log(1, 20, code => 'CODE-1')"
	"psk_log code, a broad prefix, page 500|psk_log(500, 20, code => 'CODE-1')"
	"psk_log code, a broad suffix|psk_log(1, 20, code => '7')"
	"psk_log code matching nothing|psk_log(1, 20, code => 'NOPE')"
	"psk_log user_name=user7 (21 users)|psk_log(1, 20, user_name => 'user7')"
	"psk_log user_name=user123 (one user)|psk_log(1, 20, user_name => 'user123')"
	"psk_log user_name matching nobody|psk_log(1, 20, user_name => 'nobody')"
	"psk_log user_name and a month|psk_log(1, 20, user_name => 'user7', since => '$month_since', until => '$month_until')"
	"psk_user_log (one of 200 users)|psk_user_log('u7@example.com', 20)"
	"psk_recent_releases|psk_recent_releases(5)"
	"psk_recent_releases code_type|psk_recent_releases(5, 'OSV')"
)
total=$(q -c "SELECT count(*) FROM psk.audit_log")
echo
echo "## Reading a big log: $total audit rows in $(q -c "SELECT count(*) FROM psk.audit_partitions()") weekly partitions, $(q -c "SELECT pg_size_pretty(sum(pg_total_relation_size(part))) FROM psk.audit_partitions()") with indexes"
echo
echo "| reader | best of 3, ms | total_count (estimate?) |"
echo "| --- | ---: | --- |"
plans=""
for r in "${readers[@]}"; do
	name=${r%%|*} call=${r#*|}
	best=
	for _ in 1 2 3; do
		ms=$(q -c "EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF) SELECT * FROM $call" | awk '/Execution Time/ {print $3}')
		best=$(awk -v a="$best" -v b="$ms" 'BEGIN {print (a == "" || b + 0 < a + 0) ? b : a}')
	done
	tc=-
	case $call in psk_log*) tc=$(q -c "SELECT total_count || ' (' || total_is_estimate || ')' FROM $call LIMIT 1") ;; esac
	echo "| $name | $best | $tc |"
	plans+=$'\n'"### $name: \`$call\`"$'\n\n```\n'
	plans+=$(psql -XAtq -c "LOAD 'auto_explain'" -c "SET auto_explain.log_min_duration = 0" \
		-c "SET auto_explain.log_nested_statements = on" -c "SET auto_explain.log_level = notice" \
		-c "SET auto_explain.log_analyze = on" -c "SET auto_explain.log_timing = off" \
		-c "SELECT count(*) FROM $call" 2>&1 >/dev/null | grep -v '^NOTICE:  duration' | sed 's/^NOTICE:  //' | head -60)
	plans+=$'\n```\n'
done
echo
echo "The plans of the statements each reader runs (auto_explain, one call):"
echo "$plans"
