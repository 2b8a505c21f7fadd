#!/usr/bin/env bash
# bench/cycle.sh: reserve+release cycles per second, psk against the same
# cycle hand-written in SQL, measured back to back on one throwaway cluster.
#   CLIENTS (default 8), SECONDS per run (default 20), CODES (default 100000),
#   ROUNDS (default 2: b, c, b, c ... to even out drift)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

clients=${CLIENTS:-8}
seconds=${SECONDS_PER_RUN:-20}
codes=${CODES:-100000}
rounds=${ROUNDS:-2}
settings="-c shared_buffers=1GB -c max_connections=100 -c synchronous_commit=on"

make -s >/dev/null && make -s install DESTDIR="$PSK_PGROOT" >/dev/null
work=$(mktemp -d /tmp/psk-bench.XXXXXX)
chmod 755 "$work"
port=$(free_port)
trap 'cluster_stop "$work/data" immediate; rm -rf "$work"' EXIT
cluster_init "$work/data"
cluster_start "$work/data" "$port" $settings
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres
psql -qX -c "CREATE EXTENSION psk CASCADE" >/dev/null 2>&1
psql -qX -v n="$codes" -f bench/load.sql >/dev/null

echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null) nproc=$(nproc) mem=$(free -g | awk '/Mem:/{print $2}')G"
echo "# postgres $settings; $codes codes; $clients clients; ${seconds}s per run"
run() { # run NAME FILE -> tps
	"$PGBIN/pgbench" -n -M prepared -c "$clients" -j "$clients" -T "$seconds" -f "$2" 2>&1 |
		awk -v name="$1" '/^tps/ {printf "%s %.0f\n", name, $3} /latency average/ {lat=$4} END {}'
}
declare -A sum
for r in $(seq "$rounds"); do
	for t in select1 sql_cycle psk_cycle; do
		# every run starts from a vacuumed table, none inherits another's dead rows
		psql -qX -c "VACUUM psk.codes, psk.audit_log" >/dev/null
		set -- $(run $t bench/$t.sql)
		echo "round $r: $1 $2 tps"
		sum[$1]=$(( ${sum[$1]:-0} + $2 ))
	done
done
b=${sum[sql_cycle]}; c=${sum[psk_cycle]}; a=${sum[select1]}
printf '\n| run | cycles/s (mean of %d) |\n|---|---|\n' "$rounds"
printf '| a: SELECT 1 | %d |\n| b: SQL cycle | %d |\n| c: psk cycle | %d |\n' $((a / rounds)) $((b / rounds)) $((c / rounds))
awk -v b="$b" -v c="$c" 'BEGIN { printf "\nc/b = %.3f\n", c / b }'
