# Shared by scripts/run-ha.sh, scripts/stop.sh and test/failover/run.sh
# (source after scripts/lib.sh): a pg_auto_failover formation on loopback,
# a monitor and two PostgreSQL nodes, each under its own `pg_autoctl run`
# as the postgres user.
#
#   ha_start DIR MONITOR_PORT PORT1 PORT2 sync|async
#       monitor in DIR/monitor, nodes in DIR/node1 (the first primary) and
#       DIR/node2, psk preloaded on both, database psk with the extension;
#       sync: node2 is in the write quorum (a commit waits for it); async:
#       it is not (synchronous_standby_names stays empty)
#   ha_stop DIR          stop every pg_autoctl and PostgreSQL of DIR
#   ha_sql DIR NODE SQL  one value from database psk on NODE (or monitor)
#   ha_primary DIR       the port of the node the monitor calls primary now
#   ha_conninfo DIR      the multi-host libpq string for the shim
#
# pg_autoctl keeps its state and configuration under XDG_DATA_HOME and
# XDG_CONFIG_HOME: both are set inside DIR.  Its pid files go to
# /tmp/pg_autoctl/DIR, which ha_stop removes.

HA_AUTOCTL=$(command -v pg_autoctl || echo /usr/bin/pg_autoctl)

# Failover timing of the monitor (milliseconds; PostgreSQL's defaults in
# brackets).  The defaults detect a dead primary in about 30 s; these make
# it a few seconds, fit for loopback and a LAN, not for a flaky WAN.
HA_MONITOR_SETTINGS=(
	"pgautofailover.health_check_period = 1000"            # [5000]
	"pgautofailover.health_check_timeout = 1000"           # [5000]
	"pgautofailover.health_check_max_retries = 1"          # [2]
	"pgautofailover.health_check_retry_delay = 500"        # [2000]
	"pgautofailover.node_considered_unhealthy_timeout = 3000" # [20000]
	"pgautofailover.primary_demote_timeout = 3000"         # [30000]
)

ha_autoctl() {
	local dir=$1
	shift
	as_pg env XDG_CONFIG_HOME="$dir/config" XDG_DATA_HOME="$dir/share" \
		PG_CONFIG="$PSK_PGROOT$("$PG_CONFIG" --bindir)/pg_config" \
		"$HA_AUTOCTL" "$@"
}

# ha_run DIR NAME ARGS...: a pg_autoctl in the background, in a session of
# its own (so that the test can kill a node's whole tree), its pid in
# DIR/NAME.pid and its log in DIR/NAME.log.
ha_run() {
	local dir=$1 name=$2
	shift 2
	setsid bash -c '"$@"' ha_run ha_autoctl "$dir" "$@" \
		>"$dir/$name.log" 2>&1 </dev/null &
	echo $! >"$dir/$name.pid"
	disown $!
}
export -f ha_autoctl as_pg
export HA_AUTOCTL PG_CONFIG PSK_PGROOT

ha_monitor_uri() {
	echo "postgres://autoctl_node@127.0.0.1:$(cat "$1/monitor.port")/pg_auto_failover?sslmode=disable"
}

ha_port() { cat "$1/$2.port"; }

ha_sql() {
	local db=psk
	[ "$2" = monitor ] && db=pg_auto_failover
	"$PGBIN/psql" -XAtq -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(ha_port "$1" "$2")" \
		-U postgres -d "$db" -c "$3"
}

# the reported state of NAME on the monitor (e.g. primary, secondary)
ha_state() {
	ha_sql "$1" monitor "SELECT reportedstate || '/' || goalstate FROM pgautofailover.node WHERE nodename = '$2'" 2>/dev/null
}

ha_primary() {
	ha_sql "$1" monitor "SELECT nodeport FROM pgautofailover.node
	                      WHERE reportedstate IN ('primary', 'wait_primary', 'single')
	                        AND goalstate IN ('primary', 'wait_primary', 'single')" 2>/dev/null | head -1
}

ha_conninfo() {
	echo "host=127.0.0.1,127.0.0.1 port=$(ha_port "$1" node1),$(ha_port "$1" node2) dbname=psk user=psk_shim target_session_attrs=read-write connect_timeout=2"
}

# ha_wait DIR NAME STATE SECONDS: until NAME's reported and goal state are
# STATE (e.g. secondary/secondary)
ha_wait() {
	local i
	for ((i = 0; i < $4 * 2; i++)); do
		[ "$(ha_state "$1" "$2")" = "$3" ] && return 0
		sleep 0.5
	done
	echo "ha: $2 did not reach $3 in $4 s (it is $(ha_state "$1" "$2"))" >&2
	return 1
}

