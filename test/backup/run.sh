#!/usr/bin/env bash
# Backups that restore (README, "Backup and restore"): logical dumps of a
# PSK database (custom format and plain SQL) restore every row of every psk
# table and a database that works; a dump taken while reserves run is
# consistent; a database updated from 0.2.0 dumps the same way; a base
# backup with archived WAL recovers to a named point.  Own throwaway
# cluster; prints "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
source test/suite.sh
suite_cluster backup
here=test/backup

cluster_init "$work/data" || exit 1
mkdir -p "$work/archive" && chown postgres: "$work/archive" 2>/dev/null
cluster_start "$work/data" "$port" -c shared_preload_libraries=psk -c wal_level=replica -c archive_mode=on \
	-c "archive_command='test ! -f $work/archive/%f && cp %p $work/archive/%f'" || exit 1

db() { psql -XAtq -v ON_ERROR_STOP=1 -d "$@"; }
fingerprint() { db "$1" -f $here/fingerprint.sql; }

# A database with data in every table: codes in every state, an audit log of
# every action, places, sessions (one live, one revoked), a login failure.
fill() { # fill DB [VERSION]
	db postgres -c "CREATE DATABASE $1" || return 1
	db "$1" -c "SET client_min_messages = warning" \
		-c "CREATE EXTENSION psk ${2:+VERSION '$2'} CASCADE" || return 1
	db "$1" -f $here/fill.sql >/dev/null || return 1
	db "$1" -c "SELECT access_token FROM psk_login('osv@example.com', 'Rdl@12345')" \
		>"$work/$1.token" || return 1
	local revoked
	revoked=$(db "$1" -c "SELECT access_token FROM psk_login('hsv@example.com', 'Rdl@12345')") &&
		db "$1" -c "SELECT revoked FROM psk_logout('$revoked')" >/dev/null || return 1
	echo "$revoked" >"$work/$1.revoked"
	db "$1" -c "SELECT psk_login('hsv@example.com', 'wrong')" >/dev/null 2>&1
	return 0
}

# What 0.3.0 adds, in a database at that version: a reserve remembered by
# its request_id (psk.reserve_requests), a code in use with an expiry,
# renewed (RENEWED).
fill_030() { # fill_030 DB
	db "$1" -c "SELECT code FROM psk_reserve('osv@example.com', 'rig-5', request_id => 'backup-1')" \
		>"$work/$1.request" || return 1
	db "$1" -c "SET psk.in_use_ttl = '1d'" \
		-c "SELECT count(*) FROM psk.codes c, LATERAL psk_confirm('osv@example.com', c.code, c.reservation_token)
		     WHERE c.tester_name = 'rig-5'" \
		-c "SELECT count(*) FROM psk.codes c, LATERAL psk_renew('osv@example.com', c.code, c.reservation_token)
		     WHERE c.tester_name = 'rig-5'" >/dev/null || return 1
	# the metrics' tables (the worker's refresh, by hand): the counts, and
	# the log folded into the totals (a fold passes at the refresh after)
	db "$1" -c "SELECT psk.metrics_refresh()" -c "SELECT psk.metrics_refresh()" \
		-c "SELECT psk.metrics_refresh()" >/dev/null
}

