#!/usr/bin/env bash
# make run: build and install psk, start a PostgreSQL cluster of this checkout
# (./.psk/data, 127.0.0.1:$PSK_PGPORT, default 5433) with the expiry worker,
# make database psk with the extension and the demo data (scripts/demo.sql,
# loaded once: while psk has no users), start the HTTP shim when it is built
# (127.0.0.1:$PSK_HTTP_PORT, default 8000), say how to connect, and stay in
# the foreground until Ctrl-C or `make stop`, which stop both.
#
# Run it as root on Debian 12 (it installs missing packages and installs the
# extension system-wide), or as anyone with PSK_PGROOT=DIR (a private
# PostgreSQL tree, scripts/private-pg.sh) to install there instead.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/run-env.sh

pgport=${PSK_PGPORT:-5433}
httpport=${PSK_HTTP_PORT:-8000}

die() {
	echo "make run: $*" >&2
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

# Another `make run` of this checkout still in the foreground?
if pid=$(run_pid); then
	die "PSK is already running (make run, pid $pid).
  connect: psql -h 127.0.0.1 -p $(cat "$rundir/pgport" 2>/dev/null || echo "$pgport") -U postgres -d psk
  stop it: make stop"
fi

if pid=$(ha_run_pid); then
	die "make run-ha is running (pid $pid); stop it first: make stop"
fi

# First the packages: lib.sh asks pg_config where PostgreSQL is.
bash scripts/deps.sh || die "missing packages (scripts/deps.sh)"
source scripts/lib.sh

# Installing into the system's PostgreSQL needs root.
if [ -z "$PSK_PGROOT" ] && [ "$(id -u)" != 0 ] &&
	[ ! -w "$("$PG_CONFIG" --sharedir)/extension" ]; then
	die "installing the extension into PostgreSQL needs root: run it as root (sudo make run),
or install into a private copy: bash scripts/private-pg.sh /tmp/pg && PSK_PGROOT=/tmp/pg make run"
fi
if [ -n "$PSK_PGROOT" ] && [ ! -x "$PGBIN/postgres" ]; then
	die "PSK_PGROOT=$PSK_PGROOT holds no PostgreSQL; make one with: bash scripts/private-pg.sh $PSK_PGROOT"
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

# Where the cluster lives: ./.psk/data, unless the postgres user cannot reach
# this checkout (e.g. a clone in /root, which is mode 700).
datadir=$(pick_datadir) || exit 1
echo "$datadir" >"$rundir/datadir"
afresh="make stop; rm -rf .psk"
case $datadir in "$rundir"/*) ;; *) afresh="$afresh $(dirname "$datadir")" ;; esac

# From here on, whatever happens, stop what this run started.
shim_pid=
stopping=
cleanup() {
	[ -n "$stopping" ] && return
	stopping=1
	trap - INT TERM
	echo
	echo "stopping PSK"
	if [ -n "$shim_pid" ] && kill -0 "$shim_pid" 2>/dev/null; then
		stop_pid "$shim_pid"
	fi
	rm -f "$rundir/shim.pid"
	cluster_stop "$datadir" fast
	rm -f "$rundir/run.pid"
	echo "stopped"
}
trap cleanup EXIT
trap 'exit 0' INT TERM
echo $$ >"$rundir/run.pid"

# A cluster left running by an earlier run (killed without its clean-up)
# still has the old psk library loaded: restart it.
if cluster_running "$datadir"; then
	echo "stopping the cluster an earlier make run left running"
	cluster_stop "$datadir" fast
fi
port_is_free "$pgport" ||
	die "port $pgport on 127.0.0.1 is in use (another PostgreSQL?); choose another: PSK_PGPORT=5434 make run"

if [ ! -f "$datadir/PG_VERSION" ]; then
	echo "creating a cluster in $datadir"
	cluster_init "$datadir" || die "initdb failed"
else
	echo "reusing the cluster in $datadir"
fi
cluster_start "$datadir" "$pgport" -c shared_preload_libraries=psk -c psk.database=psk -c autovacuum_naptime=10s ||
	die "PostgreSQL did not start (log above)"
echo "$pgport" >"$rundir/pgport"

export PGHOST=127.0.0.1 PGPORT=$pgport PGUSER=postgres
psql_() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

if [ -z "$(psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'psk'")" ]; then
	psql_ -d postgres -c "CREATE DATABASE psk" || die "could not create database psk"
fi
# The extension's install script as installed now: when it changed since the
# extension was created here, the database still has the old objects.
version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" psk.control)
script=$PSK_PGROOT$("$PG_CONFIG" --sharedir)/extension/psk--$version.sql
sum=$(md5sum <"$script" | cut -d' ' -f1)
if [ -z "$(psql_ -d psk -tAc "SELECT 1 FROM pg_extension WHERE extname = 'psk'")" ]; then
	psql_ -d psk -c "SET client_min_messages = warning" -c "CREATE EXTENSION psk CASCADE" ||
		die "could not install the extension in database psk"
	echo "$sum" >"$rundir/extension.md5"
else
	before=$(psql_ -d psk -tAc "SELECT extversion FROM pg_extension WHERE extname = 'psk'")
	psql_ -d psk -c "SET client_min_messages = warning" -c "ALTER EXTENSION psk UPDATE" || die "ALTER EXTENSION psk UPDATE failed"
	if [ "$before" != "$version" ]; then
		echo "extension psk updated from $before to $version"
		echo "$sum" >"$rundir/extension.md5"
	elif [ "$sum" != "$(cat "$rundir/extension.md5" 2>/dev/null)" ]; then
		echo "warning: the extension's install script changed since database psk was made, so it may lack"
		echo "  new functions; to start afresh: $afresh"
	fi
fi
if [ "$(psql_ -d psk -tAc "SELECT count(*) FROM psk.users")" = 0 ]; then
	echo "loading the demo data (scripts/demo.sql)"
	psql_ -d psk -1 -At -f scripts/demo.sql | grep -v '^$' || die "could not load the demo data"
else
	echo "database psk has its data already (the demo data is loaded only once; to start afresh: $afresh)"
fi

# The shim connects as psk_shim, which may only call the HTTP functions.
psql_ -d psk -f scripts/shim-role.sql >/dev/null || die "could not set up the role psk_shim"
# It runs beside the database: over the cluster's Unix socket (in the data
# folder), each request saves a round through the loopback's TCP stack;
# over TCP when the folder's path is too long for a socket's name.
conninfo="host=$(shim_db_host "$datadir") port=$pgport dbname=psk user=psk_shim"
url=http://127.0.0.1:$httpport
# the admin port (/metrics, /live, /ready): the next one, 8001 by default
adminport=${PSK_ADMIN_PORT:-$((httpport + 1))}
if [ -x shim/psk-shim ]; then
	port_is_free "$httpport" ||
		die "port $httpport on 127.0.0.1 is in use; choose another: PSK_HTTP_PORT=8010 make run"
	port_is_free "$adminport" ||
		die "port $adminport on 127.0.0.1 (the admin port) is in use; choose another: PSK_ADMIN_PORT=8011 make run"
	shim/psk-shim --listen "127.0.0.1:$httpport" --admin-listen "127.0.0.1:$adminport" --db "$conninfo" >"$rundir/shim.log" 2>&1 &
	shim_pid=$!
	echo "$shim_pid" >"$rundir/shim.pid"
	for _ in $(seq 50); do
		curl -sf "$url/healthz" >/dev/null 2>&1 && break
		kill -0 "$shim_pid" 2>/dev/null || break
		sleep 0.2
	done
	if ! curl -sf "$url/healthz" >/dev/null 2>&1; then
		grep -v healthz "$rundir/shim.log" | tail -20 >&2
		die "the HTTP shim did not come up (log: $rundir/shim.log)"
	fi
fi

cat <<EOF

PSK is running.

  PostgreSQL 127.0.0.1:$pgport, database psk (expiry worker on; server log: $datadir/server.log)
    psql -h 127.0.0.1 -p $pgport -U postgres -d psk
    psql -h 127.0.0.1 -p $pgport -U postgres -d psk -c "SELECT * FROM psk_reserve('osv@example.com', 'tester')"

  Demo accounts (password Rdl@12345): admin@example.com (admin),
  osv@example.com (pool OSV), hsv@example.com (pool HSV).
EOF
if [ -n "$shim_pid" ]; then
	cat <<EOF

  HTTP API $url (log: $rundir/shim.log)
    TOKEN=\$(curl -s $url/auth/login -d username=osv@example.com -d password=Rdl@12345 | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
    curl -s $url/users/reserve -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' -d '{"tester_name": "tester"}'
    curl -s $url/users/my -H "Authorization: Bearer \$TOKEN"
    curl -s $url/users/release -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' -d '{"code": "PUT-THE-CODE-HERE"}'

  Metrics (admin port, no auth) http://127.0.0.1:$adminport
    curl -s http://127.0.0.1:$adminport/metrics
    curl -s http://127.0.0.1:$adminport/ready
EOF
else
	echo
	echo "  (no HTTP shim: shim/psk-shim is not built)"
fi
cat <<EOF

Ctrl-C here, or make stop in another shell, stops it.
EOF

# Stay in the foreground; notice when a part dies.
while :; do
	if [ -n "$shim_pid" ] && ! kill -0 "$shim_pid" 2>/dev/null; then
		grep -v healthz "$rundir/shim.log" | tail -20 >&2
		die "the HTTP shim stopped (log: $rundir/shim.log)"
	fi
	cluster_running "$datadir" || die "PostgreSQL stopped (log: $datadir/server.log)"
	sleep 2 &
	wait $!
done
