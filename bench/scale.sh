#!/usr/bin/env bash
# make bench-scale: does the cycle hold as the pools grow and as they churn?
#
# 1. Size: cycle (c) of bench/bench.sh (psk_reserve + psk_release, pgbench
#    -M prepared) on pools of 100k, 1M and 10M codes, each loaded with COPY
#    into a fresh database: ops/s, p50, p99, the ratio to the smallest pool,
#    the load time and the table and index sizes.
# 2. Soak: cycle (c) for PSK_SOAK_MINUTES without a pause, the expiry worker
#    running in its database (it keeps the audit log's partitions, drops
#    those past the retention, freezes the closed ones), with partitions of
#    PSK_SOAK_PARTITION seconds and a retention of PSK_SOAK_RETENTION: every
#    PSK_SOAK_INTERVAL ops/s, the audit log's size and partitions, the
#    transaction ID ages (the database, psk.codes, the oldest audit
#    partition), the dead tuples and autovacuums of psk.codes; what each
#    autovacuum did (log_autovacuum_min_duration = 0); ops/s with the log's
#    size, and the XID ages with the dead tuples, drawn as PNGs (gnuplot).
# 3. A big log: PSK_LOG_ROWS audit rows (50M) in weekly partitions, each
#    reader of the log timed with its plans (bench/log_readers.sh; the load
#    takes long on 2 cores: PSK_LOG_ROWS=5000000 for a quicker look).
# 4. CSV: PSK_CSV_CODES codes imported through psk-shim (POST
#    /admin/codes/import, one file) and exported (GET /admin/codes/export):
#    seconds and the shim's peak RSS for each; then cycle (c) without an
#    export, during one read slowly for the whole run, and during exports
#    at full speed back to back: ops/s, p50, p99 and the ratio.
# 5. Held snapshot (issue 18): on pools of 100k and 10M codes, cycle (c) at
#    8 clients for PSK_SNAPSHOT_SECONDS, once as it is and once with a
#    REPEATABLE READ transaction opened at second PSK_SNAPSHOT_HOLD_AT and
#    kept open to the end: ops/s per PSK_SNAPSHOT_INTERVAL, the ratio of the
#    two while the snapshot is held, the dead tuples at the end, and both
#    series drawn as a PNG (gnuplot).
#
# Writes bench/results/scale-DATE-REV.md (and soak-DATE-REV.png,
# snapshot-DATE-REV.png).  Settings:
#   PSK_SCALE_SIZES     pool sizes (100000 1000000 10000000; drop the last
#                       to skip the 10M load, a few minutes on 2 cores)
#   PSK_SCALE_CLIENTS   clients of the size runs (8)
#   PSK_BENCH_SECONDS   seconds per size run (10)
#   PSK_SOAK_MINUTES    length of the soak (10; 1 for a quick try; 0: none)
#   PSK_SOAK_CLIENTS    clients of the soak (8)
#   PSK_SOAK_CODES      pool size of the soak (100000)
#   PSK_SOAK_INTERVAL   seconds per point of the graph (10)
#   PSK_SOAK_RETENTION  psk.audit_retention of the soak, seconds (120; 0: keep
#                       everything, in weekly partitions)
#   PSK_SOAK_PARTITION  psk.audit_partition_width of the soak, seconds (60; a
#                       whole fraction of a week, at least 60)
#   PSK_SOAK_SQL        SQL run in the soak's database before it (none), to
#                       try a setting: 'ALTER TABLE psk.codes SET (...)' 
#   PSK_LOG_ROWS        audit rows of part 3 (50000000; 0: no part 3)
#   PSK_CSV_CODES       codes of the CSV import and export (1000000; 0: none)
#   PSK_SNAPSHOT_SIZES  pool sizes of part 5 ("100000 10000000"; "": none)
#   PSK_SNAPSHOT_CLIENTS   clients of part 5 (8)
#   PSK_SNAPSHOT_SECONDS   length of each run of part 5 (60)
#   PSK_SNAPSHOT_HOLD_AT   second at which the snapshot is taken (10)
#   PSK_SNAPSHOT_INTERVAL  seconds per point (10)
#   PSK_PGROOT          a private PostgreSQL tree (see README.md)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source scripts/lib.sh
source bench/common.sh

