#!/usr/bin/env bash
# make bench: what a reserve + release cycle costs, from the round-trip limit
# of this machine up to the cycle over HTTP, on one throwaway cluster, back
# to back, each run for a fixed time at each client count:
#
#   a  pgbench SELECT 1                         bench/select1.sql
#   b  the cycle hand-written in SQL            bench/sql_cycle.sql
#   m  the minimal cycle: b on tables of its own with only a primary key and
#      one free-code index (codes), a primary key (log)  bench/min_cycle.sql
#   mi m on tables with psk's indexes (those of psk.codes and of an audit
#      partition, schema minimal_indexed): the same SQL, so c/mi is what psk
#      costs beyond the indexes its readers need, mi/m what those cost
#   c  the cycle through psk_reserve/release    bench/psk_cycle.sql
#   ck c with a request_id on every reserve     bench/psk_cycle_rid.sql
#   d  the cycle over HTTP through psk-shim     bench/psk-http-cycle
#   dk d with an Idempotency-Key on every reserve  bench/psk-http-cycle -k
#   e  GET /auth/me and GET /users/my           bench/psk-http-cycle -g
#   ds d while a scraper asks GET /metrics 10 times a second (the admin
#      port); ds/d: what watching it costs the reserves (target >= 0.90)
#
# The HTTP driver (bench/http-cycle.c) holds all connections on one
# event-driven thread per core, as pgbench -j does, and reports latency as
# measured.  PSK_BENCH_WRK=1 adds run d through wrk (bench/http_cycle.lua,
# a thread per connection, as before) for comparison.
#
# Prints one table (operations per second, p50 and p99 latency, and the
# ratios c/b, c/m, c/mi, mi/m, d/c, d/a, ck/c and dk/d) and writes the same as Markdown to
# bench/results/bench-DATE-REV.md.  Settings, from the environment:
#   PSK_BENCH_SECONDS   seconds per run (5)
#   PSK_BENCH_ROUNDS    rounds of the cycle runs (a to ds) at each client
#                       count, in alternating order (3): each row is its
#                       median round, each ratio the median of the rounds'
#                       ratios, so that a drift of the machine during one
#                       10-second run no longer decides a ratio
#   PSK_BENCH_CLIENTS   client counts (1 8 32; at most 64)
#   PSK_BENCH_CODES     codes in the pools (100000)
#   PSK_BENCH_SHIM      psk-shim flags besides --threads (default "--pool 8")
#   PSK_BENCH_WRK       1: also run d through wrk
#   PSK_BENCH_RUNS      the runs to make, for a quick look at a few (all:
#                       "a b m c ck d dk ds e1 e2"; ratios of runs left out
#                       print as -)
#   PSK_PGROOT          a private PostgreSQL tree (see README.md)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source scripts/lib.sh
source bench/common.sh

seconds=${PSK_BENCH_SECONDS:-5}
rounds=${PSK_BENCH_ROUNDS:-3}
[[ $rounds =~ ^[0-9]+$ ]] && ((rounds >= 1 && rounds <= 9)) || die "PSK_BENCH_ROUNDS: 1 to 9"
clients=${PSK_BENCH_CLIENTS:-1 8 32}
codes=${PSK_BENCH_CODES:-100000}
# Two database connections per HTTP client at 8 clients: a reserve or a
# release waits for its commit's WAL flush, and only more connections let
# commits share a flush (at 32 clients, --pool 4 gave 1,997 cycles/s,
# --pool 8 2,963 and --pool 16 2,804).
shim_flags="--threads $ncpu --quiet ${PSK_BENCH_SHIM:---pool 8}"
for c in $clients; do
	[[ $c =~ ^[0-9]+$ ]] && ((c >= 1 && c <= 64)) || die "PSK_BENCH_CLIENTS: $c is not a number from 1 to 64"
done

with_wrk=${PSK_BENCH_WRK:-0}
[ "$with_wrk" = 1 ] && need_pkg wrk wrk
need_pkg curl curl
bench_start
make -s -C bench >/dev/null || die "bench/psk-http-cycle: build failed"
bench_db psk_bench "$codes"
echo "== $codes codes loaded in ${load_seconds}s"
# run m's and mi's tables (schemas minimal and minimal_indexed), the same
# codes as the pools
psql -qX -v ON_ERROR_STOP=1 -f bench/min_schema.sql >/dev/null || die "bench/min_schema.sql failed"
pg_run_vacuum_more="minimal.codes, minimal.log, minimal_indexed.codes, minimal_indexed.log"

