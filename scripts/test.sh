#!/usr/bin/env bash
# make test: install what is missing, build, and run the tests against a
# throwaway cluster on a free loopback port.  Whatever happens, the cluster is
# stopped and the last line is "N passed, M failed" (exit status 0 only when
# nothing failed and something passed).
#
#   bash scripts/test.sh                  everything
#   bash scripts/test.sh regress          only pg_regress (sql/, expected/)
#   bash scripts/test.sh tap              only pgTAP (test/*.sql)
#   bash scripts/test.sh worker http      only those suites (worker contention
#                                         http attack migrate browser backup
#                                         upgrade stress failover fuzz)
#   bash scripts/test.sh sanitize         pg_regress under ASan and UBSan
#   bash scripts/test.sh sql/install.sql test/audit.sql   only these files
#
# PSK_PGROOT=DIR (see scripts/private-pg.sh) installs into and runs from a
# private copy of PostgreSQL instead of the system's.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
work=
count() { # count PASSED FAILED
	passed=$((passed + $1))
	failed=$((failed + $2))
}

finish() {
	trap - EXIT INT TERM
	if [ -n "$work" ]; then
		cluster_stop "$work/data" immediate
		rm -rf "$work"
	fi
	echo
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] && exit 0
	exit 1
}
trap finish EXIT
trap 'echo "interrupted"; count 0 1; finish' INT TERM

# A step that cannot go on: counts as one failure, ends the run.
abort() {
	echo "$*" >&2
	count 0 1
	exit 1
}

