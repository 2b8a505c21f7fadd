#!/usr/bin/env bash
# make stop: stop whatever `make run` of this checkout left running (the
# foreground make run, the HTTP shim, the cluster), found by its pid files.
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

# What a make run that was killed outright left behind.
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

[ -n "$stopped" ] && echo "stopped" || echo "nothing was running"
