# Shared shell helpers: throwaway PostgreSQL clusters on loopback.
# Source it; every function is safe to call as root (PostgreSQL then runs as
# the postgres user) or as an ordinary user.

PG_CONFIG=${PG_CONFIG:-pg_config}
# PSK_PGROOT: a private copy of the PostgreSQL tree (scripts/private-pg.sh)
# to install into and run from, so that several checkouts can test side by
# side without sharing the system's extension directory.
PSK_PGROOT=${PSK_PGROOT:-}
PGBIN=$PSK_PGROOT$("$PG_CONFIG" --bindir)

# Run a command as the owner of the cluster files.  As root, from /: the
# postgres user may not be allowed into the caller's directory.
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# A free TCP port on 127.0.0.1.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# cluster_init DIR: a new cluster with trust auth on loopback only.
cluster_init() {
	local dir=$1
	dir=$(realpath -m "$dir")
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres: "$dir"
	chmod 700 "$dir"
	as_pg "$PGBIN/initdb" -D "$dir" -U postgres -A trust -E UTF8 \
		--locale=C.UTF-8 --no-sync >"$dir.initdb.log" 2>&1 || {
		cat "$dir.initdb.log" >&2
		return 1
	}
}

# cluster_start DIR PORT [postgres -c options...]
cluster_start() {
	local dir=$1 port=$2
	dir=$(realpath -m "$dir")
	shift 2
	local opts="-p $port -k $dir -c listen_addresses=127.0.0.1 $*"
	as_pg "$PGBIN/pg_ctl" -D "$dir" -o "$opts" -l "$dir/server.log" -w -t 60 start >/dev/null || {
		cat "$dir/server.log" >&2
		return 1
	}
}

# shim_db_host DIR: the host psk-shim reaches the cluster of DIR at: its
# Unix socket (cluster_start puts it in DIR), or 127.0.0.1 when DIR's path
# is too long for a socket's name (107 bytes, with "/.s.PGSQL.PORT") or
# the caller is not root (DIR is the postgres user's, mode 0700).
shim_db_host() {
	local dir
	dir=$(realpath -m "$1")
	if [ ${#dir} -le 80 ] && [ "$(id -u)" = 0 ]; then echo "$dir"; else echo 127.0.0.1; fi
}

# cluster_stop DIR [mode]: stop it if it runs; never fails.
cluster_stop() {
	local dir=$1 mode=${2:-fast}
	dir=$(realpath -m "$dir")
	[ -f "$dir/postmaster.pid" ] || return 0
	as_pg "$PGBIN/pg_ctl" -D "$dir" -m "$mode" -w -t 60 stop >/dev/null 2>&1 || true
}
