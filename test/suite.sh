# Shared by the shell suites with a cluster of their own (test/*/run.sh):
# source it after scripts/lib.sh, then
#   suite_cluster NAME    a scratch directory, a free port and PG* for a
#                         throwaway cluster, stopped and removed on exit
#   check NAME EXPECTED ACTUAL
#   sql STATEMENT         one value, tuples only
#   suite_end             prints "N passed, M failed"; fails when any failed

passed=0
failed=0

suite_cluster() {
	work=$(mktemp -d "/tmp/psk-$1.XXXXXX")
	chmod 755 "$work"
	port=$(free_port)
	trap 'cluster_stop "$work/data" immediate; rm -rf "$work"' EXIT
	trap 'exit 130' INT TERM
	export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
}

check() {
	if [ "$2" = "$3" ]; then
		passed=$((passed + 1))
		echo "ok - $1"
	else
		failed=$((failed + 1))
		echo "not ok - $1: expected '$2', got '$3'"
	fi
}

sql() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

suite_end() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