# restored LABEL SRC DST: DST, restored from a dump of SRC, holds every row
# and works.
restored() {
	local label=$1 src=$2 dst=$3 t
	diff <(fingerprint "$src") <(fingerprint "$dst") >"$work/fp.diff"
	check "$label: every psk table and sequence equal row for row" "" "$(cat "$work/fp.diff")"
	# (the audit log's weekly partitions ahead and its default partition
	# are empty; psk.audit_log itself, all of them, is not)
	check "$label: every psk table has rows" 0 \
		"$(fingerprint "$dst" | grep -v '^psk\.audit_log_' | grep -c ' 0 -$')"
	t=$(cat "$work/$src.token")
	check "$label: a session token still authenticates" osv@example.com \
		"$(db "$dst" -c "SELECT contact_email FROM psk_session_user('$t')")"
	check "$label: a revoked token stays revoked" PK008 \
		"$(db "$dst" -v VERBOSITY=verbose -c "SELECT psk_session_user('$(cat "$work/$src.revoked")')" 2>&1 |
			grep -o PK008)"
	check "$label: the old password still logs in" bearer \
		"$(db "$dst" -c "SELECT token_type FROM psk_login('hsv@example.com', 'Rdl@12345')")"
	check "$label: a remembered request_id returns its code again" "$(cat "$work/$src.request")" \
		"$(db "$dst" -c "SELECT code FROM psk_reserve('osv@example.com', 'rig-5', request_id => 'backup-1')")"
	check "$label: a code in use keeps its expiry" \
		"$(db "$src" -c "SELECT expires_at FROM psk.codes WHERE tester_name = 'rig-5'")" \
		"$(db "$dst" -c "SELECT expires_at FROM psk_my_codes('osv@example.com') WHERE tester_name = 'rig-5'")"
	check "$label: a held code is held by its holder with its token" \
		"$(db "$src" -c "SELECT code || ' ' || reservation_token FROM psk.codes WHERE code = 'B-OSV-3'")" \
		"$(db "$dst" -c "SELECT code || ' ' || reservation_token FROM psk_my_codes('osv@example.com') WHERE code = 'B-OSV-3'")"
	local max_log max_user
	max_log=$(db "$dst" -c "SELECT max(id) FROM psk.audit_log")
	max_user=$(db "$dst" -c "SELECT max(id) FROM psk.users")
	check "$label: the held code can be released" B-OSV-3 \
		"$(db "$dst" -c "SELECT code FROM psk_release('osv@example.com', 'B-OSV-3')")"
	check "$label: a new reserve gets an audit id above every restored one" t \
		"$(db "$dst" -c "SELECT count(*) FROM psk_reserve('osv@example.com', 'after')" \
			-c "SELECT bool_and(id > $max_log) AND count(*) = 2 FROM psk.audit_log
			     WHERE tester_name = 'after' OR (code = 'B-OSV-3' AND action = 'RELEASED')" | tail -1)"
	check "$label: a new user gets an id above every restored one" t \
		"$(db "$dst" -c "SELECT id > $max_user FROM psk_create_user('admin@example.com', 'Zeus', 'dave', 'dave@example.com', 'S3cret-pass')")"
	# psk_log, newest first: the three new rows, then the restored log as it
	# was in the source
	check "$label: psk_log shows the new rows, then the old ones in order" \
		"USER_CREATED RESERVED RELEASED $(db "$src" -c "SELECT string_agg(action || ':' || id, ' ' ORDER BY logged_at DESC, id DESC) FROM psk.audit_log")" \
		"$(db "$dst" -c "SELECT string_agg(CASE WHEN id > $max_log THEN action ELSE action || ':' || id END, ' ' ORDER BY p, n)
	                  FROM generate_series(1, 20) p, psk_log(page => p, page_size => 100) WITH ORDINALITY l(total_count, id, logged_at, action, code, user_name, contact_email, tester_name, country, region, note, total_is_estimate, n)")"
}

# roundtrip SRC: dump SRC both ways, restore each into a fresh database.
roundtrip() {
	local src=$1 rc
	"$PGBIN/pg_dump" -Fc -d "$src" -f "$work/$src.dump"
	check "$src: pg_dump -Fc exits 0" 0 $?
	db postgres -c "CREATE DATABASE ${src}_custom"
	"$PGBIN/pg_restore" --exit-on-error -d "${src}_custom" "$work/$src.dump" 2>"$work/restore.err"
	rc=$?
	check "$src: pg_restore exits 0 without an error" "0" "$rc$(cat "$work/restore.err")"
	restored "$src (custom format)" "$src" "${src}_custom"

	# In parallel, pg_restore does not load an extension's tables in the
	# order of their foreign keys: with the foreign-key triggers off for
	# the load (the data comes from one consistent snapshot) it works.
	db postgres -c "CREATE DATABASE ${src}_jobs"
	PGOPTIONS='-c session_replication_role=replica' \
		"$PGBIN/pg_restore" --exit-on-error -j 2 -d "${src}_jobs" "$work/$src.dump" 2>"$work/restore.err"
	rc=$?
	check "$src: pg_restore -j 2 (session_replication_role=replica) exits 0 without an error" "0" "$rc$(cat "$work/restore.err")"
	restored "$src (custom format, -j 2)" "$src" "${src}_jobs"

	"$PGBIN/pg_dump" -d "$src" -f "$work/$src.sql"
	check "$src: pg_dump (plain SQL) exits 0" 0 $?
	db postgres -c "CREATE DATABASE ${src}_plain"
	psql -Xq -v ON_ERROR_STOP=1 -d "${src}_plain" -f "$work/$src.sql" >/dev/null 2>"$work/restore.err"
	rc=$?
	check "$src: psql restores the plain dump without an error" "0" \
		"$rc$(grep -v 'NOTICE\|^DETAIL\|^HINT' "$work/restore.err")"
	restored "$src (plain SQL)" "$src" "${src}_plain"
}

