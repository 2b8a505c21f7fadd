#!/usr/bin/env bash
# bench/login-flood.sh: issue 13's login flood, measured.  Not part of make
# test or make bench: run it by hand (about 40 s), on a quiet machine.
#
# A cluster set up as `make run` sets it up (psk preloaded, psk.database =
# psk, the demo data, the shim as psk_shim with its default flags), then for
# PSK_FLOOD_SECONDS (15): PSK_FLOOD_THREADS (16) threads post form logins
# with random e-mails as fast as the replies come, from 127.0.0.2 (another
# loopback address than the legitimate clients'); meanwhile a legitimate
# login every 0.5 s from 127.0.0.1 (the demo accounts, right password), GET
# /auth/me every 10 ms on a kept-alive connection, and every second a
# parallel query (EXPLAIN ANALYZE: workers planned and launched) and a count
# of the background processes by type.  Before the flood, GET /auth/me for
# 3 s alone, for comparison.  PSK_FLOOD_SHIM passes extra flags to the shim.
#
# Prints the figures; the report also goes to
# bench/results/login-flood-DATE-REV.md.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
# every shim started here takes a free admin port, never 8001
export PSK_ADMIN_LISTEN=127.0.0.1:0
source bench/common.sh

seconds=${PSK_FLOOD_SECONDS:-15}
threads=${PSK_FLOOD_THREADS:-16}
source_addr=${PSK_FLOOD_SOURCE:-127.0.0.2}
shim_flags=${PSK_FLOOD_SHIM:-}

trap bench_cleanup EXIT
trap 'exit 130' INT TERM
if [ -n "$PSK_PGROOT" ] && [ ! -x "$PGBIN/postgres" ]; then
	die "PSK_PGROOT=$PSK_PGROOT holds no PostgreSQL (bash scripts/private-pg.sh $PSK_PGROOT)"
fi
echo "== build and install${PSK_PGROOT:+ into $PSK_PGROOT}"
make -s >/dev/null || die "build failed"
make -s install DESTDIR="$PSK_PGROOT" >/dev/null || die "install failed"
[ -x shim/psk-shim ] || die "shim/psk-shim is not built"

work=$(mktemp -d /tmp/psk-flood.XXXXXX)
chmod 755 "$work"
pgport=$(free_port)
cluster_init "$work/data" || die "initdb failed"
# as scripts/run.sh starts the cluster of make run
cluster_start "$work/data" "$pgport" -c shared_preload_libraries=psk -c psk.database=psk \
	-c autovacuum_naptime=10s || die "cluster did not start"
export PGHOST=127.0.0.1 PGPORT=$pgport PGUSER=postgres PGDATABASE=psk
psql -qX -d postgres -c "CREATE DATABASE psk" || die "createdb failed"
psql -qX -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "CREATE EXTENSION psk CASCADE" >/dev/null &&
	psql -qX -v ON_ERROR_STOP=1 -1 -f scripts/demo.sql >/dev/null &&
	psql -qX -v ON_ERROR_STOP=1 -f scripts/shim-role.sql >/dev/null || die "set-up failed"
# a table for the parallel query (about 1M rows: big enough to be planned
# with workers once their start-up is free)
psql -qX -v ON_ERROR_STOP=1 -c "CREATE TABLE public.flood_pq AS SELECT g, md5(g::text) AS h FROM generate_series(1, 1000000) g" \
	-c "VACUUM ANALYZE public.flood_pq" >/dev/null || die "flood_pq failed"

httpport=$(free_port)
# shellcheck disable=SC2086
setsid shim/psk-shim --listen "127.0.0.1:$httpport" --db "host=127.0.0.1 port=$pgport dbname=psk user=psk_shim" \
	--quiet $shim_flags >"$work/shim.log" 2>&1 &
shim_pid=$!
for _ in $(seq 50); do
	curl -sf "http://127.0.0.1:$httpport/healthz" >/dev/null 2>&1 && break
	sleep 0.2
done
curl -sf "http://127.0.0.1:$httpport/healthz" >/dev/null || die "the shim did not come up: $(cat "$work/shim.log")"

