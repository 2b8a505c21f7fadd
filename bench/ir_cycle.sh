#!/usr/bin/env bash
# bench/ir_cycle.sh: instructions per cycle of the psk cycle (c) and of
# the minimal cycle (m), counted by valgrind (callgrind) in a single-user
# backend running bench/cpu_cycle.sh's procedures.  Instruction counts do
# not depend on what else the machine runs (CPU time does, on a shared
# 2-thread machine): for comparing two builds, or c against m, while other
# work is going on.  A count leaves out the client, the protocol, the WAL
# flush wait and everything lock contention adds.
#   PSK_IR_CYCLES  cycles counted (2000; the count is the difference of a
#                  run of PSK_IR_CYCLES + 200 and one of 200)
#   PSK_IR_RUNS    which runs (c m h; mi: m on the tables of schema
#                  minimal_indexed, psk's indexes): h is c through the HTTP routes'
#                  functions, psk.http_reserve + psk.http_release, as the
#                  shim calls them; e and g count one request of GET
#                  /auth/me and of GET /users/my (two codes held) instead
#   PSK_IR_KEEP    a folder to keep the callgrind files in (for
#                  callgrind_annotate)
#   PSK_PGROOT     a private PostgreSQL tree (see README.md)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source scripts/lib.sh
source bench/common.sh

cycles=${PSK_IR_CYCLES:-2000}
command -v valgrind >/dev/null || need_pkg valgrind valgrind

bench_start
bench_db psk_cpu 100000
psql -qX -v ON_ERROR_STOP=1 -f bench/min_schema.sql >/dev/null || die "bench/min_schema.sql failed"
psql -qX -v ON_ERROR_STOP=1 -f bench/cycle_procedures.sql >/dev/null || die "the procedures failed"
cluster_stop "$work/data" fast
mkdir -p "$work/callgrind" && chown --reference="$work/data" "$work/callgrind"

# instructions KIND N: instructions of a single-user backend calling
# cycle_KIND(N) once (mi: cycle_m on schema minimal_indexed)
instructions() {
	local out="$work/callgrind/$1.$2" proc=$1 schema=minimal
	[ "$1" = mi ] && proc=m schema=minimal_indexed
	echo "CALL cycle_$proc($2);" |
		as_pg valgrind --tool=callgrind --callgrind-out-file="$out" \
			"$PGBIN/postgres" --single -D "$work/data" -c shared_preload_libraries=psk \
			-c search_path="$schema,public" \
			-c synchronous_commit=off -c autovacuum=off psk_cpu >/dev/null 2>"$out.log" ||
		die "the single-user backend failed (cycle_$1($2))"
	awk '/^summary:/ {print $2}' "$out"
}

echo "== $(date -u '+%F %T') UTC, git $git_rev$git_dirty; instructions per cycle over $cycles cycles"
printf '| run | instructions per cycle |\n| --- | ---: |\n'
for kind in ${PSK_IR_RUNS:-c m h}; do
	a=$(instructions "$kind" 200)
	b=$(instructions "$kind" $((cycles + 200)))
	printf '| %s | %d |\n' "$kind" $(((b - a) / cycles))
done
[ -n "${PSK_IR_KEEP:-}" ] && mkdir -p "$PSK_IR_KEEP" && cp "$work"/callgrind/* "$PSK_IR_KEEP"/