httpport=$(free_port)
adminport=$(free_port)
# The shim in a session of its own, as each PostgreSQL backend is (the
# postmaster calls setsid() for each): with the kernel's autogroup
# scheduling (Debian's default), a session is one scheduling group, and a
# shim in the load generator's session shares one group's CPU with it
# against one group per backend.  So placed, the shim stalled for 0.4 to
# 2.5 s at times (GET /users/my at 8 connections after the 32-client
# cycle: p99 1.1 s and timeouts through wrk); in its own session, 14 ms.
# shellcheck disable=SC2086
setsid shim/psk-shim --listen "127.0.0.1:$httpport" --admin-listen "127.0.0.1:$adminport" --db "host=$(shim_db_host "$work/data") port=$pgport dbname=psk_bench user=postgres" \
	$shim_flags >"$work/shim.out" 2>"$work/shim.err" &
shim_pid=$!
for _ in $(seq 50); do
	curl -sf "http://127.0.0.1:$httpport/healthz" >/dev/null && break
	sleep 0.1
done
curl -sf "http://127.0.0.1:$httpport/healthz" >/dev/null || { cat "$work/shim.err"; die "psk-shim did not start"; }
[ "$(cat "/proc/$shim_pid/comm" 2>/dev/null)" = psk-shim ] || die "psk-shim is not process $shim_pid"

