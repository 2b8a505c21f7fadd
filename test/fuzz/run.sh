#!/usr/bin/env bash
# Bad input against psk-shim, built under AddressSanitizer and
# UndefinedBehaviorSanitizer (shim/psk-shim-asan, `make -C shim sanitize`):
# test/fuzz/fuzz_http.py sends a corpus of malformed requests (CSV imports
# among them) and seeded random mutations of valid ones; then the shim must
# stop cleanly on SIGTERM with no sanitizer report; then libFuzzer runs the
# decoding the shim does itself (psk-fuzz-form, psk-fuzz-csv).  Ends with
# "N passed, M failed".
#
# Always on a throwaway cluster of its own (the shim's database must not
# change, so nothing else may share it).  Run alone, it builds and installs
# into $PSK_PGROOT first.  PSK_FUZZ_SEED and PSK_FUZZ_N: see fuzz_http.py.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
# the shims' admin ports (/metrics): any free port, unless a test names one
export PSK_ADMIN_LISTEN=127.0.0.1:0

passed=0
failed=0
check() { # check NAME COMMAND...
	local name=$1
	shift
	if "$@"; then
		echo "ok - $name"
		passed=$((passed + 1))
	else
		echo "not ok - $name"
		failed=$((failed + 1))
	fi
}

if [ -z "${PSK_TEST_WORK:-}" ]; then
	make -s >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
	make -s install DESTDIR="$PSK_PGROOT" >/dev/null || { echo "install failed"; echo "0 passed, 1 failed"; exit 1; }
fi
work=$(mktemp -d "${PSK_TEST_WORK:-/tmp}/fuzz.XXXXXX")
chmod 755 "$work"
shim_pid=

cleanup() {
	[ -n "$shim_pid" ] && kill -9 "$shim_pid" 2>/dev/null
	cluster_stop "$work/data" immediate
	rm -rf "$work"
}
finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}
trap cleanup EXIT
trap 'echo "interrupted"; failed=$((failed + 1)); finish; exit 130' INT TERM

echo "== building shim/psk-shim-asan"
if ! make -s -C shim sanitize >"$work/build.out" 2>&1; then
	cat "$work/build.out"
	failed=1
	finish
	exit 1
fi

pgport=$(free_port)
cluster_init "$work/data" && cluster_start "$work/data" "$pgport" -c shared_preload_libraries=psk || {
	failed=1
	finish
	exit 1
}
export PGHOST=127.0.0.1 PGPORT=$pgport PGUSER=postgres PGDATABASE=psk_fuzz
psql -qX -d postgres -c "CREATE DATABASE psk_fuzz" >/dev/null &&
	psql -qX -f test/http/setup.sql >/dev/null || {
	echo "fixture failed"
	failed=1
	finish
	exit 1
}

# Sanitizer reports go to files in $work/san (none may appear).  Leaks are
# checked at exit, but for h2o's thread-local caches (lsan.supp).
mkdir "$work/san"
port=$(free_port)
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:fast_unwind_on_malloc=0:log_path=$work/san/asan \
LSAN_OPTIONS=suppressions=$PWD/test/fuzz/lsan.supp:print_suppressions=0 \
UBSAN_OPTIONS=print_stacktrace=1:log_path=$work/san/ubsan \
	shim/psk-shim-asan --listen "127.0.0.1:$port" --threads 2 --pool 2 \
	--db "host=127.0.0.1 port=$pgport dbname=psk_fuzz user=psk_shim" \
	>"$work/shim.out" 2>"$work/shim.err" &
shim_pid=$!
for _ in $(seq 100); do
	python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
	kill -0 "$shim_pid" 2>/dev/null || break
	sleep 0.1
done

PSK_FUZZ_PORT=$port timeout 300 python3 test/fuzz/fuzz_http.py >"$work/fuzz.out" 2>&1
rc=$?
cat "$work/fuzz.out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$work/fuzz.out" | tail -1)
if [ -n "$line" ]; then
	passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
	failed=$((failed + $(echo "$line" | cut -d' ' -f3)))
	[ $rc -ne 0 ] && [ "$(echo "$line" | cut -d' ' -f3)" -eq 0 ] && failed=$((failed + 1))
else
	echo "not ok - fuzz_http.py printed no summary (exit status $rc)"
	failed=$((failed + 1))
fi

# SIGTERM: a clean exit, after which the sanitizers have had their say
shim_alive() { kill -0 "$shim_pid" 2>/dev/null; }
check "the shim survived the barrage" shim_alive
kill -TERM "$shim_pid" 2>/dev/null
status=
for _ in $(seq 300); do
	shim_alive || break
	sleep 0.1