sizes=${PSK_SCALE_SIZES-100000 1000000 10000000}
clients=${PSK_SCALE_CLIENTS:-8}
seconds=${PSK_BENCH_SECONDS:-10}
soak_minutes=${PSK_SOAK_MINUTES:-10}
soak_clients=${PSK_SOAK_CLIENTS:-8}
soak_codes=${PSK_SOAK_CODES:-100000}
interval=${PSK_SOAK_INTERVAL:-10}
soak_retention=${PSK_SOAK_RETENTION-120}
soak_width=${PSK_SOAK_PARTITION:-60}
log_rows=${PSK_LOG_ROWS-50000000}
csv_codes=${PSK_CSV_CODES-1000000}
snap_sizes=${PSK_SNAPSHOT_SIZES-100000 10000000}
snap_clients=${PSK_SNAPSHOT_CLIENTS:-8}
snap_seconds=${PSK_SNAPSHOT_SECONDS:-60}
snap_hold_at=${PSK_SNAPSHOT_HOLD_AT:-10}
snap_interval=${PSK_SNAPSHOT_INTERVAL:-10}
for v in $sizes "$clients" "$soak_clients" "$soak_minutes" "$soak_codes" "$interval" "$log_rows" "$csv_codes" \
	$snap_sizes "$snap_clients" "$snap_seconds" "$snap_hold_at" "$snap_interval" "$soak_retention" "$soak_width"; do
	[[ $v =~ ^[0-9]+$ ]] || die "'$v' is not a number"
done
((clients >= 1 && clients <= 64 && soak_clients >= 1 && soak_clients <= 64)) ||
	die "clients: from 1 to 64 (one bench user each)"
((interval >= 1)) || die "PSK_SOAK_INTERVAL: at least 1"
((snap_clients >= 1 && snap_clients <= 64)) || die "PSK_SNAPSHOT_CLIENTS: from 1 to 64"
((snap_interval >= 1 && snap_hold_at < snap_seconds)) ||
	die "PSK_SNAPSHOT_INTERVAL: at least 1; PSK_SNAPSHOT_HOLD_AT: before the end of the run"
((soak_width >= 60 && 604800 % soak_width == 0)) || die "PSK_SOAK_PARTITION: at least 60, a whole fraction of 604800"
[ "$soak_retention" = 0 ] && soak_width=604800

{ [ "$soak_minutes" -gt 0 ] || [ -n "$snap_sizes" ]; } && need_pkg gnuplot gnuplot-nox
bench_start

header="$(date -u '+%F %T UTC'), git $git_rev$git_dirty, nproc $ncpu, memory ${mem_gb} GB, $(uname -sr)"
setup="PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') $bench_pg_settings; cycle (c), bench/psk_cycle.sql, pgbench -M prepared"
echo "== $header"
echo "== $setup"
mkdir -p bench/results
result=bench/results/scale-$stamp-$git_rev.md
png=soak-$stamp-$git_rev.png
png_xid=soak-xid-$stamp-$git_rev.png
written=$result
out=$work/report.md
{
	echo "# make bench-scale, $stamp"
	echo
	echo "$header"
	echo
	echo "$setup"
} >"$out"

# The sizes of one database: table and indexes of psk.codes, the free-code
# index alone (the one every reserve reads), the country links, the audit log.
sizes_row() {
	psql -XAt -F' | ' -c "SELECT pg_size_pretty(pg_relation_size('psk.codes')),
		pg_size_pretty(pg_indexes_size('psk.codes')),
		pg_size_pretty(pg_relation_size('psk.codes_free_lru_idx')),
		pg_size_pretty(pg_total_relation_size('psk.code_countries')),
		pg_size_pretty((SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)
		                  FROM pg_partition_tree('psk.audit_log') t))"
}

# 1. Size
if [ -n "$sizes" ]; then
	{
		echo
		echo "## Pool size: cycle (c) at $clients clients, ${seconds}s per run"
		echo
		echo "| codes | load s | ops/s | p50 ms | p99 ms | errors | ops/s ÷ first | codes table | codes indexes | free-code index | country links | audit log |"
		echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	} >>"$out"
	first=
	for n in $sizes; do
		echo "== $n codes: loading"
		bench_db psk_scale "$n"
		echo "   loaded in ${load_seconds}s; cycle (c) at $clients clients for ${seconds}s"
		sz=$(sizes_row)
		set -- $(pg_run psk_cycle bench/psk_cycle.sql "$clients" "$seconds")
		first=${first:-$1}
		rel=$(awk -v x="$1" -v y="$first" 'BEGIN {if (y > 0) printf "%.2f", x / y; else print "-"}')
		echo "   $1 ops/s, p50 $2 ms, p99 $3 ms, errors $4, ratio to the first $rel; sizes: $sz"
		echo "| $n | $load_seconds | $1 | $2 | $3 | $4 | $rel | $sz |" >>"$out"
		export PGDATABASE=postgres
		psql -qX -c "DROP DATABASE psk_scale" >/dev/null
	done
	echo >>"$out"
	echo "Sizes after the load, before the run. Load: COPY of the codes and one INSERT ... SELECT of their country links (OSV and HSV codes, half and a quarter of the pool)." >>"$out"
fi