echo "# a database of the current version"
fill psk_src || exit 1
fill_030 psk_src || exit 1
roundtrip psk_src

echo "# a database made by 0.2.0 and updated"
fill psk_old 0.2.0 || exit 1
db psk_old -c "ALTER EXTENSION psk UPDATE"
check "psk_old: updated to the current version" \
	"$(db postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'psk'")" \
	"$(db psk_old -c "SELECT extversion FROM pg_extension WHERE extname = 'psk'")"
fill_030 psk_old || exit 1
roundtrip psk_old

echo "# a dump of 0.2.1 restored onto the installed version (README)"
fill psk_021 0.2.1 || exit 1
"$PGBIN/pg_dump" -Fc -d psk_021 -f "$work/psk_021.dump"
db postgres -c "CREATE DATABASE psk_021_new"
db psk_021_new -c "SET client_min_messages = warning" -c "CREATE EXTENSION psk VERSION '0.2.1' CASCADE"
"$PGBIN/pg_restore" --exit-on-error -d psk_021_new "$work/psk_021.dump"
check "0.2.1 dump: pg_restore into a 0.2.1 extension exits 0" 0 $?
db psk_021_new -c "SET client_min_messages = warning" -c "ALTER EXTENSION psk UPDATE"
check "0.2.1 dump: then updated to the installed version" \
	"$(db postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'psk'")" \
	"$(db psk_021_new -c "SELECT extversion FROM pg_extension WHERE extname = 'psk'")"
counts="SELECT (SELECT count(*) FROM psk.codes) || ' ' || (SELECT count(*) FROM psk.audit_log) || ' ' || (SELECT count(*) FROM psk.users) || ' ' || (SELECT count(*) FROM psk.sessions)"
check "0.2.1 dump: codes, audit rows, users and sessions all there" \
	"$(db psk_021 -c "$counts")" "$(db psk_021_new -c "$counts")"
check "0.2.1 dump: a session token still authenticates" osv@example.com \
	"$(db psk_021_new -c "SELECT contact_email FROM psk_session_user('$(cat "$work/psk_021.token")')")"
check "0.2.1 dump: the held code is released by its holder" B-OSV-3 \
	"$(db psk_021_new -c "SELECT code FROM psk_release('osv@example.com', 'B-OSV-3')")"

echo "# a dump taken while reserves and releases run"
fill psk_busy || exit 1
db psk_busy -c "SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV',
	ARRAY(SELECT 'LOAD-' || i FROM generate_series(1, 2000) i))" >/dev/null
for i in 1 2 3 4; do
	db psk_busy -c "SELECT FROM psk_create_user('admin@example.com', 'Trillium', 'load$i', 'load$i@example.com', 'Rdl@12345', pool => 'OSV')"
done
before=$(db psk_busy -c "SELECT max(id) FROM psk.audit_log")
# each statement its own transaction, so that the dump can catch codes held
cat >"$work/cycle.sql" <<'SQL'
\set n :client_id + 1
SELECT code FROM psk_reserve('load' || :n || '@example.com', 'load') \gset
SELECT released_at FROM psk_release('load' || :n || '@example.com', :code);
SQL
"$PGBIN/pgbench" -n -c 4 -j 2 -T 6 -M prepared -f "$work/cycle.sql" psk_busy >"$work/pgbench.out" 2>&1 &
load=$!
sleep 2
"$PGBIN/pg_dump" -Fc -d psk_busy -f "$work/busy.dump"
check "busy: pg_dump -Fc under load exits 0" 0 $?
wait $load
check "busy: the load ran without errors" 0 \
	"$(grep -cE 'aborted|failed: [1-9]|ERROR' "$work/pgbench.out")"
db postgres -c "CREATE DATABASE psk_busy_restored"
"$PGBIN/pg_restore" --exit-on-error -d psk_busy_restored "$work/busy.dump"
check "busy: pg_restore exits 0" 0 $?
dumped=$(db psk_busy_restored -c "SELECT max(id) FROM psk.audit_log")
after=$(db psk_busy -c "SELECT max(id) FROM psk.audit_log")
check "busy: the dump was taken mid-load (audit rows before < in the dump < after)" t \
	"$(db postgres -c "SELECT $before < $dumped AND $dumped < $after")"