# One login per HTTP connection: connection i is bench user i.
maxc=$(printf '%s\n' $clients | sort -n | tail -1)
tokens=()
for i in $(seq "$maxc"); do
	t=$(curl -s -d "username=bench$i@example.com&password=Rdl@12345" "http://127.0.0.1:$httpport/auth/login" |
		sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')
	[ -n "$t" ] || die "login of bench$i@example.com failed"
	tokens+=("$t")
done

# per_request REQUESTS TICKS: the CPU time psk-shim spent per request, in
# µs, from the user + system ticks of its /proc/PID/stat over a run.
clk_tck=$(getconf CLK_TCK)
shim_ticks() { awk '{print $14 + $15}' "/proc/$shim_pid/stat"; }
per_request() { awk -v n="$1" -v t="$2" -v hz="$clk_tck" 'BEGIN {if (n > 0) printf "%.0f", t * 1e6 / hz / n; else print "-"}'; }

# http_run NAME CLIENTS SECONDS [-g PATH]: bench/psk-http-cycle, connection
# i as bench user i; prints "OPS P50 P99 ERRORS MAX SHIM_US".
http_run() {
	local name=$1 c=$2 s=$3 before after out
	shift 3
	out=$work/$name-c$c.out
	psql -qX -c "VACUUM psk.codes, psk.audit_log, psk.code_countries" >/dev/null
	before=$(shim_ticks)
	bench/psk-http-cycle -d "$s" "$@" -- "127.0.0.1:$httpport" "${tokens[@]:0:$c}" >"$out" 2>&1
	after=$(shim_ticks)
	awk -v us="$(per_request "$(awk '/ requests, / {print $8}' "$out")" $((after - before)))" '
		/^RESULT/ {r = $2 " " $3 " " $4 " " $5 " " $6}
		END {if (r == "") r = "0 - - 1 -"; print r, us}' "$out"
}

# wrk_run NAME SCRIPT CLIENTS SECONDS: run d through wrk, one thread per
# connection (PSK_BENCH_WRK=1); prints as http_run (wrk gives no max).
wrk_run() {
	local name=$1 script=$2 c=$3 s=$4 before after
	psql -qX -c "VACUUM psk.codes, psk.audit_log, psk.code_countries" >/dev/null
	before=$(shim_ticks)
	wrk -t"$c" -c"$c" -d"${s}s" --latency -s "$script" "http://127.0.0.1:$httpport" \
		-- "${tokens[@]:0:$c}" >"$work/$name-c$c.out" 2>&1
	after=$(shim_ticks)
	awk -v us="$(per_request "$(awk '/ requests in / {print $1}' "$work/$name-c$c.out")" $((after - before)))" '
		/^RESULT/ {r = $2 " " $3 " " $4 " " $5 " -"}
		END {if (r == "") r = "0 - - 1 -"; print r, us}' "$work/$name-c$c.out"
}

# scraper_start: GET /metrics 10 times a second, on one kept-alive
# connection, until scraper_stop; counts its scrapes in $work/scrapes.
scraper_start() {
	python3 - "$adminport" "$work/scrapes" <<'PY' &
import http.client, sys, time
port, out = int(sys.argv[1]), sys.argv[2]
conn, n = http.client.HTTPConnection("127.0.0.1", port, timeout=5), 0
while True:
    t = time.monotonic()
    conn.request("GET", "/metrics")
    r = conn.getresponse()
    r.read()
    n += r.status == 200
    open(out, "w").write(str(n))
    time.sleep(max(0, 0.1 - (time.monotonic() - t)))
PY
	scraper_pid=$!
}
scraper_stop() {
	kill "$scraper_pid" 2>/dev/null
	wait "$scraper_pid" 2>/dev/null
}

header="$(date -u '+%F %T UTC'), git $git_rev$git_dirty, nproc $ncpu, memory ${mem_gb} GB, $(uname -sr)"
setup="PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') $bench_pg_settings; $codes codes (OSV half, HSV and COMMON a quarter each); ${seconds}s per run, $rounds rounds of a to ds in alternating order (rows: the median round; ratios: the median of the rounds' ratios); pgbench -M prepared, -j min(clients, $ncpu); HTTP: bench/psk-http-cycle, one thread per core$([ "$with_wrk" = 1 ] && echo "; d (wrk): wrk, one thread per connection"); psk-shim $shim_flags, to the cluster $([ "$(shim_db_host "$work/data")" = 127.0.0.1 ] && echo "over TCP" || echo "over its Unix socket (pgbench over TCP)")"
echo "== $header"
echo "== $setup"

declare -A R # R[run,clients] = "OPS P50 P99 ERRORS MAX [SHIM_US]"
runs="a b m mi c ck d dk ds e1 e2"
[ "$with_wrk" = 1 ] && runs="a b m mi c ck d dk ds dw e1 e2"
if [ -n "${PSK_BENCH_RUNS:-}" ]; then
	for run in $PSK_BENCH_RUNS; do
		[[ " $runs " == *" $run "* ]] || die "PSK_BENCH_RUNS: no run $run (the runs: $runs)"
	done
	runs=$PSK_BENCH_RUNS
fi
declare -A label=(
	[a]="a: SELECT 1"
	[b]="b: SQL cycle"
	[m]="m: minimal cycle"
	[mi]="mi: m, psk indexes"
	[c]="c: psk cycle"
	[ck]="ck: c, request_id"
	[d]="d: HTTP cycle"
	[dk]="dk: d, Idem.-Key"
	[dw]="d: HTTP, wrk"
	[ds]="ds: d, scraped 10/s"
	[e1]="e: GET /auth/me"
	[e2]="e: GET /users/my"
)
# one_run RUN CLIENTS: the result line of one run
one_run() {
	case $1 in
	a) pg_run select1 bench/select1.sql "$2" "$seconds" ;;
	b) pg_run sql_cycle bench/sql_cycle.sql "$2" "$seconds" ;;
	m) PGOPTIONS="-c search_path=minimal" pg_run min_cycle bench/min_cycle.sql "$2" "$seconds" ;;
	mi) PGOPTIONS="-c search_path=minimal_indexed" pg_run min_indexed_cycle bench/min_cycle.sql "$2" "$seconds" ;;
	c) pg_run psk_cycle bench/psk_cycle.sql "$2" "$seconds" ;;
	ck) pg_run psk_cycle_rid bench/psk_cycle_rid.sql "$2" "$seconds" ;;
	d) http_run http_cycle "$2" "$seconds" ;;
	dk) http_run http_cycle_key "$2" "$seconds" -k ;;
	ds)
		scraper_start
		http_run http_cycle_scraped "$2" "$seconds"
		scraper_stop
		;;
	dw) wrk_run http_cycle_wrk bench/http_cycle.lua "$2" "$seconds" ;;
	esac
}
# RR[run,clients,round]: every round's line; R[run,clients]: the median one
declare -A RR
cycle_runs=$(printf '%s\n' $runs | grep -v '^e' | xargs)
for c in $clients; do
	for ((r = 1; r <= rounds; r++)); do
		order=$cycle_runs
		((r % 2 == 0)) && order=$(printf '%s\n' $cycle_runs | tac | xargs)
		for run in $order; do
			RR[$run,$c,$r]=$(one_run "$run" "$c")
			extra=
			[ "$run" = ds ] && extra=" ($(cat "$work/scrapes" 2>/dev/null || echo 0) scrapes)"
			echo "   round $r, ${label[$run]}, $c clients: ${RR[$run,$c,$r]}$extra"
		done
	done
	for run in $cycle_runs; do
		median=$(for ((r = 1; r <= rounds; r++)); do
			set -- ${RR[$run,$c,$r]}
			echo "$1 $r"
		done | sort -n | awk -v n="$rounds" 'NR == int((n + 1) / 2) {print $2}')
		R[$run,$c]=${RR[$run,$c,$median]}
	done