# 2. Soak
if [ "$soak_minutes" -gt 0 ]; then
	secs=$((soak_minutes * 60))
	echo "== soak: $soak_codes codes, cycle (c) at $soak_clients clients for $soak_minutes min, retention ${soak_retention}s, partitions of ${soak_width}s"
	bench_db psk_soak "$soak_codes"
	# The soak's database: its partition width and retention (for its
	# sessions and its worker), its partitions made, and the server
	# restarted with the worker in it and every autovacuum logged.
	psql -qX -v ON_ERROR_STOP=1 >/dev/null <<-SQL || die "soak settings failed"
	ALTER DATABASE psk_soak SET psk.audit_partition_width = $soak_width;
	ALTER DATABASE psk_soak SET psk.audit_retention = $soak_retention;
	SQL
	# (and set them to freeze as they fill, as the worker would at its
	# first round: before their first autovacuum)
	psql -qX -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM psk_audit_maintain()" \
		-c "SELECT count(*) FROM psk.audit_partitions_freeze_as_filled()" >/dev/null || die "psk_audit_maintain failed"
	if [ -n "${PSK_SOAK_SQL:-}" ]; then
		psql -qX -v ON_ERROR_STOP=1 -c "$PSK_SOAK_SQL" >/dev/null || die "PSK_SOAK_SQL failed"
	fi
	cluster_stop "$work/data"
	log_from=$(($(wc -l <"$work/data/server.log") + 1))
	# shellcheck disable=SC2086
	cluster_start "$work/data" "$pgport" $bench_pg_settings -c psk.database=psk_soak \
		-c log_autovacuum_min_duration=0 || die "cluster did not restart for the soak"
	# One sample: psk.codes (dead and live tuples, table, indexes, the
	# free-code index, autovacuums, relfrozenxid age), the audit log (total
	# size of every partition with its indexes, partitions, those frozen,
	# the oldest relfrozenxid of a partition with rows: the empty default
	# one and those ahead cost nothing to vacuum), age(datfrozenxid) and the
	# next xid.
	stats_sql="SELECT s.n_dead_tup, s.n_live_tup, pg_relation_size('psk.codes'),
		pg_indexes_size('psk.codes'), pg_relation_size('psk.codes_free_lru_idx'),
		(SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0) FROM pg_partition_tree('psk.audit_log') t),
		s.autovacuum_count,
		(SELECT count(*) FROM psk.audit_partitions()),
		(SELECT count(*) FROM psk.audit_partitions() p JOIN pg_class pc ON pc.oid = p.part
		  WHERE 'autovacuum_freeze_table_age=0' = ANY (pc.reloptions)),
		age(d.datfrozenxid), age(c.relfrozenxid),
		(SELECT coalesce(max(age(pc.relfrozenxid)), 0) FROM pg_partition_tree('psk.audit_log') t
		   JOIN pg_class pc ON pc.oid = t.relid WHERE t.isleaf AND pg_relation_size(t.relid) > 0),
		txid_snapshot_xmax(txid_current_snapshot()),
		(SELECT coalesce(max(age(pc.relfrozenxid)), 0) FROM psk.audit_partitions() p
		   JOIN pg_class pc ON pc.oid = p.part WHERE p.lower_bound <= now() AND p.upper_bound > now())
		FROM pg_stat_user_tables s, pg_database d, pg_class c
		WHERE s.relid = 'psk.codes'::regclass AND d.datname = current_database() AND c.oid = s.relid"
	start_stats=$(psql -XAt -F' ' -c "$stats_sql")
	t0=$(date +%s)
	"$PGBIN/pgbench" -n -M prepared -c "$soak_clients" -j 1 -T "$secs" \
		-l --aggregate-interval="$interval" --log-prefix="$work/soak" \
		-f bench/psk_cycle.sql >"$work/soak.out" 2>&1 &
	bench_pid=$!
	# a sample every interval, while pgbench runs
	while kill -0 "$bench_pid" 2>/dev/null; do
		echo "$(($(date +%s) - t0)) $(psql -XAt -F' ' -c "$stats_sql")" >>"$work/samples"
		sleep "$interval"
	done
	wait "$bench_pid"
	rc=$?
	bench_pid=
	[ "$rc" = 0 ] || { tail -5 "$work/soak.out"; die "the soak's pgbench failed"; }
	sleep 1 # the backends' last statistics
	end_stats=$(psql -XAt -F' ' -c "$stats_sql")
	tps=$(awk '/^tps = / {printf "%.0f", $3}' "$work/soak.out")
	errs=$(awk '/number of failed transactions/ {f = $5} /aborted/ {a++} END {print f + a}' "$work/soak.out")

	# ops/s per interval: the aggregate log's intervals (from every pgbench
	# thread) counted from the first, the partial last one left out
	cat "$work"/soak.* 2>/dev/null | awk '$1 ~ /^[0-9]+$/ {print $1, $2}' | sort -n |
		awk -v iv="$interval" -v secs="$secs" '
			NR == 1 {s = $1}
			{k = int(($1 - s) / iv); n[k] += $2; if (k > m) m = k}
			END {for (k = 0; k <= m; k++) if ((k + 1) * iv <= secs) printf "%.3f %.0f\n", (k + 1) * iv / 60, n[k] / iv}' \
		>"$work/points"
	# each point with the last sample taken by then: minutes, ops/s, dead
	# tuples, log MB, partitions, age(datfrozenxid), age of psk.codes, of
	# the oldest audit partition, autovacuums of psk.codes, frozen
	# partitions, age of the open partition
	awk 'NR == FNR {t[NR] = $1; row[NR] = $0; ns = NR; next}
		{x = $1 * 60; r = row[1]; for (i = 1; i <= ns; i++) if (t[i] <= x) r = row[i]
		 split(r, v, " ")
		 printf "%s %s %s %.1f %s %s %s %s %s %s %s\n", $1, $2, v[2], v[7] / 1048576, v[9], v[11], v[12], v[13], v[8], v[10], v[15]}' \
		"$work/samples" "$work/points" >"$work/plot.dat"

	# what each autovacuum of the soak did, from the server log: per table,
	# the passes, pages scanned of the table, index scans, and seconds
	tail -n +"$log_from" "$work/data/server.log" | awk '
		/automatic (aggressive )?vacuum of table "psk_soak\./ {
			t = $0; sub(/.*vacuum of table "psk_soak\./, "", t); sub(/".*/, "", t)
			if (t ~ /^psk\.audit_log_p/) t = "psk.audit_log_p* (each partition)"
			cur = t; n[t]++; if ($0 ~ /aggressive/) ag[t]++
			s = $0; sub(/.*index scans: /, "", s); ix[t] += s + 0; next }
		cur != "" && /pages: .* scanned/ { s = $0; sub(/.*remain, /, "", s); sub(/ scanned.*/, "", s); sc[cur] += s
			r = $0; sub(/.*removed, /, "", r); sub(/ remain.*/, "", r); pg[cur] += r }
		cur != "" && /WAL usage: / { s = $0; sub(/.* full page images, /, "", s); sub(/ bytes.*/, "", s); wb[cur] += s
			f = $0; sub(/.*records, /, "", f); sub(/ full page.*/, "", f); fp[cur] += f }
		cur != "" && /buffer usage: / { s = $0; sub(/.*buffer usage: /, "", s); split(s, b, /[ ,]+/); bu[cur] += b[1] + b[3] }
		cur != "" && /dead item identifiers removed/ { s = $0; sub(/.* had /, "", s); sub(/ dead item.*/, "", s); rm[cur] += s }
		cur != "" && /elapsed: / { s = $0; sub(/.*elapsed: /, "", s); sub(/ s.*/, "", s); el[cur] += s; cur = "" }
		END { for (t in n) printf "| %s | %d | %d | %.0f | %.0f | %d | %.0f | %.0f | %.0f | %.0f | %.2f |\n", t, n[t], ag[t], pg[t] / n[t], sc[t] / n[t], ix[t], bu[t] / n[t], rm[t] / n[t], fp[t] / n[t], wb[t] / n[t] / 1024, el[t] / n[t] }' |
		sort >"$work/autovacuums"
	dropped=$(tail -n +"$log_from" "$work/data/server.log" | grep -c 'psk: audit log partition .* dropped')
	frozen=$(tail -n +"$log_from" "$work/data/server.log" | grep -c 'psk: audit log partition .* frozen (')
	# the soak's server back as it was for the parts after it
	cluster_stop "$work/data"
	# shellcheck disable=SC2086
	cluster_start "$work/data" "$pgport" $bench_pg_settings || die "cluster did not restart after the soak"

	set -- $start_stats
	s_dead=$1 s_live=$2 s_tab=$3 s_idx=$4 s_free=$5 s_audit=$6 s_av=$7 s_parts=$8 s_dat=${10} s_codes_age=${11} s_xid=${13}
	set -- $end_stats
	mb() { awk -v b="$1" 'BEGIN {printf "%.1f MB", b / 1048576}'; }
	xid_rate=$(awk -v a="$s_xid" -v b="${13}" -v s="$secs" 'BEGIN {printf "%.0f", (b - a) / s}')
	if [ "$soak_retention" = 0 ]; then
		kept="no retention (psk.audit_retention = 0), weekly partitions"
	else
		kept="psk.audit_retention = ${soak_retention}s, partitions of ${soak_width}s (psk.audit_partition_width)"
	fi
	{
		echo
		echo "## Soak: cycle (c) at $soak_clients clients for $soak_minutes min, $soak_codes codes"
		echo
		echo "$tps ops/s over the whole soak, errors $errs; $kept;${PSK_SOAK_SQL:+ before it: \`$PSK_SOAK_SQL\`;} the expiry worker in the database (psk.expiry_interval 10 s), log_autovacuum_min_duration = 0. $xid_rate transaction IDs a second. The worker dropped $dropped partitions and froze $frozen."
		echo
		echo "| minute | ops/s | audit log MB | partitions | age(datfrozenxid) | age of psk.codes | oldest audit partition with rows | open audit partition | autovacuums of psk.codes | dead tuples |"
		echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
		awk -v iv="$interval" '{m = int(($1 * 60 - 0.001) / 60) + 1; n[m] += $2 * iv; c[m] += iv; if (m > mx) mx = m
				row[m] = $4 " | " $5 " | " $6 " | " $7 " | " $8 " | " $11 " | " $9 " | " $3}
			END {for (m = 1; m <= mx; m++) if (c[m] > 0) printf "| %d | %.0f | %s |\n", m, n[m] / c[m], row[m]}' "$work/plot.dat"
		echo
		echo "Each minute: its mean ops/s and the last sample taken in it (every ${interval}s)."
		echo
		echo "| psk.codes | start | end |"
		echo "| --- | ---: | ---: |"
		echo "| dead tuples | $s_dead | $1 |"
		echo "| live tuples | $s_live | $2 |"
		echo "| table | $(mb "$s_tab") | $(mb "$3") |"
		echo "| indexes | $(mb "$s_idx") | $(mb "$4") |"
		echo "| free-code index | $(mb "$s_free") | $(mb "$5") |"
		echo "| audit log (every partition, with indexes) | $(mb "$s_audit") | $(mb "$6") |"
		echo "| audit partitions | $s_parts | $8 |"
		echo "| autovacuums of psk.codes | $s_av | $7 |"
		echo "| age(datfrozenxid) | $s_dat | ${10} |"
		echo "| age(relfrozenxid) of psk.codes | $s_codes_age | ${11} |"
		echo
		echo "Autovacuum during the soak (the server log):"
		echo
		echo "| table | passes | aggressive | pages (mean) | pages scanned (mean) | index scans | buffers hit or read (mean) | dead items removed (mean) | full page images (mean) | WAL kB (mean) | seconds (mean) |"
		echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
		cat "$work/autovacuums"
		echo
		echo "![ops/s and the audit log's size over time]($png)"
		echo
		echo "![transaction ID ages and dead tuples over time]($png_xid)"
		echo
		echo "One point per ${interval}s."
	} >>"$out"

	gnuplot <<-EOF && written="$written and bench/results/$png" || echo "gnuplot failed: no PNG" >&2
		set terminal pngcairo size 900,450 noenhanced
		set output "bench/results/$png"
		set title "psk cycle (c), $soak_clients clients, $soak_codes codes, retention ${soak_retention}s, git $git_rev, $stamp"
		set xlabel "minutes"
		set ylabel "cycles/s"
		set y2label "audit log, MB (partitions and indexes)"
		set xrange [0:*]
		set yrange [0:*]
		set y2range [0:*]
		set ytics nomirror
		set y2tics
		set key bottom right
		set grid
		plot "$work/plot.dat" using 1:2 with linespoints title "cycles/s" axes x1y1, \
		     "$work/plot.dat" using 1:4 with lines lw 2 title "audit log MB" axes x1y2
	EOF
	gnuplot <<-EOF && written="$written and bench/results/$png_xid" || echo "gnuplot failed: no XID PNG" >&2
		set terminal pngcairo size 900,450 noenhanced
		set output "bench/results/$png_xid"
		set title "transaction ID ages and dead tuples, git $git_rev, $stamp"
		set xlabel "minutes"
		set ylabel "age in transaction IDs"
		set y2label "dead tuples in psk.codes"
		set xrange [0:*]
		set yrange [0:*]
		set y2range [0:*]
		set ytics nomirror
		set y2tics
		set key top left
		set grid
		plot "$work/plot.dat" using 1:6 with lines lw 2 title "age(datfrozenxid)" axes x1y1, \
		     "$work/plot.dat" using 1:7 with lines title "age(relfrozenxid) psk.codes" axes x1y1, \
		     "$work/plot.dat" using 1:8 with lines title "oldest audit partition with rows" axes x1y1, \
		     "$work/plot.dat" using 1:11 with lines title "open audit partition" axes x1y1, \
		     "$work/plot.dat" using 1:3 with lines title "dead tuples" axes x1y2
	EOF
