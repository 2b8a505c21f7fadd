#!/usr/bin/env bash
# bench/cpu_cycle.sh: backend CPU time per cycle of the psk cycle (c:
# psk_reserve + psk_release) and of the minimal cycle (m: the steps of
# bench/min_cycle.sql on bench/min_schema.sql's tables), each run by one
# backend in a procedure that commits after every call, as pgbench's
# autocommit does.  CPU time (user + system of the backend, from
# /proc/PID/stat) hardly depends on what else the machine runs, so this
# compares two builds, or c and m, on a busy machine where cycles/s cannot;
# it leaves out what a client and the protocol cost.
#   PSK_CPU_CYCLES  cycles per run (20000)
#   PSK_CPU_ROUNDS  rounds, alternating c and m (3)
#   PSK_PGROOT      a private PostgreSQL tree (see README.md)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source scripts/lib.sh
source bench/common.sh

cycles=${PSK_CPU_CYCLES:-20000}
rounds=${PSK_CPU_ROUNDS:-3}

bench_start
bench_db psk_cpu 100000
psql -qX -v ON_ERROR_STOP=1 -f bench/min_schema.sql >/dev/null || die "bench/min_schema.sql failed"
psql -qX -v ON_ERROR_STOP=1 -f bench/cycle_procedures.sql >/dev/null || die "the procedures failed"

tck=$(getconf CLK_TCK)
# run KIND: microseconds of backend CPU per cycle of cycle_KIND
# (m on the tables of schema minimal)
run() {
	PGOPTIONS="-c search_path=minimal,public" \
		psql -qXAt -v ON_ERROR_STOP=1 -v kind="$1" -v n="$cycles" -v tck="$tck" <<'SQL'
SELECT pg_backend_pid() AS pid \gset
CALL cycle_:kind(200);
\setenv PSK_PID :pid
SELECT pg_catalog.clock_timestamp() AS t0 \gset
\! awk '{print $14 + $15}' /proc/$PSK_PID/stat > /tmp/psk-cpu-cycle.$PSK_PID
CALL cycle_:kind(:n);
\! awk -v n=$(cat /tmp/psk-cpu-cycle.$PSK_PID) '{print $14 + $15 - n}' /proc/$PSK_PID/stat > /tmp/psk-cpu-cycle.$PSK_PID
\set ticks `cat /tmp/psk-cpu-cycle.$PSK_PID`
\! rm -f /tmp/psk-cpu-cycle.$PSK_PID
SELECT round(:ticks * 1e6 / :tck / :n);
SQL
}

echo "== $(date -u '+%F %T') UTC, git $git_rev$git_dirty, nproc $ncpu, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $cycles cycles a run, $rounds rounds; backend CPU microseconds per cycle"
printf '| round | c | m | c - m |\n| ---: | ---: | ---: | ---: |\n'
for ((r = 1; r <= rounds; r++)); do
	if ((r % 2)); then
		c=$(run c)
		m=$(run m)
	else
		m=$(run m)
		c=$(run c)
	fi
	printf '| %d | %s | %s | %s |\n' "$r" "$c" "$m" "$((c - m))"
done
