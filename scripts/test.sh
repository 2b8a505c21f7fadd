#!/usr/bin/env bash
# make test: install what is missing, build, and run every test against a
# throwaway cluster on a free loopback port.  Ends with "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
source scripts/lib.sh

bash scripts/deps.sh || exit 1

make -s >/dev/null || { echo "build failed"; exit 1; }
make -s install DESTDIR="$PSK_PGROOT" >/dev/null || { echo "install failed"; exit 1; }

work=$(mktemp -d /tmp/psk-test.XXXXXX)
chmod 755 "$work"
port=$(free_port)
cleanup() {
	cluster_stop "$work/data" immediate
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$work/data" || exit 1
cluster_start "$work/data" "$port" || exit 1
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres

passed=0
failed=0
count() { # count PASSED FAILED
	passed=$((passed + $1))
	failed=$((failed + $2))
}

echo "== pg_regress (sql/, expected/)"
make -s installcheck >"$work/regress.out" 2>&1
rc=$?
cat "$work/regress.out"
ok=$(grep -cE '\.\.\. ok' "$work/regress.out")
bad=$(grep -cE '\.\.\. FAILED' "$work/regress.out")
[ $rc -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
count "$ok" "$bad"
[ "$bad" -gt 0 ] && [ -f regression.diffs ] && head -300 regression.diffs

echo "== pgTAP (test/*.sql)"
psql -qX -c "CREATE DATABASE psk_tap" >/dev/null
psql -qX -d psk_tap -c "CREATE EXTENSION pgtap; CREATE EXTENSION psk CASCADE" >/dev/null
if ls test/*.sql >/dev/null 2>&1; then
	pg_prove -d psk_tap --verbose test/*.sql >"$work/tap.out" 2>&1
	cat "$work/tap.out"
	count "$(grep -cE '^ok [0-9]+' "$work/tap.out" || true)" \
		"$(grep -cE '^not ok [0-9]+' "$work/tap.out" || true)"
	grep -q '^Result: PASS' "$work/tap.out" || failed=$((failed + 1))
fi

for t in test/worker/run.sh test/http/run.sh test/stress/run.sh; do
	[ -x "$t" ] || continue
	echo "== $t"
	"$t" >"$work/suite.out" 2>&1
	rc=$?
	cat "$work/suite.out"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$work/suite.out" | tail -1)
	if [ -n "$line" ]; then
		count "$(echo "$line" | cut -d' ' -f1)" "$(echo "$line" | cut -d' ' -f3)"
	fi
	[ $rc -eq 0 ] || [ -n "$line" ] || failed=$((failed + 1))
done

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