# What to run: suites by name, or single files.
suites=()
regress_files=()
tap_files=()
for arg in "$@"; do
	case $arg in
	regress | tap | worker | contention | http | attack | migrate | browser | backup | upgrade | stress | failover | fuzz | sanitize) suites+=("$arg") ;;
	sql/*.sql) regress_files+=("$(basename "$arg" .sql)") ;;
	test/*.sql) tap_files+=("$arg") ;;
	*) abort "unknown argument '$arg' (regress, tap, worker, contention, http, attack, migrate, browser, backup, upgrade, stress, failover, fuzz, sanitize, sql/NAME.sql or test/NAME.sql)" ;;
	esac
done
[ ${#regress_files[@]} -gt 0 ] && suites+=(regress)
[ ${#tap_files[@]} -gt 0 ] && suites+=(tap)
[ ${#suites[@]} -eq 0 ] && suites=(regress tap worker contention http attack migrate browser backup upgrade stress failover fuzz sanitize)
wanted() {
	local s
	for s in "${suites[@]}"; do [ "$s" = "$1" ] && return 0; done
	return 1
}

# First the packages: lib.sh asks pg_config where PostgreSQL is.
bash scripts/deps.sh || abort "missing packages (scripts/deps.sh)"
source scripts/lib.sh
if [ -n "$PSK_PGROOT" ] && [ ! -x "$PGBIN/postgres" ]; then
	abort "PSK_PGROOT=$PSK_PGROOT holds no PostgreSQL; make one with: bash scripts/private-pg.sh $PSK_PGROOT"
fi

work=$(mktemp -d /tmp/psk-test.XXXXXX)
chmod 755 "$work"

# A clean build, so that every compiler warning shows (and counts).  The
# extension and the shim build with -Werror: a C warning stops the build,
# and whatever warns without stopping it (the linker, make) fails the check.
echo "== build"
make -s clean >/dev/null 2>&1
if ! make -s >"$work/build.out" 2>&1; then
	cat "$work/build.out"
	grep -q '\[-Werror' "$work/build.out" && echo "not ok - the build has compiler warnings (-Werror)"
	abort "build failed"
fi
if grep -q 'warning:' "$work/build.out"; then
	cat "$work/build.out"
	echo "not ok - the build has compiler warnings"
	count 0 1
else
	echo "ok - build without warnings"
	count 1 0
fi

# Every C file we own (the ones git knows), laid out as .clang-format says;
# `clang-format -i FILE` fixes one.
echo "== clang-format"
c_files() {
	git ls-files '*.c' '*.h' 2>/dev/null ||
		find extension shim test -name '*.[ch]' -not -path 'shim/asan/*'
}
unformatted=()
while read -r f; do
	[ -f "$f" ] || continue
	clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
done < <(c_files)
if [ ${#unformatted[@]} -eq 0 ]; then
	echo "ok - every C file is formatted (clang-format)"
	count 1 0
else
	echo "not ok - not formatted as .clang-format says (clang-format -i FILE...): ${unformatted[*]}"
	count 0 1
fi

make -s install DESTDIR="$PSK_PGROOT" >"$work/install.out" 2>&1 || {
	cat "$work/install.out"
	abort "install failed"
}

port=$(free_port)
cluster_init "$work/data" || abort "initdb failed"
# Every statement logged, with its user: test/http checks that no password
# or token reaches the log.  psk preloaded: psk_login needs it (its guard).
cluster_start "$work/data" "$port" -c shared_preload_libraries=psk -c log_statement=all \
	-c "log_line_prefix='%m [%p] %u '" || abort "the test cluster did not start"
export PSK_TEST_SERVER_LOG=$work/data/server.log
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres
# For the suites: the binaries in use and a scratch directory.
export PSK_PGBIN=$PGBIN PSK_TEST_WORK=$work

if wanted regress; then
	echo "== pg_regress (sql/, expected/)"
	rm -f regression.diffs regression.out
	regress_opts=()
	[ ${#regress_files[@]} -gt 0 ] && regress_opts=(REGRESS="${regress_files[*]}")
	make -s installcheck "${regress_opts[@]}" >"$work/regress.out" 2>&1
	rc=$?
	cat "$work/regress.out"
	ok=$(grep -cE '\.\.\. ok' "$work/regress.out")
	bad=$(grep -cE '\.\.\. FAILED' "$work/regress.out")
	[ $rc -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
	count "$ok" "$bad"
	[ "$bad" -gt 0 ] && [ -f regression.diffs ] && head -300 regression.diffs
fi

# One pgTAP file: its tests count one by one; tests it planned but never ran
# (it died on an error) count as failed.  Failing files show in full, with
# pgTAP's diagnostics and psql's errors.
tap_file() {
	local f=$1 out=$work/tap.out planned ok bad ran rc
	pg_prove --psql-bin "$PGBIN/psql" -d psk_tap --verbose "$f" >"$out" 2>&1
	rc=$?
	planned=$(grep -m1 -oE '^1\.\.[0-9]+' "$out" | cut -c4-)
	ok=$(grep -cE '^ok [0-9]+|^not ok [0-9]+.*# TODO' "$out")
	bad=$(grep -E '^not ok [0-9]+' "$out" | grep -cv '# TODO')
	ran=$((ok + bad))
	[ -n "$planned" ] && [ "$planned" -gt "$ran" ] && bad=$((bad + planned - ran))
	[ $rc -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
	count "$ok" "$bad"
	if [ "$bad" -eq 0 ]; then
		echo "ok - $f: $ok tests"
	else
		cat "$out"
		echo "not ok - $f: $ok passed, $bad failed"
	fi
}

if wanted tap; then
	echo "== pgTAP (test/*.sql)"
	[ ${#tap_files[@]} -eq 0 ] && tap_files=(test/*.sql)
	if [ -e "${tap_files[0]}" ]; then
		psql -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE psk_tap" >/dev/null &&
			psql -qX -v ON_ERROR_STOP=1 -d psk_tap \
				-c "SET client_min_messages = warning" \
				-c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION psk CASCADE" >/dev/null ||
			abort "could not make the pgTAP database"
		for f in "${tap_files[@]}"; do
			tap_file "$f"
		done
	fi
fi

# Suites with their own runner; each prints "N passed, M failed" last.  They
# find the cluster in PGHOST/PGPORT/PGUSER (psk installed in this PostgreSQL,
# no database made for them), the binaries in PSK_PGBIN, scratch space in
# PSK_TEST_WORK, and the built shim in shim/psk-shim; or start their own.
for s in worker contention http attack migrate browser backup upgrade stress failover fuzz sanitize; do
	t=test/$s/run.sh
	wanted "$s" && [ -f "$t" ] || continue
	echo "== $t"
	bash "$t" >"$work/suite.out" 2>&1
	rc=$?
	cat "$work/suite.out"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$work/suite.out" | tail -1)
	if [ -n "$line" ]; then
		p=$(echo "$line" | cut -d' ' -f1)
		f=$(echo "$line" | cut -d' ' -f3)
		[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
		count "$p" "$f"
	else
		echo "not ok - $t printed no summary (exit status $rc)"
		count 0 1
	fi
done
