#!/usr/bin/env bash
# Robustness under concurrency and crashes.  Own throwaway cluster on a
# free loopback port; prints one line per check and "N passed, M failed".
#
#   round 1  load:   32 clients (psk-load), a fixed number of calls per user
#   round 2  crash:  the same load, kill -9 of the postmaster a few seconds
#                    in (its backends wind down on their own), restart
#   round 3  crash:  the same, kill -9 of the postmaster and of all its
#                    processes at once (as a power cut would), restart
#   round 4  load:   a shorter run on the recovered cluster, with a
#                    REPEATABLE READ snapshot held throughout (issue 18)
#   round 5  http:   the load of round 1 through psk-shim (driver-http.c)
#   round 6  http crash: the same, kill -9 of the shims a few seconds in,
#                    restart; the clients whose call was cut off come back
#                    as their second accounts and run to their end
#   round 7  holds:  renewers, retries with one request_id (also at once),
#                    a quota, short holds swept in batches (pgbench)
#
# After each round test/stress/invariants.sql holds what every client was
# told (its acknowledgement file) against the audit log and the tables;
# then the janitor frees every code for the next round.  The guarantee that
# an acknowledged change survives a crash assumes synchronous_commit = on
# (the default) and fsync = on; the cluster runs with both, and checks it.
#
# Settings (environment): PSK_STRESS_SEED (default: the time; printed),
# PSK_STRESS_CLIENTS (32), PSK_STRESS_OPS (calls per user in round 1: 500;
# round 5 over HTTP: a fifth of it, round 6 a third).
#
# The HTTP rounds run two shims: the TTL of a reservation cannot be set per
# HTTP session, so the short-TTL users go to a second shim whose database
# role, psk_shim_ttl, has psk.reservation_ttl set (ALTER ROLE ... SET); the
# others to the usual psk_shim.  The expirer and the janitor stay on SQL.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
# the shims' admin ports (/metrics): any free port, unless a test names one
export PSK_ADMIN_LISTEN=127.0.0.1:0

seed=${PSK_STRESS_SEED:-$(date +%s)}
clients=${PSK_STRESS_CLIENTS:-32}
ops=${PSK_STRESS_OPS:-500}
admins=2

