#!/usr/bin/env bash
# The pg_regress suite (sql/, specs/) against the extension built with
# -fsanitize=address,undefined (make PSK_SANITIZE=1), in a postmaster that
# runs with the ASan runtime preloaded.  Fails when a test fails or when any
# sanitizer report shows up.  Prints "N passed, M failed".
#
# PostgreSQL itself is not instrumented: only our own code is checked.  ASan
# sees our stack and static arrays and whatever postgres got from malloc; a
# palloc'd chunk lies inside a memory context's block, so an overrun that
# stays within the block goes unseen.  UBSan sees all of our code, with
# signed overflow too (-fno-wrapv).
#
# Everything happens in copies: the sources are built in the scratch
# directory and installed into a copy of PostgreSQL made there, so neither
# the checkout's build nor $PSK_PGROOT ever holds the instrumented psk.so.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
source test/suite.sh
suite_cluster sanitize

fail() {
	echo "not ok - $*"
	failed=$((failed + 1))
	suite_end
	exit 1
}

echo "== building psk with -fsanitize=address,undefined"
src=$work/src
mkdir "$src"
cp -r Makefile psk.control extension sql expected specs "$src/"
mkdir -p "$src/test"
cp -r test/fixtures "$src/test/"
# No LLVM bitcode: PGXS would compile it with clang, without the sanitizers.
smake() { make -s -C "$src" PSK_SANITIZE=1 with_llvm=no "$@"; }
smake clean >/dev/null 2>&1
smake >"$work/build.out" 2>&1 || {
	cat "$work/build.out"
	fail "the instrumented build"
}
bash scripts/private-pg.sh "$work/pg" >/dev/null &&
	smake install DESTDIR="$work/pg" >"$work/install.out" 2>&1 || {
	cat "$work/install.out"
	fail "install into a copy of PostgreSQL"
}
PGBIN=$work/pg$("$PG_CONFIG" --bindir)

# The ASan runtime must come first in the postmaster's libraries (postgres
# is not linked with it), and every backend inherits it.  ASan and UBSan
# need the help of test/sanitize/preload.c (it says why).  Leaks are not
# checked: postgres leaves its memory contexts to exit.  The quarantine is
# kept small, as every backend has one of its own.
cc=$("$PG_CONFIG" --cc | cut -d' ' -f1)
libasan=$(realpath "$("$cc" -print-file-name=libasan.so)")
[ -f "$libasan" ] || fail "no libasan.so ($libasan)"
"$cc" -shared -fPIC -Wall -Wextra -Werror -Wno-unused-parameter \
	-o "$work/preload.so" test/sanitize/preload.c ||
	fail "test/sanitize/preload.c"
san=$work/san
mkdir "$san"
[ "$(id -u)" = 0 ] && chown postgres: "$san"
cluster_init "$work/data" || fail "initdb"
as_pg env LD_PRELOAD="$libasan:$work/preload.so" \
	ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:disable_coredump=1:quarantine_size_mb=16:log_path=$san/asan" \
	UBSAN_OPTIONS="print_stacktrace=1:abort_on_error=1:disable_coredump=1" \
	"$PGBIN/pg_ctl" -D "$work/data" -l "$work/data/server.log" -w -t 120 \
	-o "-p $port -k $work/data -c listen_addresses=127.0.0.1 -c shared_preload_libraries=psk" start >/dev/null || {
	cat "$work/data/server.log"
	fail "the postmaster under ASan did not start"
}
grep -q "$libasan" "/proc/$(head -1 "$work/data/postmaster.pid")/maps" ||
	fail "the postmaster runs without the ASan runtime"

echo "== pg_regress under ASan and UBSan"
smake installcheck >"$work/regress.out" 2>&1
rc=$?
cat "$work/regress.out"
ok=$(grep -cE '\.\.\. ok' "$work/regress.out")
bad=$(grep -cE '\.\.\. FAILED' "$work/regress.out")
[ $rc -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
passed=$((passed + ok))
failed=$((failed + bad))
[ "$bad" -gt 0 ] && [ -f "$src/regression.diffs" ] && head -100 "$src/regression.diffs"

# The reports: ASan's in files in $san, UBSan's on the postmaster's stderr.
cluster_stop "$work/data"
reports() {
	ls "$san"/* 2>/dev/null
	grep -lE 'ERROR: AddressSanitizer|runtime error:' "$work/data/server.log"
}
check "no AddressSanitizer or UBSan report" "" "$(reports)"
for f in $(reports); do
	echo "# $f:"
	head -c 20000 "$f" | grep -vE '^\s*$' | sed 's/^/# /'
done
# (The logical replication launcher exits with status 1 at every shutdown.)
check "no server process died" "" \
	"$(grep -E 'terminated by signal|server process .* exited with exit code' "$work/data/server.log")"

suite_end
