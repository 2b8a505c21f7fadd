#!/usr/bin/env bash
# bench/ab_cycle.sh: the psk cycle (c, bench/psk_cycle.sql) against the
# minimal cycle (m, bench/min_cycle.sql) and against c on the audit log's
# previous index set (c0: a primary key on id on every partition, the time
# and releases indexes descending, no BRIN; psk.codes as it is), in one cluster, one run after the other, rounds
# alternating the order, so that a busy machine weighs on each alike.
# Prints ops/s of every run, the ratios c/m, c0/m and c/c0 of each round
# and their median, and index blocks touched per cycle (pg_statio deltas).
#   PSK_AB_SECONDS  seconds per run (30; at most 60)
#   PSK_AB_CLIENTS  client counts (8 32)
#   PSK_AB_ROUNDS   rounds (3)
#   PSK_BENCH_CODES codes in the pools (100000)
#   PSK_PGROOT      a private PostgreSQL tree (see README.md)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source scripts/lib.sh
source bench/common.sh

seconds=${PSK_AB_SECONDS:-30}
clients=${PSK_AB_CLIENTS:-8 32}
rounds=${PSK_AB_ROUNDS:-3}
codes=${PSK_BENCH_CODES:-100000}
((seconds >= 1 && seconds <= 60)) || die "PSK_AB_SECONDS: 1 to 60"

bench_start
# c0's database: the same codes, the log's partitions with the index set
# before this one
bench_db psk_ab_old "$codes"
psql -qX -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || die "the old index set failed"
SELECT count(*) FROM psk_audit_maintain();
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.oid::regclass AS part, c.relname FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'psk.audit_log'::regclass LOOP
    EXECUTE format('DROP INDEX IF EXISTS psk.%I, psk.%I, psk.%I', r.relname || '_id_brin',
                   r.relname || '_time_idx', r.relname || '_releases_idx');
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I PRIMARY KEY (id)', r.part, r.relname || '_pkey');
    EXECUTE format('CREATE INDEX %I ON %s (logged_at DESC, id DESC)', r.relname || '_time_idx', r.part);
    EXECUTE format('CREATE INDEX %I ON %s (id DESC) WHERE action = ''RELEASED''', r.relname || '_releases_idx', r.part);
  END LOOP;
END $$;
SQL
bench_db psk_ab "$codes"
psql -qX -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM psk_audit_maintain()" -f bench/min_schema.sql >/dev/null ||
	die "bench/min_schema.sql failed"
pg_run_vacuum_more="minimal.codes, minimal.log"
psql -qX -d psk_ab_old -c "CREATE SCHEMA minimal; CREATE TABLE minimal.codes (); CREATE TABLE minimal.log ()" >/dev/null

# per cycle: index blocks read or written, by table (pg_statio deltas),
# and WAL records and bytes (pg_stat_wal deltas: the cluster's, and the
# runs go one at a time)
statio() {
	psql -XAt -d "$1" -c "SELECT pg_stat_force_next_flush()" -c "SELECT coalesce(sum(idx_blks_hit + idx_blks_read) FILTER (WHERE schemaname = 'psk' AND relname = 'codes'), 0),
	                             coalesce(sum(idx_blks_hit + idx_blks_read) FILTER (WHERE schemaname = 'psk' AND relname LIKE 'audit_log%'), 0),
	                             coalesce(sum(idx_blks_hit + idx_blks_read) FILTER (WHERE schemaname = 'minimal'), 0),
	                             (SELECT wal_records FROM pg_stat_wal), (SELECT wal_bytes FROM pg_stat_wal)
	                        FROM pg_statio_user_indexes" | tail -1 | tr '|' ' '
}
declare -A R S
run() { # NAME DB SCRIPT CLIENTS
	local before after n
	before=$(statio "$2")
	R[$1,$4,$round]=$(PGDATABASE=$2 pg_run "$1" "$3" "$4" "$seconds" | awk '{print $1}')
	after=$(statio "$2")
	n=$(awk -v o="${R[$1,$4,$round]}" -v s="$seconds" 'BEGIN {print o * s}')
	S[$1,$4]=$(awk -v b="$before" -v a="$after" -v n="$n" 'BEGIN {split(b, x, " "); split(a, y, " ");
		if (n > 0) printf "%.1f %.1f %.1f %.1f %.0f", (y[1] - x[1]) / n, (y[2] - x[2]) / n, (y[3] - x[3]) / n,
			(y[4] - x[4]) / n, (y[5] - x[5]) / n}')
	echo "   round $round, $4 clients, $1: ${R[$1,$4,$round]} cycles/s" >&2
}
echo "== $(date -u '+%F %T UTC'), git $git_rev$git_dirty, nproc $ncpu, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $codes codes, ${seconds}s per run, clients $clients, $rounds rounds, pgbench -M prepared"
for round in $(seq "$rounds"); do
	for c in $clients; do
		case $((round % 3)) in
		1) order="m c c0" ;;
		2) order="c c0 m" ;;
		0) order="c0 m c" ;;
		esac
		for r in $order; do
			case $r in
			m) PGOPTIONS="-c search_path=minimal" run m psk_ab bench/min_cycle.sql "$c" ;;
			c) run c psk_ab bench/psk_cycle.sql "$c" ;;
			c0) run c0 psk_ab_old bench/psk_cycle.sql "$c" ;;
			esac
		done
	done
done
ratio() { awk -v x="$1" -v y="$2" 'BEGIN {if (y > 0) printf "%.3f", x / y; else print "-"}'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo
echo "| clients | round | m | c | c0 | c/m | c0/m | c/c0 |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for c in $clients; do
	cm="" c0m="" cc0=""
	for round in $(seq "$rounds"); do
		m=${R[m,$c,$round]} cc=${R[c,$c,$round]} c0=${R[c0,$c,$round]}
		cm+=" $(ratio "$cc" "$m")" c0m+=" $(ratio "$c0" "$m")" cc0+=" $(ratio "$cc" "$c0")"
		echo "| $c | $round | $m | $cc | $c0 | $(ratio "$cc" "$m") | $(ratio "$c0" "$m") | $(ratio "$cc" "$c0") |"
	done
	echo "| $c | median | | | | $(echo "$cm" | median) | $(echo "$c0m" | median) | $(echo "$cc0" | median) |"
done
echo
echo "Per cycle, last round: index blocks touched (pg_statio_user_indexes, hit + read)"
echo "by table, WAL records and WAL bytes (pg_stat_wal; the VACUUM before a run is"
echo "not in it):"
echo
echo "| clients | run | idx blocks psk.codes | idx blocks psk.audit_log | idx blocks minimal | WAL records | WAL bytes |"
echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"
for c in $clients; do
	for r in m c c0; do
		set -- ${S[$r,$c]:-- - - - -}
		echo "| $c | $r | $1 | $2 | $3 | $4 | $5 |"
	done
done