ha_start() {
	local dir=$1 mport=$2 p1=$3 p2=$4 mode=$5
	local quorum=true pgctl=$PGBIN/pg_ctl
	[ "$mode" = async ] && quorum=false
	mkdir -p "$dir"
	dir=$(realpath "$dir")
	[ "$(id -u)" = 0 ] && chown postgres: "$dir"
	echo "$mport" >"$dir/monitor.port"
	echo "$p1" >"$dir/node1.port"
	echo "$p2" >"$dir/node2.port"

	ha_autoctl "$dir" create monitor --pgdata "$dir/monitor" --pgport "$mport" \
		--hostname 127.0.0.1 --auth trust --no-ssl --pgctl "$pgctl" \
		>"$dir/monitor-create.log" 2>&1 || {
		cat "$dir/monitor-create.log" >&2
		return 1
	}
	local s
	for s in "${HA_MONITOR_SETTINGS[@]}"; do
		echo "$s" >>"$dir/monitor/postgresql.conf"
	done
	ha_run "$dir" monitor run --pgdata "$dir/monitor"
	local i
	for ((i = 0; i < 60; i++)); do
		ha_sql "$dir" monitor "SELECT 1" >/dev/null 2>&1 && break
		sleep 0.5
	done

	# node1: our own initdb, so that psk is preloaded from the first start;
	# node2 is a pg_basebackup of it and inherits postgresql.conf.
	cluster_init "$dir/node1" || return 1
	cat >>"$dir/node1/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'psk'
psk.database = 'psk'
wal_log_hints = on
EOF
	ha_run "$dir" node1 create postgres --pgdata "$dir/node1" --pgport "$p1" \
		--name node1 --hostname 127.0.0.1 --pghost "$dir" --dbname psk --auth trust --no-ssl \
		--pgctl "$pgctl" --monitor "$(ha_monitor_uri "$dir")" --run
	ha_wait "$dir" node1 single/single 90 || return 1
	ha_sql "$dir" node1 "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS psk CASCADE" >/dev/null || return 1
	"$PGBIN/psql" -XAtq -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$p1" -U postgres -d psk \
		-f scripts/shim-role.sql >/dev/null || return 1

	ha_run "$dir" node2 create postgres --pgdata "$dir/node2" --pgport "$p2" \
		--name node2 --hostname 127.0.0.1 --pghost "$dir" --dbname psk --auth trust --no-ssl \
		--pgctl "$pgctl" --monitor "$(ha_monitor_uri "$dir")" \
		--replication-quorum "$quorum" --run
	# pg_basebackup asks for a spread checkpoint (minutes with the default
	# checkpoint_timeout); an immediate one hurries it along.
	for ((i = 0; i < 240; i++)); do
		[ "$(ha_state "$dir" node2)" = secondary/secondary ] && break
		ha_sql "$dir" node1 "CHECKPOINT" >/dev/null 2>&1
		sleep 0.5
	done
	ha_wait "$dir" node2 secondary/secondary 5 || return 1
	ha_wait "$dir" node1 primary/primary 30 || return 1
}

# The monitor first, so that stopping one node starts no failover.
ha_stop() {
	local dir=$1 name pid
	[ -d "$dir" ] || return 0
	dir=$(realpath "$dir")
	for name in monitor node2 node1; do
		[ -f "$dir/$name/postmaster.pid" ] || [ -f "$dir/$name.pid" ] || continue
		ha_autoctl "$dir" stop --pgdata "$dir/$name" --fast >/dev/null 2>&1 || true
	done
	for name in monitor node2 node1; do
		pid=$(cat "$dir/$name.pid" 2>/dev/null) || continue
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL -- "-$pid" 2>/dev/null || true
		rm -f "$dir/$name.pid"
	done
	for name in node2 node1 monitor; do
		cluster_stop "$dir/$name" immediate
	done
	rm -rf "/tmp/pg_autoctl$dir"
	rmdir --ignore-fail-on-non-empty "$(dirname "/tmp/pg_autoctl$dir")" 2>/dev/null
}

# ha_resume DIR: start again a formation that ha_stop stopped
ha_resume() {
	local dir=$1 name i
	ha_run "$dir" monitor run --pgdata "$dir/monitor"
	for ((i = 0; i < 60; i++)); do
		ha_sql "$dir" monitor "SELECT 1" >/dev/null 2>&1 && break
		sleep 0.5
	done
	for name in node1 node2; do
		ha_run "$dir" "$name" run --pgdata "$dir/$name"
	done
	for ((i = 0; i < 120; i++)); do
		[ -n "$(ha_primary "$dir")" ] &&
			ha_sql "$dir" "$(ha_primary_name "$dir")" "SELECT 1" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	echo "ha: no primary after 60 s" >&2
	return 1
}

# the name (node1, node2) of the primary now
ha_primary_name() {
	local p
	p=$(ha_primary "$1")
	[ -n "$p" ] || return 1
	[ "$p" = "$(ha_port "$1" node1)" ] && echo node1 || echo node2
}