fi

# 3. A big log
if [ "$log_rows" -gt 0 ]; then
	echo "== a log of $log_rows audit rows: loading, then each reader"
	export PGDATABASE=postgres
	psql -qX -c "CREATE DATABASE psk_biglog" >/dev/null &&
		PGDATABASE=psk_biglog psql -qX -c "SET client_min_messages = warning" \
			-c "CREATE EXTENSION psk CASCADE" >/dev/null &&
		PGDATABASE=psk_biglog bash bench/log_readers.sh "$log_rows" >>"$out" ||
		echo "part 3 failed" >&2
	psql -qX -c "DROP DATABASE IF EXISTS psk_biglog" >/dev/null
fi

# 4. CSV in and out through the shim
if [ "$csv_codes" -gt 0 ]; then
	echo "== CSV: $csv_codes codes imported and exported through psk-shim"
	bench_db psk_csv 0
	psql -qX -v ON_ERROR_STOP=1 -f scripts/shim-role.sql >/dev/null || die "scripts/shim-role.sql failed"
	httpport=$(free_port)
	setsid shim/psk-shim --listen "127.0.0.1:$httpport" --quiet \
		--db "host=127.0.0.1 port=$pgport dbname=psk_csv user=psk_shim" \
		>"$work/csv-shim.out" 2>"$work/csv-shim.err" &
	shim_pid=$!
	for _ in $(seq 50); do
		curl -sf "http://127.0.0.1:$httpport/healthz" >/dev/null && break
		sleep 0.1
	done
	curl -sf "http://127.0.0.1:$httpport/healthz" >/dev/null || { cat "$work/csv-shim.err"; die "psk-shim did not start"; }
	[ "$(cat "/proc/$shim_pid/comm" 2>/dev/null)" = psk-shim ] || die "psk-shim is not process $shim_pid"
	# peak RSS of the shim (kB), and its reset, for each measurement
	peak_rss() { awk '/^VmHWM:/ {print $2}' "/proc/$shim_pid/status"; }
	reset_peak() { echo 5 >"/proc/$shim_pid/clear_refs" 2>/dev/null; }
	mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
	token=$(curl -s "http://127.0.0.1:$httpport/auth/login" -d username=admin@example.com -d password=Rdl@12345 |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') || die "login failed"
	# a vendor's file: OSV codes valid in UK, a note on every tenth
	awk -v n="$csv_codes" 'BEGIN {
		printf "code,countries,note\r\n"
		for (i = 1; i <= n; i++)
			printf "CSV-%09d,UK,%s\r\n", i, (i % 10 == 0) ? "\"box " i ", shelf 3\"" : ""
	}' >"$work/vendor.csv"
	file_mb=$(awk -v b="$(stat -c %s "$work/vendor.csv")" 'BEGIN {printf "%.1f", b / 1048576}')
	rss_idle=$(peak_rss)
	reset_peak
	t0=$(date +%s.%N)
	curl -s "http://127.0.0.1:$httpport/admin/codes/import?code_type=OSV" -H "Authorization: Bearer $token" \
		-H 'Content-Type: text/csv' --data-binary @"$work/vendor.csv" >"$work/import.json"
	t1=$(date +%s.%N)
	rss_import=$(peak_rss)
	inserted=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["inserted"])' "$work/import.json" 2>/dev/null)
	[ "$inserted" = "$csv_codes" ] || { head -c 300 "$work/import.json"; die "the import inserted ${inserted:-nothing}"; }
	import_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
	rm -f "$work/vendor.csv"
	psql -qX -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
	reset_peak
	t0=$(date +%s.%N)
	bytes=$(curl -s "http://127.0.0.1:$httpport/admin/codes/export" -H "Authorization: Bearer $token" | wc -c)
	t1=$(date +%s.%N)
	rss_export=$(peak_rss)
	export_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
	export_mb=$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1048576}')
	echo "   import ${import_s}s (peak RSS $(mib "$rss_import")), export ${export_s}s (peak RSS $(mib "$rss_export"))"
	# cycle (c) alone (before and after the others, for the noise of a
	# shared machine); during one export read slowly enough to last the
	# run; during exports at full speed, back to back
	bulk_state() {
		psql -XAtc "SELECT coalesce(string_agg(CASE WHEN backend_xmin IS NULL THEN 'no snapshot'
			ELSE 'a snapshot held' END, ', '), 'no export running')
			FROM pg_stat_activity WHERE application_name = 'psk-shim bulk'"
	}
	set -- $(pg_run csv_alone bench/psk_cycle.sql "$clients" "$seconds")
	alone="$1 | $2 | $3"
	alone_ops=$1
	# long enough for pg_run's VACUUM and the run, and then some
	rate=$((bytes / (2 * seconds + 10) + 1))
	# a reader with a small receive window (the kernel would otherwise take
	# megabytes off the shim at once)
	python3 - "$httpport" "$token" "$rate" <<-'PY' &
		import socket, sys, time
		port, token, rate = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
		s = socket.socket()
		s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
		s.connect(("127.0.0.1", port))
		s.sendall(f"GET /admin/codes/export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
		          "Connection: close\r\n\r\n".encode())
		t0, got = time.time(), 0
		while True:
		    data = s.recv(16384)
		    if not data:
		        break
		    got += len(data)
		    ahead = got / rate - (time.time() - t0)
		    if ahead > 0:
		        time.sleep(ahead)
	PY
	slow_pid=$!
	sleep 1
	set -- $(pg_run csv_slow bench/psk_cycle.sql "$clients" "$seconds")
	slow="$1 | $2 | $3"
	slow_ops=$1
	slow_state=$(bulk_state)
	kill "$slow_pid" 2>/dev/null
	wait "$slow_pid" 2>/dev/null
	# in a session of its own, to be stopped with the curl it runs
	setsid bash -c 'while :; do curl -s "$1" -H "Authorization: Bearer $2" -o /dev/null && echo x >>"$3"; done' \
		_ "http://127.0.0.1:$httpport/admin/codes/export" "$token" "$work/full-exports" &
	loop_pid=$!
	sleep 1
	set -- $(pg_run csv_full bench/psk_cycle.sql "$clients" "$seconds")
	full="$1 | $2 | $3"
	full_ops=$1
	kill -- -"$loop_pid" 2>/dev/null
	wait "$loop_pid" 2>/dev/null
	n_full=$(wc -l <"$work/full-exports" 2>/dev/null || echo 0)
	set -- $(pg_run csv_alone2 bench/psk_cycle.sql "$clients" "$seconds")
	alone2="$1 | $2 | $3"
	base=$(awk -v a="$alone_ops" -v b="$1" 'BEGIN {print (a + b) / 2}')
	ratio() { awk -v x="$1" -v y="$base" 'BEGIN {if (y > 0) printf "%.2f", x / y; else print "-"}'; }
	echo "   cycle (c) alone: $alone and $alone2; during a slow export: $slow ($(ratio "$slow_ops"); $slow_state at the end); during $n_full exports back to back: $full ($(ratio "$full_ops"))"
	{
		echo
		echo "## CSV in and out: $csv_codes codes through psk-shim"
		echo
		echo "| | seconds | rows/s | shim peak RSS |"
		echo "| --- | ---: | ---: | ---: |"
		echo "| $csv_codes codes imported (one ${file_mb} MB file, POST /admin/codes/import) | $import_s | $(awk -v n="$csv_codes" -v s="$import_s" 'BEGIN {printf "%.0f", n / s}') | $(mib "$rss_import") |"
		echo "| $csv_codes codes exported (${export_mb} MB, GET /admin/codes/export) | $export_s | $(awk -v n="$csv_codes" -v s="$export_s" 'BEGIN {printf "%.0f", n / s}') | $(mib "$rss_export") |"
		echo
		echo "The shim's peak RSS after start, before either: $(mib "$rss_idle") (each peak is measured from a reset, /proc/PID/clear_refs)."
		echo
		echo "| cycle (c) at $clients clients, ${seconds}s | ops/s | p50 ms | p99 ms | ÷ without |"
		echo "| --- | ---: | ---: | ---: | ---: |"
		echo "| without an export (first) | $alone | |"
		echo "| during one export of the $csv_codes codes read at $rate bytes/s (at the end of the run: $slow_state) | $slow | $(ratio "$slow_ops") |"
		echo "| during exports of the $csv_codes codes at full speed, back to back ($n_full ended in the run) | $full | $(ratio "$full_ops") |"
		echo "| without an export (last) | $alone2 | |"
		echo
		echo "÷ without: against the mean of the two runs without."
	} >>"$out"
	kill "$shim_pid" 2>/dev/null && wait "$shim_pid" 2>/dev/null
	shim_pid=
	export PGDATABASE=postgres
	psql -qX -c "DROP DATABASE psk_csv" >/dev/null
