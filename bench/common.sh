# shellcheck shell=bash
# bench/common.sh: what bench/bench.sh and bench/scale.sh share.  Source it
# from the top of the repository after scripts/lib.sh.
#
# A throwaway cluster in /tmp/psk-bench.*, stopped and removed on exit, with
# the settings below (printed, and written into every results file).

bench_pg_settings="-c shared_preload_libraries=psk -c shared_buffers=1GB -c max_connections=100 -c max_wal_size=8GB -c checkpoint_timeout=30min -c synchronous_commit=on -c autovacuum_naptime=10s"
ncpu=$(nproc)
mem_gb=$(free -m | awk '/^Mem:/ {printf "%.1f", $2 / 1024}')
git_rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git_dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo "+dirty" || true)
stamp=$(date -u +%Y-%m-%dT%H%MZ)

work=
pg_run_vacuum_more=
shim_pid=
bench_pid= # a pgbench in the background (the soak)
bench_cleanup() {
	[ -n "$bench_pid" ] && kill "$bench_pid" 2>/dev/null
	if [ -n "$shim_pid" ]; then
		kill "$shim_pid" 2>/dev/null && wait "$shim_pid" 2>/dev/null
		shim_pid=
	fi
	if [ -n "$work" ]; then
		cluster_stop "$work/data" immediate
		rm -rf "$work"
	fi
}

die() {
	echo "bench: $*" >&2
	exit 1
}

# need_pkg COMMAND PACKAGE: install a Debian package when its command is missing.
need_pkg() {
	command -v "$1" >/dev/null && return 0
	echo "== installing $2 (apt-get)"
	apt-get install -y "$2" >/dev/null 2>&1 ||
		{ apt-get update >/dev/null 2>&1 && apt-get install -y "$2" >/dev/null 2>&1; } ||
		die "cannot install $2; install it and run again"
}

# bench_start: build, install (into PSK_PGROOT when set), start the cluster.
bench_start() {
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	if [ -n "$PSK_PGROOT" ] && [ ! -x "$PGBIN/postgres" ]; then
		die "PSK_PGROOT=$PSK_PGROOT holds no PostgreSQL (bash scripts/private-pg.sh $PSK_PGROOT)"
	fi
	echo "== build and install${PSK_PGROOT:+ into $PSK_PGROOT}"
	make -s >/dev/null || die "build failed"
	make -s install DESTDIR="$PSK_PGROOT" >/dev/null || die "install failed"
	work=$(mktemp -d /tmp/psk-bench.XXXXXX)
	chmod 755 "$work"
	pgport=$(free_port)
	cluster_init "$work/data" || die "initdb failed"
	# shellcheck disable=SC2086
	cluster_start "$work/data" "$pgport" $bench_pg_settings || die "cluster did not start"
	export PGHOST=127.0.0.1 PGPORT=$pgport PGUSER=postgres PGDATABASE=postgres
	echo "== cluster on port $pgport: postgres $bench_pg_settings"
}

# bench_db NAME CODES: a fresh database NAME (the current PGDATABASE from
# then on) with the extension, the bench users and CODES codes.  Sets
# load_seconds to the time the codes and their countries took.
bench_db() {
	local db=$1 n=$2 t0 t1
	psql -qX -d postgres -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null ||
		die "cannot create database $db"
	export PGDATABASE=$db
	psql -qX -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "CREATE EXTENSION psk CASCADE" >/dev/null &&
		psql -qX -v ON_ERROR_STOP=1 -f bench/load.sql >/dev/null || die "bench/load.sql failed"
	# bench/sql_cycle.sql holds its codes as user id :client_id + 2
	[ "$(psql -XAtc "SELECT id FROM psk.users WHERE email = 'bench1@example.com'")" = 2 ] ||
		die "bench1@example.com is not user 2, as bench/sql_cycle.sql expects"
	t0=$(date +%s.%N)
	load_codes "$n"
	t1=$(date +%s.%N)
	load_seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
	psql -qX -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
}

# load_codes N: BENCH-000000001 .. N with COPY, half OSV, a quarter each HSV
# and COMMON; the OSV and HSV codes valid in UK (one INSERT ... SELECT).
# The foreign-key triggers are skipped for the load (session_replication_role
# = replica): every link is built from rows that exist.
load_codes() {
	local n=$1
	awk -v n="$n" 'BEGIN {
		for (i = 1; i <= n; i++)
			printf "BENCH-%09d\t%s\n", i, (i % 4 < 2) ? "OSV" : (i % 4 == 2) ? "HSV" : "COMMON"
	}' | psql -qX -v ON_ERROR_STOP=1 -c "COPY psk.codes (code, pool) FROM STDIN" >/dev/null ||
		die "COPY of $n codes failed"
	psql -qX -v ON_ERROR_STOP=1 >/dev/null <<-'SQL' || die "country links failed"
	SET session_replication_role = replica;
	INSERT INTO psk.code_countries (code_id, country_id)
	SELECT c.id, k.id FROM psk.codes c, psk.countries k WHERE c.pool <> 'COMMON';
	SQL
}

# pg_run NAME SCRIPT CLIENTS SECONDS: one pgbench -M prepared run from a
# vacuumed table (no run inherits another's dead rows; pg_run_vacuum_more:
# other tables to vacuum, e.g. run m's).  Prints
# "OPS P50_MS P99_MS ERRORS MAX_MS" (latency per transaction, from the -l log).
pg_run() {
	local name=$1 script=$2 c=$3 s=$4 j out tps errs
	j=$((c < ncpu ? c : ncpu))
	out=$work/$name-c$c
	psql -qX -c "VACUUM psk.codes, psk.audit_log, psk.code_countries${pg_run_vacuum_more:+, $pg_run_vacuum_more}" >/dev/null
	"$PGBIN/pgbench" -n -M prepared -c "$c" -j "$j" -T "$s" -l --log-prefix="$out.log" \
		-f "$script" >"$out.out" 2>&1
	tps=$(awk '/^tps = / {printf "%.0f", $3; exit}' "$out.out")
	errs=$(awk '/number of failed transactions/ {f = $5} /aborted/ {a++} END {print f + a}' "$out.out")
	if [ -z "$tps" ]; then
		echo "pgbench $name failed:" >&2
		tail -5 "$out.out" >&2
		echo "0 - - 1 -"
		return
	fi
	# the 3rd field of each log line: the transaction's latency in microseconds
	cat "$out.log".* | awk '$3 ~ /^[0-9]+$/ {print $3}' | sort -n |
		awk -v ops="$tps" -v errs="$errs" '{a[NR] = $1}
			END {
				if (NR == 0) { print ops, "-", "-", errs, "-"; exit }
				i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
				i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
				printf "%s %.3f %.3f %d %.3f\n", ops, a[i50] / 1000, a[i99] / 1000, errs, a[NR] / 1000
			}'
	rm -f "$out.log".*
}