token=$(curl -s "http://127.0.0.1:$httpport/auth/login" -d username=osv@example.com -d password=Rdl@12345 |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') || die "no token"

py=bench/login_flood.py
echo "== GET /auth/me alone, 3 s"
python3 "$py" me "$httpport" 3 0.01 "$token" >"$work/me-alone.json"

pq_sql="SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET max_parallel_workers_per_gather = 2;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM public.flood_pq WHERE h LIKE 'ab%'"
sample() {
	local end=$((SECONDS + seconds))
	while [ $SECONDS -lt "$end" ]; do
		psql -XAt -c "$pq_sql" | sed -n 's/.*Workers \(Planned\|Launched\): \([0-9]*\).*/\1 \2/p' | tr '\n' ' '
		psql -XAt -c "SELECT coalesce(string_agg(replace(backend_type, ' ', '_') || '=' || n, ' '), '') FROM (SELECT backend_type, count(*) n FROM pg_stat_activity WHERE backend_type NOT IN ('client backend', 'checkpointer', 'background writer', 'walwriter', 'autovacuum launcher', 'logical replication launcher') GROUP BY 1) t"
		sleep 1
	done
}

echo "== the flood: $threads threads from $source_addr for $seconds s, with legitimate logins, GET /auth/me and a parallel query"
python3 "$py" flood "$httpport" "$seconds" "$threads" "$source_addr" >"$work/flood.json" &
flood_pid=$!
python3 "$py" legit "$httpport" "$seconds" 0.5 >"$work/legit.json" &
legit_pid=$!
python3 "$py" me "$httpport" "$seconds" 0.01 "$token" >"$work/me.json" &
me_pid=$!
sample >"$work/samples.txt" &
sample_pid=$!
wait "$flood_pid" "$legit_pid" "$me_pid" "$sample_pid"

failures=$(psql -XAtc "SELECT count(*) FROM psk.login_failures")
report=$(
	python3 - "$work" "$seconds" "$failures" <<'EOF'
import json, statistics, sys
work, seconds, failures = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")
flood = json.load(open(f"{work}/flood.json"))
legit = json.load(open(f"{work}/legit.json"))
me = json.load(open(f"{work}/me.json"))
alone = json.load(open(f"{work}/me-alone.json"))
planned, launched, types = [], [], {}
for line in open(f"{work}/samples.txt"):
    words = line.split()
    for i, w in enumerate(words):
        if w == "Planned":
            planned.append(int(words[i + 1]))
        elif w == "Launched":
            launched.append(int(words[i + 1]))
        elif "=" in w:
            k, v = w.split("=")
            types.setdefault(k, []).append(int(v))
answered = sum(v for k, v in flood.items() if k in ("200", "401"))
legit_ok = sum(1 for s in legit if s == 200)
print(f"| flood requests | {sum(flood.values())} ({', '.join(f'{k}: {v}' for k, v in sorted(flood.items()))}) |")
print(f"| logins checked by the database (flood 401 + 200) | {answered} ({answered / seconds:.1f}/s) |")
print(f"| 429 to the flood | {flood.get('429', 0)} |")
print(f"| 503 to the flood | {flood.get('503', 0)} |")
print(f"| legitimate logins | {len(legit)}, refused: {len(legit) - legit_ok} ({', '.join(str(s) for s in legit if s != 200) or 'none'}) |")
print(f"| GET /auth/me alone: p50, p99, max | {pct(alone['latencies_ms'], 50):.2f} ms, {pct(alone['latencies_ms'], 99):.2f} ms, {max(alone['latencies_ms']):.1f} ms |")
print(f"| GET /auth/me during the flood: p50, p99, max (n) | {pct(me['latencies_ms'], 50):.2f} ms, {pct(me['latencies_ms'], 99):.2f} ms, {max(me['latencies_ms']):.1f} ms ({len(me['latencies_ms'])}, not 200: {me['not_200']}) |")
print(f"| parallel query: workers planned / launched (each sample) | {' '.join(f'{p}/{l}' for p, l in zip(planned, launched))} |")
for k, v in sorted(types.items()):
    print(f"| {k} processes (max in a sample) | {max(v)} |")
print(f"| psk.login_failures rows after | {failures} |")
EOF
)

stamp=$(date -u +%Y-%m-%dT%H%MZ)
out=bench/results/login-flood-$stamp-$git_rev$git_dirty.md
{
	echo "# login flood, $stamp, $git_rev$git_dirty"
	echo
	echo "nproc $ncpu, ${mem_gb} GB, $(uname -r); cluster as make run (shared_preload_libraries = psk, psk.database = psk);"
	echo "shim: default flags${shim_flags:+ and $shim_flags}; $threads flood threads from $source_addr for $seconds s"
	echo
	echo "| what | figure |"
	echo "| --- | --- |"
	echo "$report"
} | tee "$out"
echo
echo "written to $out"
