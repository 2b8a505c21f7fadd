#!/usr/bin/env bash
# bench/run.sh [SECONDS] [CONNECTIONS]: reserve + release cycles per second,
# over HTTP (wrk against psk-shim) and in SQL (pgbench -M prepared), back to
# back on one throwaway cluster, with p99 latencies.  Needs wrk and pgbench.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
secs=${1:-15}
conns=${2:-32}
threads=$(nproc)

make -s >/dev/null || { echo "build failed"; exit 1; }
make -s install DESTDIR="$PSK_PGROOT" >/dev/null || { echo "install failed"; exit 1; }

work=$(mktemp -d /tmp/psk-bench.XXXXXX)
chmod 755 "$work"
shim_pid=
cleanup() {
	[ -n "$shim_pid" ] && kill "$shim_pid" 2>/dev/null && wait "$shim_pid" 2>/dev/null
	cluster_stop "$work/data" immediate
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pgport=$(free_port)
cluster_init "$work/data" || exit 1
cluster_start "$work/data" "$pgport" -c max_connections=100 || exit 1
export PGHOST=127.0.0.1 PGPORT=$pgport PGUSER=postgres PGDATABASE=psk_bench
psql -qX -d postgres -c "CREATE DATABASE psk_bench" >/dev/null
psql -qX -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || exit 1
SET client_min_messages = warning;
CREATE EXTENSION psk CASCADE;
SELECT FROM psk_create_user(NULL, 'Admin', 'admin', 'admin@example.com', 'Rdl@12345', true);
SELECT FROM psk_create_user('admin@example.com', 'Trillium', 'osv', 'osv@example.com', 'Rdl@12345', pool => 'OSV');
SELECT FROM psk_add_codes('admin@example.com', 'OSV',
                          ARRAY(SELECT 'B-' || g FROM generate_series(1, 2000) g));
SQL

port=$(free_port)
shim/psk-shim --listen 127.0.0.1:$port --db "host=127.0.0.1 port=$pgport dbname=psk_bench user=postgres" \
	--threads "$threads" ${PSK_BENCH_POOL:+--pool $PSK_BENCH_POOL} >"$work/access.log" 2>"$work/shim.err" &
shim_pid=$!
for _ in $(seq 50); do
	curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
	sleep 0.1
done

tokens=()
for _ in $(seq "$conns"); do
	tokens+=("$(curl -s -d 'username=osv@example.com&password=Rdl@12345' "http://127.0.0.1:$port/auth/login" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')")
done

echo "== HTTP: wrk -t$threads -c$conns -d${secs}s, psk-shim --threads $threads ${PSK_BENCH_POOL:+--pool $PSK_BENCH_POOL}"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$shim_pid/stat"; }
before=$(cpu_ticks)
wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s bench/http_cycle.lua \
	"http://127.0.0.1:$port" -- "${tokens[@]}" >"$work/wrk.out"
grep -E "cycles/s|Requests/sec|Non-2xx" "$work/wrk.out"
requests=$(awk '/requests in/ {print $1}' "$work/wrk.out")
echo "psk-shim CPU: $(( ($(cpu_ticks) - before) * 10000 / (requests > 0 ? requests : 1) )) us per request"

kill "$shim_pid"
wait "$shim_pid"
shim_pid=
echo "codes by status after the HTTP run: $(psql -XAt -F' ' -c "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM psk.codes GROUP BY 1) s")"
psql -qX -c "VACUUM ANALYZE" >/dev/null

echo "== SQL: pgbench -M prepared -c$conns -j$threads -T$secs"
top=$(pwd)
(cd "$work" && pgbench -n -M prepared -c"$conns" -j"$threads" -T"$secs" -l \
	-f "$top/bench/pg_cycle.sql" >pgbench.out 2>&1) || { cat "$work/pgbench.out"; exit 1; }
grep -E "^tps|latency average|failed" "$work/pgbench.out"
# per-transaction log: the 3rd field is the latency in microseconds
cat "$work"/pgbench_log.* | awk '{print $3}' | sort -n |
	awk '{a[NR] = $1} END {printf "cycles/s (tps above); p50 %.2f ms, p99 %.2f ms\n", a[int(NR * 0.5)] / 1000, a[int(NR * 0.99)] / 1000}'
