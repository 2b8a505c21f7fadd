#!/usr/bin/env bash
# Moving the old service's data: a database built as SEED-DATA.md describes
# it (test/migrate/old_service.py), the README's steps of "Moving from the
# old service" run as written, then test_migrate.py checks the result over
# SQL and HTTP.  Ends with "N passed, M failed".
#
# Run by scripts/test.sh (PSK_TEST_WORK set): it uses that cluster and
# makes its own database there.  Run alone: it builds, installs into
# $PSK_PGROOT and starts a throwaway cluster of its own.
#   PSK_MIGRATE_CODES (3000): how many old codes to make.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
# the shims' admin ports (/metrics): any free port, unless a test names one
export PSK_ADMIN_LISTEN=127.0.0.1:0

own_cluster=
if [ -n "${PSK_TEST_WORK:-}" ] && [ -n "${PGPORT:-}" ]; then
	work=$(mktemp -d "$PSK_TEST_WORK/migrate.XXXXXX")
else
	make -s >/dev/null || { echo "build failed"; exit 1; }
	make -s install DESTDIR="$PSK_PGROOT" >/dev/null || { echo "install failed"; exit 1; }
	work=$(mktemp -d /tmp/psk-migrate.XXXXXX)
	own_cluster=$work/data
fi
chmod 755 "$work"
[ -x shim/psk-shim ] || { echo "shim/psk-shim is not built"; exit 1; }

cleanup() {
	for f in "$work"/*.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	if [ -n "$own_cluster" ]; then
		cluster_stop "$own_cluster" immediate
	else
		psql -qX -d postgres -c "DROP DATABASE IF EXISTS promo WITH (FORCE)" \
			-c "DROP DATABASE IF EXISTS promo_refusals WITH (FORCE)" \
			-c "DROP ROLE IF EXISTS psk_shim" -c "DROP ROLE IF EXISTS regress_migrate_app" >/dev/null 2>&1
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "$own_cluster" ]; then
	pgport=$(free_port)
	cluster_init "$own_cluster" || exit 1
	cluster_start "$own_cluster" "$pgport" || exit 1
	export PGHOST=127.0.0.1 PGPORT=$pgport PGUSER=postgres
fi
unset PGDATABASE

# The old service's data, made with Debian's python3 (python3-passlib).
/usr/bin/python3 test/migrate/old_service.py "$work/old" "${PSK_MIGRATE_CODES:-3000}" >"$work/old.json" || {
	echo "not ok - making the old database's data failed"
	echo "0 passed, 1 failed"
	exit 1
}

PSK_MIGRATE_WORK=$work PSK_SHIM=shim/psk-shim python3 test/migrate/test_migrate.py