fi

# 5. Held snapshot: cycle (c) as it is, then with a REPEATABLE READ
# transaction opened at second $snap_hold_at and kept open to the end (what
# a report, pg_dump or an idle-in-transaction session does).
# snap_run NAME HOLD: ops/s per interval into $work/NAME.points ("second
# ops/s"), the held session's state into $work/NAME.state.
snap_run() {
	local name=$1 hold=$2 bpid hpid j
	j=$((snap_clients < ncpu ? snap_clients : ncpu))
	psql -qX -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
	"$PGBIN/pgbench" -n -M prepared -c "$snap_clients" -j "$j" -T "$snap_seconds" \
		-l --aggregate-interval="$snap_interval" --log-prefix="$work/$name" \
		-f bench/psk_cycle.sql >"$work/$name.out" 2>&1 &
	bpid=$!
	hpid=
	if [ "$hold" = yes ]; then
		sleep "$snap_hold_at"
		PGAPPNAME=psk_bench_held psql -XAtq -c "BEGIN ISOLATION LEVEL REPEATABLE READ" \
			-c "SELECT count(*) FROM psk.users" -c "SELECT pg_sleep($snap_seconds)" >/dev/null 2>&1 &
		hpid=$!
		sleep $((snap_seconds - snap_hold_at - 1 > 0 ? snap_seconds - snap_hold_at - 1 : 0))
		psql -XAt -c "SELECT coalesce(string_agg('held, xmin age ' || age(backend_xmin), ', '), 'not held')
			FROM pg_stat_activity WHERE application_name = 'psk_bench_held' AND backend_xmin IS NOT NULL" \
			>"$work/$name.state"
	fi
	wait "$bpid" || { tail -5 "$work/$name.out"; die "pgbench of $name failed"; }
	if [ -n "$hpid" ]; then
		psql -XAtq -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'psk_bench_held'" >/dev/null
		wait "$hpid" 2>/dev/null
	fi
	psql -XAt -c "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'psk.codes'::regclass" >"$work/$name.dead"
	cat "$work/$name".[0-9]* 2>/dev/null | awk '$1 ~ /^[0-9]+$/ {print $1, $2}' | sort -n |
		awk -v iv="$snap_interval" -v secs="$snap_seconds" '
			NR == 1 {s = $1}
			{k = int(($1 - s) / iv); n[k] += $2; if (k > m) m = k}
			END {for (k = 0; k <= m; k++) if ((k + 1) * iv <= secs) printf "%d %.0f\n", (k + 1) * iv, n[k] / iv}' \
		>"$work/$name.points"
}
if [ -n "$snap_sizes" ]; then
	snap_png=snapshot-$stamp-$git_rev.png
	{
		echo
		echo "## Held snapshot: cycle (c) at $snap_clients clients for ${snap_seconds}s, a REPEATABLE READ transaction opened at second $snap_hold_at"
		echo
		echo "ops/s per ${snap_interval}s (the point at second t counts the interval that ends there); ÷ without: the mean of the points after second $snap_hold_at with the snapshot over the same points without it."
	} >>"$out"
	plot=
	for n in $snap_sizes; do
		echo "== held snapshot: $n codes: loading"
		bench_db psk_snapshot "$n"
		echo "   cycle (c) at $snap_clients clients for ${snap_seconds}s, without and with a snapshot held from second $snap_hold_at"
		snap_run "snap-$n-without" no
		snap_run "snap-$n-with" yes
		join "$work/snap-$n-without.points" "$work/snap-$n-with.points" >"$work/snap-$n.dat"
		ratio=$(awk -v h="$snap_hold_at" '$1 > h {a += $2; b += $3} END {if (a > 0) printf "%.2f", b / a; else print "-"}' \
			"$work/snap-$n.dat")
		state=$(cat "$work/snap-$n-with.state")
		echo "   during the hold ÷ without: $ratio ($state near the end)"
		{
			echo
			echo "### $n codes: during the hold ÷ without = $ratio"
			echo
			echo "| second | ops/s without | ops/s with the snapshot |"
			echo "| ---: | ---: | ---: |"
			awk -v h="$snap_hold_at" '{printf "| %d%s | %s | %s |\n", $1, ($1 > h ? " (held)" : ""), $2, $3}' "$work/snap-$n.dat"
			echo
			echo "Near the end of the run with it: $state; dead tuples of psk.codes at the end: $(cat "$work/snap-$n-without.dead") without, $(cat "$work/snap-$n-with.dead") with."
		} >>"$out"
		plot="$plot${plot:+, }\"$work/snap-$n.dat\" using 1:2 with linespoints title \"$n codes, without\", \"$work/snap-$n.dat\" using 1:3 with linespoints title \"$n codes, snapshot held from ${snap_hold_at}s\""
		export PGDATABASE=postgres
		psql -qX -c "DROP DATABASE psk_snapshot" >/dev/null
	done
	{
		echo
		echo "![ops/s with and without a held snapshot]($snap_png)"
	} >>"$out"
	gnuplot <<-EOF && written="$written and bench/results/$snap_png" || echo "gnuplot failed: no PNG" >&2
		set terminal pngcairo size 900,450 noenhanced
		set output "bench/results/$snap_png"
		set title "psk cycle (c), $snap_clients clients, snapshot held from ${snap_hold_at}s, git $git_rev, $stamp"
		set xlabel "seconds"
		set ylabel "cycles/s"
		set xrange [0:*]
		set yrange [0:*]
		set arrow from $snap_hold_at, graph 0 to $snap_hold_at, graph 1 nohead dashtype 2
		set key bottom right
		set grid
		plot $plot
	EOF
fi

cp "$out" "$result"
cat "$result"
echo
echo "written to $written"