work=$(realpath "$(mktemp -d /tmp/psk-stress.XXXXXX)")
chmod 755 "$work"
mkdir "$work/acks"
port=$(free_port)
load_pid=
shim_pids=
cleanup() {
	[ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
	# shellcheck disable=SC2086
	[ -n "$shim_pids" ] && kill $shim_pids 2>/dev/null && wait $shim_pids 2>/dev/null
	cluster_stop "$work/data" immediate
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=psk_stress

passed=0
failed=0
ok() { # ok NAME: a passed check
	passed=$((passed + 1))
	echo "ok - $1"
}
not_ok() { # not_ok NAME WHY
	failed=$((failed + 1))
	echo "not ok - $1: $2"
}
check() { # check NAME EXPECTED ACTUAL
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected '$2', got '$3'"; fi
}
finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && exit 0
	exit 1
}
sql() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
load() { test/stress/psk-load -o "$work/acks" -c "$clients" -a "$admins" -s "$seed" "$@"; }

echo "# seed $seed (PSK_STRESS_SEED=$seed to replay the clients' choices)"

# The tool, warnings being errors.
if make -s -C test/stress PG_CONFIG="$PG_CONFIG" >"$work/build.out" 2>&1; then
	ok "psk-load builds without warnings"
else
	cat "$work/build.out"
	not_ok "psk-load builds without warnings" "make -C test/stress failed"
	finish
fi

cluster_init "$work/data" || exit 1
cluster_start "$work/data" "$port" -c synchronous_commit=on -c fsync=on -c shared_preload_libraries=psk || exit 1
psql -XAtq -d postgres -c "CREATE DATABASE psk_stress" || exit 1
if ! sql "CREATE EXTENSION psk CASCADE" >/dev/null 2>&1; then
	not_ok "psk is installed" "make install DESTDIR=\$PSK_PGROOT first (scripts/test.sh does)"
	finish
fi
psql -XAtq -v ON_ERROR_STOP=1 -f test/fixtures/tap.sql >/dev/null || exit 1
psql -XAtq -v ON_ERROR_STOP=1 -v clients="$clients" -v admins="$admins" \
	-f test/stress/setup.sql || exit 1
check "commits are durable: synchronous_commit and fsync on" "on on" \
	"$(sql "SELECT current_setting('synchronous_commit') || ' ' || current_setting('fsync')")"

# invariants LABEL: load every ack file, run the checks, count the lines.
invariants() {
	cat "$work"/acks/*.tsv | psql -XAtq -v ON_ERROR_STOP=1 \
		-c "TRUNCATE stress.acks" -c "COPY stress.acks FROM STDIN" || {
		not_ok "$1acknowledgements load" "COPY failed"
		return
	}
	local t0
	t0=$(date +%s.%N)
	psql -XAtq -v ON_ERROR_STOP=1 -v label="$1" -f test/stress/invariants.sql \
		>"$work/inv.out" 2>&1 || not_ok "$1invariants" "invariants.sql failed"
	cat "$work/inv.out"
	echo "# $1checks took $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
	passed=$((passed + $(grep -c '^ok - ' "$work/inv.out")))
	failed=$((failed + $(grep -c '^not ok - ' "$work/inv.out")))
	grep -qE '^(ok|not ok) - ' "$work/inv.out" || not_ok "$1invariants" "the checks did not run"
}

# The processes of our cluster: the postmaster and its children work in
# its data directory (children of a killed postmaster no longer have it
# as their parent).
cluster_pids() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/cwd" 2>/dev/null)" = "$work/data" ] && echo "${p#/proc/}"
	done
}

begin_round() { # begin_round N KIND
	sql "INSERT INTO stress.rounds SELECT $1, '$2', coalesce(max(id), 0) FROM psk.audit_log"
}

# janitor N: every code back to CAN_BE_USED for the next round.
janitor() {
	local rc
	load -r "$1" -J >"$work/janitor.out" 2>&1
	rc=$?
	check "round $1: the janitor freed every code" "0: CAN_BE_USED 70" \
		"$rc: $(sql "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) AS n FROM psk.codes GROUP BY 1) s")"
}

# load_round N OPS [held]: a full run, every call answered; with held, a
# REPEATABLE READ snapshot is held throughout (reserves then start at the
# free-code hints, extension/free_hint.c).
load_round() {
	local r=$1 n=$2 held_pid=
	begin_round "$r" load
	if [ "${3:-}" = held ]; then
		PGAPPNAME=psk_stress_held psql -XAtq -c "BEGIN ISOLATION LEVEL REPEATABLE READ" \
			-c "SELECT count(*) FROM psk.users" -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
		held_pid=$!
		sleep 0.5
	fi
	load -r "$r" -n "$n" -T 90 >"$work/load.out" 2>&1
	local rc=$?
	cat "$work/load.out"
	check "round $r: every client ran to its end with expected outcomes only" 0 "$rc"
	if [ -n "$held_pid" ]; then
		check "round $r: a snapshot was held throughout" 1 \
			"$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'psk_stress_held' AND backend_xmin IS NOT NULL")"
		sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'psk_stress_held'" >/dev/null
		wait "$held_pid" 2>/dev/null
	fi
	invariants "round $r: "
}

# crash_round N HOW: the load, killed under it; HOW is postmaster or all.
crash_round() {
	local r=$1 how=$2 pm procs alive gone_at delay crashes_before
	begin_round "$r" crash
	load -r "$r" -n 1000000 -T 60 -x >"$work/load.out" 2>&1 &
	load_pid=$!
	delay=$((2 + (seed + r) % 3))
	sleep "$delay"
	pm=$(head -1 "$work/data/postmaster.pid")
	procs=$(cluster_pids)
	if [ "$how" = all ]; then
		# shellcheck disable=SC2086
		kill -9 "$pm" $procs
	else
		kill -9 "$pm"
	fi
	echo "# round $r: kill -9 of the postmaster ($how) after $delay s"
	# Orphaned backends notice the postmaster's death and leave; the old
	# shared memory must be gone and the killed postmaster reaped (its pid
	# is in postmaster.pid) before a new postmaster may start.
	gone_at=$(date +%s.%N)
	for _ in $(seq 300); do
		alive=$(for p in $procs; do kill -0 "$p" 2>/dev/null && echo "$p"; done; cluster_pids)
		[ -z "$alive" ] && break
		sleep 0.1
	done
	check "round $r: every process of the killed server is gone" "" "$(echo $alive)"
	echo "# round $r: the old server's processes were gone after $(awk -v a="$gone_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
	wait "$load_pid"
	local rc=$?
	load_pid=
	cat "$work/load.out"
	check "round $r: clients met only expected outcomes up to the crash" 0 "$rc"
	check "round $r: every client saw its connection die" "$clients" \
		"$(sed -n 's/.*clients that lost their connection: //p' "$work/load.out")"
	crashes_before=$(grep -c 'not properly shut down; automatic recovery in progress' "$work/data/server.log")
	# (pg_ctl warns of the dead server's postmaster.pid: that is the point)
	if cluster_start "$work/data" "$port" -c synchronous_commit=on -c fsync=on -c shared_preload_libraries=psk \
		2>"$work/start.err"; then
		ok "round $r: the cluster restarts after kill -9"
	else
		tail -20 "$work/start.err"
		not_ok "round $r: the cluster restarts after kill -9" "see the server log"
		finish
	fi
	check "round $r: the restart ran crash recovery" $((crashes_before + 1)) \
		"$(grep -c 'not properly shut down; automatic recovery in progress' "$work/data/server.log")"
	invariants "round $r: "
}

# The shims of the HTTP rounds: psk_shim for most users, psk_shim_ttl
# (reservations expire after $ttl s) for the short-TTL third.
ttl=1
shim_port=$(free_port)
shim_ttl_port=$(free_port)
[ "$shim_ttl_port" = "$shim_port" ] && shim_ttl_port=$((shim_port + 1))
export PSK_LOAD_HTTP=127.0.0.1:$shim_port PSK_LOAD_HTTP_TTL=127.0.0.1:$shim_ttl_port
start_shims() { # start_shims: both, and wait until they answer
	local role port up
	shim_pids=
	for role in psk_shim psk_shim_ttl; do
		port=$shim_port
		[ "$role" = psk_shim_ttl ] && port=$shim_ttl_port
		shim/psk-shim --listen "127.0.0.1:$port" --threads 1 --pool 6 --quiet \
			--db "host=127.0.0.1 port=$PGPORT dbname=$PGDATABASE user=$role" \
			>>"$work/shim.log" 2>&1 &
		shim_pids="$shim_pids $!"
	done
	for _ in $(seq 100); do
		up=0
		for port in $shim_port $shim_ttl_port; do
			curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && up=$((up + 1))
		done
		[ "$up" = 2 ] && return 0
		sleep 0.1
	done
	tail -20 "$work/shim.log"
	return 1
}

# http_round N OPS: round 1's load through the shims.
http_round() {
	local r=$1 n=$2
	begin_round "$r" load
	load -r "$r" -n "$n" -L "$ttl" -T 90 -D http >"$work/load.out" 2>&1
	local rc=$?
	cat "$work/load.out"
	check "round $r (http): every client ran to its end with expected outcomes only" 0 "$rc"
	invariants "round $r (http): "
}

# http_crash_round N OPS: the same, kill -9 of both shims a few seconds in
# (the database stays up), restart.  The clients wait for the shims; one
# whose call was cut off (it may or may not have committed) comes back as
# its second account (psk-load -R), so that the lost call stays the last
# act of the first; their acknowledged reservations must all still be held.
http_crash_round() {
	local r=$1 n=$2 lost acked before target
	begin_round "$r" crash
	before=$(cat "$work"/acks/*.tsv 2>/dev/null | wc -l)
	load -r "$r" -n "$n" -L "$ttl" -T 90 -D http -R >"$work/load.out" 2>&1 &
	load_pid=$!
	# Kill once about a quarter of the round's calls are acknowledged (not
	# after a fixed time: a faster engine finished the round before the kill),
	# so that most clients have calls in flight.
	target=$((before + clients * n / 4))
	for _ in $(seq 300); do
		acked=$(cat "$work"/acks/*.tsv 2>/dev/null | wc -l)
		[ "$acked" -ge "$target" ] && break
		sleep 0.1
	done
	# shellcheck disable=SC2086
	kill -9 $shim_pids
	# shellcheck disable=SC2086
	wait $shim_pids 2>/dev/null
	echo "# round $r: kill -9 of the shims after $((acked - before)) acknowledged calls"
	sleep 0.5
	if start_shims; then
		ok "round $r (http): the shims restart after kill -9"
	else
		not_ok "round $r (http): the shims restart after kill -9" "see the shim log"
	fi
	wait "$load_pid"
	local rc=$?
	load_pid=
	cat "$work/load.out"
	check "round $r (http): clients came back and ran to their end with expected outcomes only" 0 "$rc"
	lost=$(sed -n 's/.*clients that lost their connection: //p' "$work/load.out")
	if [ "${lost:-0}" -gt 0 ]; then
		ok "round $r (http): the crash cut off calls in flight ($lost clients)"
	else
		not_ok "round $r (http): the crash cut off calls in flight" "no client lost a call"
	fi
	invariants "round $r (http): "
}

started=$(date +%s)
load_round 1 "$ops"
janitor 1
crash_round 2 postmaster
janitor 2
crash_round 3 all
janitor 3
load_round 4 $((ops / 3)) held
janitor 4

psql -XAtq -v ON_ERROR_STOP=1 -f scripts/shim-role.sql -c "
	CREATE ROLE psk_shim_ttl LOGIN IN ROLE psk_shim;
	ALTER ROLE psk_shim_ttl SET psk.reservation_ttl = $ttl;
	ALTER ROLE psk_shim_ttl SET log_parameter_max_length = 0;
	ALTER ROLE psk_shim_ttl SET log_parameter_max_length_on_error = 0" >/dev/null || exit 1
if [ ! -x shim/psk-shim ]; then
	not_ok "the shims start" "shim/psk-shim is not built (make shim)"
	finish
fi
if start_shims; then ok "the shims start"; else not_ok "the shims start" "see the shim log"; finish; fi
http_ops=$((ops / 5))
http_round 5 "$http_ops"
janitor 5
http_crash_round 6 $((ops / 3))
janitor 6
echo "# shims killed and restarted: 1 (round 6)"

# Round 7, holds: renewers, retries with one request_id (also at once), a
# quota, short holds and sweeps (holds.sql, holds.pgbench), then the
# invariants of holds_invariants.sql once every hold has lapsed.
echo "# round 7: holds, 8 pgbench clients for ${PSK_STRESS_HOLDS_SECONDS:-8} s"
psql -XAtq -v ON_ERROR_STOP=1 -f test/stress/holds.sql >/dev/null || not_ok "round 7: setup" "holds.sql failed"
"$PGBIN/pgbench" -n -c 8 -j 2 -T "${PSK_STRESS_HOLDS_SECONDS:-8}" -f test/stress/holds.pgbench >"$work/holds.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] || grep -i 'error\|abort' "$work/holds.out" | head -5
check "round 7: every pgbench client ran to its end with expected outcomes only" 0 "$rc"
echo "# round 7: $(sql "SELECT string_agg(kind || ' ' || outcome || ' ' || n, ', ' ORDER BY kind, outcome) FROM (SELECT kind, outcome, count(*) n FROM stress.h_calls GROUP BY 1, 2) s")"
sleep 2.5
inv=$(psql -XAtq -v ON_ERROR_STOP=1 -f test/stress/holds_invariants.sql 2>&1)
value() { echo "$inv" | grep "^$1|" | cut -d'|' -f2; }
check "round 7: no code held past its expiry after a sweep" 0 "$(value 'held past expiry after a sweep')"
check "round 7: codes in use expired too" true "$(value 'EXPIRED of a code in use')"
check "round 7: no request_id reserved twice (the reserved codes are those remembered)" 0 "$(value 'reserves not of one remembered request')"
check "round 7: retries were answered from memory" true "$(value 'retries answered from memory')"
check "round 7: no user above the quota of 5 at any instant of the log" t \
	"$([ "$(value 'most held by one user, replayed from the log')" -le 5 ] 2>/dev/null && echo t || value 'most held by one user, replayed from the log')"
check "round 7: the quota refused reserves" true "$(value 'reserves refused at the quota')"
check "round 7: holders renewed" true "$(value 'renewals')"

echo "# $(ls "$work"/acks/*.tsv | wc -l) ack files, $(cat "$work"/acks/*.tsv | wc -l) acknowledgement lines"
echo "# whole run: $(($(date +%s) - started)) s after setup; crashes survived: $(sql "SELECT count(*) FROM stress.rounds WHERE kind = 'crash'")"
finish
