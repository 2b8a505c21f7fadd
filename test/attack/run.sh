#!/usr/bin/env bash
# The attacks of issue 13, replayed against a throwaway cluster and psk-shim
# on 127.0.0.1 (and 127.0.0.2, another loopback address, for a flood that
# must be told apart from the legitimate clients), each bounded in time and
# count; fails when one of them works again.  test/attack/attack.py has
# the attacks; prints "N passed, M failed".
#
# Covered elsewhere: the standby and lifecycle edges (finding 6: a hot
# standby, a READ ONLY transaction, a database dropped under its worker,
# psk.database unset) in test/worker; confirm by the statement's clock in
# sql/reserve.sql; every malformed input in test/http
# (malformed_input_leaves_no_secret_in_the_logs).
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
# every shim started here takes a free admin port, never 8001
export PSK_ADMIN_LISTEN=127.0.0.1:0
source test/suite.sh

if [ -z "${PSK_TEST_WORK:-}" ]; then
	make -s >/dev/null || { echo "build failed"; exit 1; }
	make -s install DESTDIR="$PSK_PGROOT" >/dev/null || { echo "install failed"; exit 1; }
fi
[ -x shim/psk-shim ] || { echo "shim/psk-shim is not built"; exit 1; }

suite_cluster attack
trap 'for f in "$work"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done; cluster_stop "$work/data" immediate; rm -rf "$work"' EXIT
export PGDATABASE=psk_attack

cluster_init "$work/data" || exit 1
# as make run starts its cluster (max_worker_processes as PostgreSQL's
# default, 8), with the expiry worker in the database under attack
cluster_start "$work/data" "$port" -c shared_preload_libraries=psk -c psk.database=psk_attack \
	-c "log_line_prefix='%m [%p] %u '" || exit 1
psql -XAtq -d postgres -c "CREATE DATABASE psk_attack" || exit 1
psql -XAtq -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "CREATE EXTENSION psk CASCADE" \
	-f scripts/demo.sql -f scripts/shim-role.sql >/dev/null || exit 1
# a table for the parallel query (planned with 2 workers once they are free)
psql -XAtq -v ON_ERROR_STOP=1 -c "CREATE TABLE public.attack_pq AS SELECT g, md5(g::text) AS h FROM generate_series(1, 200000) g" \
	-c "VACUUM ANALYZE public.attack_pq" >/dev/null || exit 1

PSK_ATTACK_WORK=$work PSK_ATTACK_SERVER_LOG=$work/data/server.log PSK_SHIM=shim/psk-shim \
	python3 test/attack/attack.py
