#!/usr/bin/env bash
# make bench-backup: how long a logical backup of a big PSK database takes.
#
# A database of PSK_BACKUP_CODES codes (1000000, loaded as make bench-scale
# loads them) and an audit log of PSK_BACKUP_AUDIT rows (2000000: reserve
# and release pairs, written straight into the table), some codes held;
# then pg_dump in custom format and in plain SQL, pg_restore of the first
# (one job, then PSK_BACKUP_JOBS jobs) and psql of the second, each into a
# fresh database, every one timed, with the sizes of the dumps.  The
# restored databases are checked to hold as many codes and audit rows.
#
# Writes bench/results/backup-DATE-REV.md (and prints it).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source scripts/lib.sh
source bench/common.sh

codes=${PSK_BACKUP_CODES:-1000000}
audit=${PSK_BACKUP_AUDIT:-2000000}
jobs=${PSK_BACKUP_JOBS:-$ncpu}
for v in "$codes" "$audit" "$jobs"; do
	[[ $v =~ ^[0-9]+$ ]] || die "'$v' is not a number"
done

bench_start
header="$(date -u '+%F %T UTC'), git $git_rev$git_dirty, nproc $ncpu, memory ${mem_gb} GB, $(uname -sr)"
setup="PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') $bench_pg_settings"
echo "== $header"

bench_db psk_backup "$codes"
held=$((codes / 100))
psql -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL || die "filling the audit log failed"
-- audit rows as reserve and release write them, by the 64 bench users
INSERT INTO psk.audit_log (logged_at, action, code, code_type, user_id, user_name,
                           contact_email, tester_name, country, note)
SELECT now() - (($audit - i) * interval '10 ms'),
       CASE WHEN i % 2 = 0 THEN 'RESERVED' ELSE 'RELEASED' END,
       'BENCH-' || lpad(((i / 2) % $codes + 1)::text, 9, '0'), 'OSV',
       u.id, u.user_name, u.email, 'bench', 'UK', CASE WHEN i % 2 = 1 THEN 'done' END
  FROM generate_series(1, $audit) i
  JOIN psk.users u ON u.email = 'bench' || (i % 64 + 1) || '@example.com';
SQL
# held codes, through the engine
for u in $(seq 1 64); do
	echo "SELECT count(*) FROM psk_reserve('bench$u@example.com', 'held', how_many => 100);"
done | head -n $(((held + 99) / 100)) | psql -qX -v ON_ERROR_STOP=1 >/dev/null || die "reserving failed"
psql -qX -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
counts() { psql -XAt -d "$1" -c "SELECT (SELECT count(*) FROM psk.codes) || ' codes, ' || (SELECT count(*) FROM psk.audit_log) || ' audit rows, ' || (SELECT count(*) FROM psk.codes WHERE status = 'RESERVED') || ' held'"; }
want=$(counts psk_backup)
dbsize=$(psql -XAt -c "SELECT pg_size_pretty(pg_database_size('psk_backup'))")
echo "== psk_backup: $want, $dbsize"

rows=()
# timed LABEL COMMAND...: run it, note the seconds
timed() {
	local label=$1 t0 t1
	shift
	t0=$(date +%s.%N)
	"$@" >"$work/out" 2>&1 || { cat "$work/out" >&2; die "$label failed"; }
	t1=$(date +%s.%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
	echo "== $label: ${secs}s"
}
fresh() { psql -qX -d postgres -c "CREATE DATABASE $1"; }
check_restored() {
	local got
	got=$(counts "$1")
	[ "$got" = "$want" ] || die "$1 holds $got, not $want"
}

timed "pg_dump -Fc" "$PGBIN/pg_dump" -Fc -d psk_backup -f "$work/psk.dump"
rows+=("| pg_dump -Fc | $secs s | $(du -h "$work/psk.dump" | cut -f1) |")
timed "pg_dump (plain SQL)" "$PGBIN/pg_dump" -d psk_backup -f "$work/psk.sql"
rows+=("| pg_dump (plain SQL) | $secs s | $(du -h "$work/psk.sql" | cut -f1) |")
fresh r1
timed "pg_restore" "$PGBIN/pg_restore" --exit-on-error -d r1 "$work/psk.dump"
check_restored r1
rows+=("| pg_restore | $secs s | |")
fresh r2
PGOPTIONS="-c session_replication_role=replica" timed "pg_restore -j $jobs" "$PGBIN/pg_restore" --exit-on-error -j "$jobs" -d r2 "$work/psk.dump"
check_restored r2
rows+=("| pg_restore -j $jobs (session_replication_role=replica) | $secs s | |")
fresh r3
timed "psql -f (plain SQL)" psql -qX -v ON_ERROR_STOP=1 -d r3 -f "$work/psk.sql"
check_restored r3
rows+=("| psql -f (plain SQL) | $secs s | |")

mkdir -p bench/results
result=bench/results/backup-$stamp-$git_rev.md
{
	echo "# make bench-backup, $stamp"
	echo
	echo "$header"
	echo
	echo "$setup"
	echo
	echo "Database psk_backup: $want; $dbsize. Every restore holds the same counts."
	echo
	echo "| step | time | size |"
	echo "| --- | ---: | ---: |"
	printf '%s\n' "${rows[@]}"
} >"$result"
cat "$result"
echo "== written: $result"
