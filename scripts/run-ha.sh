#!/usr/bin/env bash
# make run-ha: PSK on a pg_auto_failover formation on this machine (README,
# "High availability"): a monitor (127.0.0.1:$PSK_HA_MONITOR_PORT, default
# 5440) and two PostgreSQL nodes (5441 and 5442: node1 starts as the
# primary, node2 its synchronous standby), each under its own `pg_autoctl
# run` as the postgres user, psk preloaded on both, database psk with the
# extension and the demo data (scripts/demo.sql, loaded once), and the HTTP
# shim (127.0.0.1:$PSK_HTTP_PORT, default 8000) with both nodes in its
# --db.  Stays in the foreground until Ctrl-C or `make stop`, which stop
# everything; the formation is kept in .psk/ha (or, when the postgres user
# cannot reach the checkout, beside the directory make run would use) and
# started again by the next make run-ha.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/run-env.sh

mport=${PSK_HA_MONITOR_PORT:-5440}
p1=${PSK_HA_PORT1:-5441}
p2=${PSK_HA_PORT2:-5442}
httpport=${PSK_HTTP_PORT:-8000}

die() {
	echo "make run-ha: $*" >&2
	exit 1
}

port_is_free() {
	python3 -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

if pid=$(run_pid) || pid=$(ha_run_pid); then
	die "PSK is already running (pid $pid); stop it first: make stop"
fi

bash scripts/deps.sh || die "missing packages (scripts/deps.sh)"
source scripts/lib.sh
source scripts/ha-lib.sh

if [ -z "$PSK_PGROOT" ] && [ "$(id -u)" != 0 ] &&
	[ ! -w "$("$PG_CONFIG" --sharedir)/extension" ]; then
	die "installing the extension into PostgreSQL needs root: run it as root (sudo make run-ha),
or install into a private copy: bash scripts/private-pg.sh /tmp/pg && PSK_PGROOT=/tmp/pg make run-ha"
fi

mkdir -p "$rundir"
echo "building and installing psk${PSK_PGROOT:+ into $PSK_PGROOT}"
make -s >"$rundir/build.log" 2>&1 || {
	cat "$rundir/build.log" >&2
	die "build failed"
}
make -s install DESTDIR="$PSK_PGROOT" >"$rundir/install.log" 2>&1 || {
	cat "$rundir/install.log" >&2
	die "make install failed"
}
[ -x shim/psk-shim ] || die "shim/psk-shim is not built"

datadir=$(pick_datadir) || exit 1
hadir=$(dirname "$datadir")/ha
echo "$hadir" >"$rundir/hadir"

shim_pid=
stopping=
cleanup() {
	[ -n "$stopping" ] && return
	stopping=1
	trap - INT TERM
	echo
	echo "stopping PSK (HA)"
	if [ -n "$shim_pid" ] && kill -0 "$shim_pid" 2>/dev/null; then
		stop_pid "$shim_pid"
	fi
	rm -f "$rundir/shim.pid"
	ha_stop "$hadir"
	rm -f "$rundir/run-ha.pid"
	echo "stopped"
}
trap cleanup EXIT
trap 'exit 0' INT TERM
echo $$ >"$rundir/run-ha.pid"

# what an earlier run-ha, killed outright, left running
ha_stop "$hadir"
for p in "$mport" "$p1" "$p2" "$httpport"; do
	port_is_free "$p" || die "port $p on 127.0.0.1 is in use; choose others: PSK_HA_MONITOR_PORT, PSK_HA_PORT1, PSK_HA_PORT2, PSK_HTTP_PORT"
done

if [ -f "$hadir/node2.port" ] && [ -d "$hadir/node2" ]; then
	echo "starting the formation in $hadir again"
	if [ "$(cat "$hadir/monitor.port") $(cat "$hadir/node1.port") $(cat "$hadir/node2.port")" != "$mport $p1 $p2" ]; then
		die "the formation in $hadir uses other ports ($(cat "$hadir/monitor.port" "$hadir/node1.port" "$hadir/node2.port" | tr '\n' ' ')); to start afresh: make stop; rm -rf $hadir"
	fi
	ha_resume "$hadir" || die "the formation did not come back (logs: $hadir/*.log)"
else
	rm -rf "$hadir"
	echo "creating a formation in $hadir: monitor, node1, node2 (about 30 s)"
	ha_start "$hadir" "$mport" "$p1" "$p2" sync || die "the formation did not start (logs: $hadir/*.log)"
fi
primary=$(ha_primary_name "$hadir") || die "no primary"
pport=$(ha_port "$hadir" "$primary")
psql_() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pport" -U postgres -d psk "$@"; }

psql_ -c "SET client_min_messages = warning" -c "ALTER EXTENSION psk UPDATE" || die "ALTER EXTENSION psk UPDATE failed"
if [ "$(psql_ -tAc "SELECT count(*) FROM psk.users")" = 0 ]; then
	echo "loading the demo data (scripts/demo.sql)"
	psql_ -1 -At -f scripts/demo.sql | grep -v '^$' || die "could not load the demo data"
else
	echo "database psk has its data already (to start afresh: make stop; rm -rf $hadir)"
fi
psql_ -f scripts/shim-role.sql >/dev/null || die "could not set up the role psk_shim"

conninfo=$(ha_conninfo "$hadir")
url=http://127.0.0.1:$httpport
shim/psk-shim --listen "127.0.0.1:$httpport" --db "$conninfo" >"$rundir/shim.log" 2>&1 &
shim_pid=$!
echo "$shim_pid" >"$rundir/shim.pid"
for _ in $(seq 50); do
	curl -sf "$url/healthz" >/dev/null 2>&1 && break
	kill -0 "$shim_pid" 2>/dev/null || break
	sleep 0.2
done
curl -sf "$url/healthz" >/dev/null 2>&1 || {
	tail -20 "$rundir/shim.log" >&2
	die "the HTTP shim did not come up (log: $rundir/shim.log)"
}

cat <<EOF

PSK is running on a pg_auto_failover formation (synchronous replication).

  monitor  127.0.0.1:$mport   (pg_autoctl show state: see README, High availability)
  node1    127.0.0.1:$p1   node2  127.0.0.1:$p2   primary now: $primary
    psql "host=127.0.0.1,127.0.0.1 port=$p1,$p2 user=postgres dbname=psk target_session_attrs=read-write"
  logs: $hadir/monitor.log, node1.log, node2.log

  HTTP API $url (log: $rundir/shim.log), --db "$conninfo"
  Demo accounts (password Rdl@12345): admin@example.com (admin),
  osv@example.com (pool OSV), hsv@example.com (pool HSV).

Ctrl-C here, or make stop in another shell, stops it.
EOF

while :; do
	if ! kill -0 "$shim_pid" 2>/dev/null; then
		tail -20 "$rundir/shim.log" >&2
		die "the HTTP shim stopped (log: $rundir/shim.log)"
	fi
	kill -0 "$(cat "$hadir/monitor.pid" 2>/dev/null)" 2>/dev/null ||
		die "the monitor's pg_autoctl stopped (log: $hadir/monitor.log)"
	sleep 2 &
	wait $!
done
