#!/usr/bin/env bash
# make stop: stop whatever `make run` or `make run-ha` of this checkout left
# running (the foreground make run or run-ha, the HTTP shim, the cluster or
# the pg_auto_failover formation), found by its pid files.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/run-env.sh

stopped=

# A make run in the foreground stops the shim and the cluster itself.
if pid=$(run_pid); then
	echo "stopping make run (pid $pid)"
	stop_pid "$pid" 90
	stopped=1
fi

if pid=$(ha_run_pid); then
	echo "stopping make run-ha (pid $pid)"
	stop_pid "$pid" 90
	stopped=1
fi

# What a make run or run-ha that was killed outright left behind.
pid=$(cat "$rundir/shim.pid" 2>/dev/null)
if proc_is "$pid" psk-shim; then
	echo "stopping the HTTP shim (pid $pid)"
	stop_pid "$pid"
	stopped=1
fi
rm -f "$rundir/shim.pid"

datadir=$(cat "$rundir/datadir" 2>/dev/null)
if [ -n "$datadir" ] && cluster_running "$datadir"; then
	echo "stopping PostgreSQL ($datadir)"
	cluster_stop "$datadir" fast
	stopped=1
fi
rm -f "$rundir/run.pid"

hadir=$(cat "$rundir/hadir" 2>/dev/null)
if [ -n "$hadir" ] && ls "$hadir"/*.pid >/dev/null 2>&1; then
	source scripts/ha-lib.sh
	echo "stopping the pg_auto_failover formation ($hadir)"
	ha_stop "$hadir"
	stopped=1
fi
rm -f "$rundir/run-ha.pid"

[ -n "$stopped" ] && echo "stopped" || echo "nothing was running"