done
if shim_alive; then
	echo "# the shim did not stop within 30 s of SIGTERM"
else
	wait "$shim_pid"
	status=$?
fi
shim_pid=
check "the shim exits 0 on SIGTERM (status ${status:-none})" test "$status" = 0
no_reports() { ! ls "$work"/san/* >/dev/null 2>&1; }
check "no AddressSanitizer, LeakSanitizer or UBSan report" no_reports
no_reports || head -c 20000 "$work"/san/*
no_runtime_error() { ! grep -q "runtime error:\|Sanitizer" "$work/shim.err"; }
check "no sanitizer output on standard error" no_runtime_error
no_internal() { ! grep -q " 500 \| 503 " "$work/shim.out" && ! grep -q "unexpected database error" "$work/shim.err"; }
check "the access log has no 500 or 503" no_internal
no_internal || grep -E " 500 | 503 |unexpected" "$work/shim.out" "$work/shim.err" | head -20

# The decoding the shim does itself (form.c, json.c) under libFuzzer, when
# clang has it: a bounded run from an empty corpus.
fuzz_form() {
	make -s -C shim fuzz >"$work/fuzz-build.out" 2>&1 || {
		cat "$work/fuzz-build.out"
		return 1
	}
	mkdir -p "$work/corpus"
	(cd "$work" && "$OLDPWD/shim/psk-fuzz-form" -max_total_time="${PSK_FUZZ_SECONDS:-15}" \
		-print_final_stats=1 corpus >"$work/fuzz-form.out" 2>&1)
	local rc=$?
	grep -E "^(stat::number_of_executed_units|Done)" "$work/fuzz-form.out" | sed 's/^/# /'
	[ $rc -eq 0 ] || tail -40 "$work/fuzz-form.out"
	return $rc
}
# The CSV reader and writer and the HTTP/1 framing the import reads itself
# (csv.c, http1.c), from seeds of the named cases: quoting, a quoted field
# over lines, a BOM, CRLF, empty lines, an over-long field, bytes that are
# not UTF-8, chunked bodies.  The first byte of an input picks how it is
# cut into pieces (fuzz_csv.c).
fuzz_csv() {
	local seeds=$work/csv-corpus
	mkdir -p "$seeds"
	printf '\003code,note\r\n"a ""b"", c",x\r\n' >"$seeds/quoting"
	printf '\005code,note\nA,"two\r\nlines"\n' >"$seeds/newlines"
	printf '\001\357\273\277code\r\nA\r\n' >"$seeds/bom"
	printf '\002code,countries\r\nA,UK;DE\r\n\r\nB,\r\n' >"$seeds/crlf-empty-lines"
	{ printf '\004code,note\nA,'; head -c 70000 /dev/zero | tr '\0' x; printf '\n'; } >"$seeds/over-long"
	printf '\006code,note\nA,\377\376\nB,\300\257\n' >"$seeds/not-utf8"
	printf '\0075\r\ncode\n\r\n3;x=1\r\nA,\n\r\n0\r\nT: 1\r\n\r\n' >"$seeds/chunked"
	printf 'POST /admin/codes/import?code_type=OSV HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nExpect: 100-continue\r\n\r\n' >"$seeds/head"
	make -s -C shim psk-fuzz-csv >"$work/fuzz-csv-build.out" 2>&1 || {
		cat "$work/fuzz-csv-build.out"
		return 1
	}
	mkdir -p "$work/csv-run"
	(cd "$work/csv-run" && "$OLDPWD/shim/psk-fuzz-csv" -max_total_time="${PSK_FUZZ_SECONDS:-15}" \
		-print_final_stats=1 "$seeds" >"$work/fuzz-csv.out" 2>&1)
	local rc=$?
	grep -E "^(stat::number_of_executed_units|Done)" "$work/fuzz-csv.out" | sed 's/^/# /'
	[ $rc -eq 0 ] || tail -40 "$work/fuzz-csv.out"
	return $rc
}
if echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
	clang -x c -fsanitize=fuzzer -o "$work/probe" - >/dev/null 2>&1; then
	check "libFuzzer: form.c and json.c (shim/psk-fuzz-form)" fuzz_form
	check "libFuzzer: csv.c and http1.c (shim/psk-fuzz-csv)" fuzz_csv
else
	echo "ok - libFuzzer: form.c and json.c # SKIP clang with libFuzzer not installed"
	echo "ok - libFuzzer: csv.c and http1.c # SKIP clang with libFuzzer not installed"
fi

finish
