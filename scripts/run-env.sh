# Shared by scripts/run.sh and scripts/stop.sh (source after scripts/lib.sh,
# from the top of the checkout): where `make run` keeps its state, and how to
# find what it left running.
#   .psk/run.pid    the make run in the foreground
#   .psk/shim.pid   the HTTP shim
#   .psk/datadir    the cluster's data directory (normally .psk/data)
#   .psk/pgport     its port
rundir=$(pwd)/.psk

# proc_is PID WORD: PID is alive and its command line contains WORD (a pid
# file may outlive its process, and the pid be reused).
proc_is() {
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null &&
		tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- "$2"
}

# The pid of a make run of this checkout in the foreground, if any.
run_pid() {
	local pid
	pid=$(cat "$rundir/run.pid" 2>/dev/null) || return 1
	[ "$pid" != "$$" ] && proc_is "$pid" scripts/run.sh && echo "$pid"
}

# stop_pid PID [SECONDS]: TERM, then KILL after SECONDS (default 10).
stop_pid() {
	local pid=$1 secs=${2:-10}
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq $((secs * 5))); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.2
	done
	kill -KILL "$pid" 2>/dev/null || true
}

cluster_running() {
	[ -f "$1/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$1" status >/dev/null 2>&1
}

# The data directory for this checkout: .psk/data, where the cluster's owner
# (postgres, when we are root) can reach it; otherwise a directory of its
# own under /var/lib/postgresql, with a note saying why.
pick_datadir() {
	mkdir -p "$rundir"
	if [ "$(id -u)" != 0 ] || runuser -u postgres -- test -x "$rundir"; then
		echo "$rundir/data"
		return
	fi
	local d=/ blocked=
	local IFS=/
	for part in ${rundir#/}; do
		d=${d%/}/$part
		if ! runuser -u postgres -- test -x "$d"; then
			blocked=$d
			break
		fi
	done
	unset IFS
	local alt
	alt=/var/lib/postgresql/psk-run/$(basename "$(pwd)")-$(pwd | md5sum | cut -c1-8)/data
	if [ ! -d /var/lib/postgresql ]; then
		echo "make run: the postgres user cannot reach $rundir ($blocked is not traversable for it: $(stat -c %A "$blocked"))" >&2
		echo "  clone the repository elsewhere (e.g. /opt or /srv), or: chmod o+x $blocked" >&2
		return 1
	fi
	{
		echo "note: the postgres user cannot reach $rundir:"
		echo "  $blocked is not traversable for it ($(stat -c %A "$blocked"));"
		echo "  so the cluster lives in $alt instead."
		echo "  (To keep it in the checkout: chmod o+x $blocked, or clone elsewhere, e.g. /opt or /srv.)"
	} >&2
	mkdir -p "$(dirname "$alt")"
	echo "$alt"
}

# The pid of a make run-ha of this checkout in the foreground, if any.
ha_run_pid() {
	local pid
	pid=$(cat "$rundir/run-ha.pid" 2>/dev/null) || return 1
	[ "$pid" != "$$" ] && proc_is "$pid" scripts/run-ha.sh && echo "$pid"
}