# One snapshot: every code's state is what the last audit row about it says
# (held exactly when the last action is RESERVED, CONFIRMED or COMMENTED by
# its holder; then by that user, tester and country-independent), so codes
# and log were read at one instant.
check "busy: every code agrees with its last audit row" 0 \
	"$(db psk_busy_restored -c "
	SELECT count(*) FROM psk.codes c
	  LEFT JOIN LATERAL (SELECT a.action, a.user_id, a.tester_name FROM psk.audit_log a
	                      WHERE a.code = c.code AND a.action <> 'COMMENTED'
	                      ORDER BY a.id DESC LIMIT 1) l ON true
	 WHERE CASE WHEN c.status IN ('RESERVED', 'IN_USE')
	            THEN l.action IS DISTINCT FROM CASE c.status WHEN 'RESERVED' THEN 'RESERVED' ELSE 'CONFIRMED' END
	                 OR l.user_id IS DISTINCT FROM c.holder_id OR l.tester_name IS DISTINCT FROM c.tester_name
	            WHEN c.status = 'NON_USABLE' THEN l.action IS DISTINCT FROM 'MARKED_NON_USABLE'
	            ELSE l.action NOT IN ('ADDED', 'RELEASED', 'EXPIRED', 'DISASSOCIATED', 'RESTORED')
	       END")"
code=$(db psk_busy_restored -c "SELECT code FROM psk_reserve('load1@example.com', 'after')")
check "busy: the restored database reserves and releases" "$code" \
	"$(db psk_busy_restored -c "SELECT code FROM psk_release('load1@example.com', '$code')")"

echo "# a base backup and archived WAL, recovered to a named point"
base=$work/base
mkdir -m 700 "$base" && chown postgres: "$base" 2>/dev/null
# (the cluster's socket lives in its data directory: pg_basebackup skips it)
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$port" -U postgres -D "$base" -Fp -Xstream -c fast \
	2>&1 | grep -v 'skipping special file'
check "pg_basebackup exits 0" 0 "${PIPESTATUS[0]}"
# after the backup: a reservation to keep, a restore point, then a mistake
kept=$(db psk_src -c "SELECT code FROM psk_reserve('hsv@example.com', 'after-backup')")
db psk_src -c "SELECT pg_create_restore_point('before_mistake')" >/dev/null
db psk_src -c "SELECT FROM psk_delete_code('admin@example.com', 'B-COM-20')"
db psk_src -c "SELECT pg_switch_wal()" >/dev/null
for _ in $(seq 50); do # the segment with the restore point reaches the archive
	[ "$(db postgres -c "SELECT last_archived_wal >= pg_walfile_name(pg_current_wal_lsn() - 1) FROM pg_stat_archiver")" = t ] && break
	sleep 0.2
done
cat >>"$base/postgresql.auto.conf" <<CONF
restore_command = 'cp $work/archive/%f %p'
recovery_target_name = 'before_mistake'
recovery_target_action = 'promote'
archive_mode = off
CONF
as_pg touch "$base/recovery.signal"
rport=$(free_port)
cluster_start "$base" "$rport" -c shared_preload_libraries=psk || exit 1
trap 'cluster_stop "$base" immediate; cluster_stop "$work/data" immediate; rm -rf "$work"' EXIT
for _ in $(seq 100); do
	[ "$(PGPORT=$rport db postgres -c "SELECT pg_is_in_recovery()")" = f ] && break
	sleep 0.2
done
check "recovery ends at the restore point and promotes" f \
	"$(PGPORT=$rport db postgres -c "SELECT pg_is_in_recovery()")"
check "the reservation made after the base backup is there (WAL replayed)" \
	"$kept RESERVED after-backup" \
	"$(PGPORT=$rport db psk_src -c "SELECT code || ' ' || status || ' ' || tester_name FROM psk.codes WHERE code = '$kept'")"
check "the deletion after the restore point is not" "B-COM-20" \
	"$(PGPORT=$rport db psk_src -c "SELECT code FROM psk.codes WHERE code = 'B-COM-20'")"
check "the recovered database reserves" 1 \
	"$(PGPORT=$rport db psk_src -c "SELECT count(*) FROM psk_reserve('hsv@example.com', 'recovered')")"

suite_end