done
# GET /users/my lists what the user holds: two codes each, as a tester would.
psql -qX -c "SELECT count(*) FROM generate_series(1, 64) i, generate_series(1, 2),
                    LATERAL psk_reserve('bench' || i || '@example.com', 'bench')" >/dev/null
for c in $clients; do
	if [[ " $runs " == *" e1 "* ]]; then
		R[e1,$c]=$(http_run auth_me "$c" "$seconds" -g /auth/me)
		echo "   ${label[e1]}, $c clients: ${R[e1,$c]}"
	fi
	if [[ " $runs " == *" e2 "* ]]; then
		R[e2,$c]=$(http_run users_my "$c" "$seconds" -g /users/my)
		echo "   ${label[e2]}, $c clients: ${R[e2,$c]}"
	fi
done

# ratio X Y CLIENTS: the median over the rounds of X's ops/s over Y's
ratio() {
	local x=$1 y=$2 c=$3 r
	for ((r = 1; r <= rounds; r++)); do
		# shellcheck disable=SC2086
		awk -v x="$(set -- ${RR[$x,$c,$r]}; echo "$1")" -v y="$(set -- ${RR[$y,$c,$r]}; echo "$1")" \
			'BEGIN {if (x != "" && y > 0) printf "%.4f\n", x / y}'
	done | sort -n | awk '{v[NR] = $1} END {if (NR) printf "%.2f", v[int((NR + 1) / 2)]; else print "-"}'
}
report() {
	echo "# make bench, $stamp"
	echo
	echo "$header"
	echo
	echo "$setup"
	echo
	echo "| run | clients | ops/s | p50 ms | p99 ms | max ms | errors | shim CPU µs/request |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for r in $runs; do
		for c in $clients; do
			set -- ${R[$r,$c]}
			printf '| %-16s | %2s | %7s | %7s | %7s | %7s | %s | %s |\n' "${label[$r]}" "$c" "$1" "$2" "$3" "${5:--}" "$4" "${6:--}"
		done
	done
	echo
	echo "| clients | c/b | c/m | c/mi | mi/m | d/c | d/a | ck/c | dk/d | ds/d |"
	echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for c in $clients; do
		printf '| %2s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$c" \
			"$(ratio c b "$c")" "$(ratio c m "$c")" "$(ratio c mi "$c")" \
			"$(ratio mi m "$c")" "$(ratio d c "$c")" \
			"$(ratio d a "$c")" "$(ratio ck c "$c")" "$(ratio dk d "$c")" \
			"$(ratio ds d "$c")"
	done
	echo
	echo "ops/s: statements (a), cycles of reserve + release (b, m, mi, c, ck, d, dk), requests (e)."
	echo "m: b on tables of its own (schema minimal, bench/min_schema.sql) with only"
	echo "a primary key and one partial free-code index, and a log with a primary key"
	echo "only; c/m: what psk's checks, indexes and audit trail cost against that."
	echo "mi: m on tables with psk's indexes (schema minimal_indexed: those of"
	echo "psk.codes and of an audit partition, no checks or triggers); c/mi: what"
	echo "psk costs beyond the index entries its readers need; mi/m: what those cost."
	echo "ck and dk: c and d with a new request_id (Idempotency-Key) on every"
	echo "reserve, remembered in psk.reserve_requests; ck/c and dk/d: what that costs."
	echo "ds: d while GET /metrics is asked 10 times a second on the admin port"
	echo "(its database part at most once a second); ds/d: what scraping costs."
	echo "Latency: per transaction for pgbench (a whole cycle for b and c), per"
	echo "HTTP request (half a cycle for d), as measured by bench/psk-http-cycle"
	echo "(wrk's p99 adds made-up samples for slow requests). errors: failed"
	echo "transactions or aborted clients (pgbench); non-2xx answers, socket errors"
	echo "and replies slower than 2 s (HTTP). shim CPU: user + system time of"
	echo "psk-shim during the run over its requests."
}
mkdir -p bench/results
result=bench/results/bench-$stamp-$git_rev.md
report | tee "$result"
echo
echo "written to $result"
