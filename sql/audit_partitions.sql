-- The audit log partitioned by week (45_audit_partitions.sql, writer.c,
-- partitions.c): where rows go, what psk_audit_maintain makes, moves and
-- drops, append-only on every partition, and the readers over partitions.
\i test/fixtures/reset.sql
\i test/fixtures/engine.sql
\set VERBOSITY terse
SET TimeZone = 'UTC';

-- a fresh install: only the default partition, and the engine's rows go there
SELECT count(*) AS weekly_partitions FROM psk.audit_partitions();
SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['PT-1', 'PT-2']);
SELECT code FROM psk_reserve('osv@example.com', 'before upkeep');
SELECT tableoid::regclass AS went_to, count(*) FROM psk.audit_log GROUP BY 1;
SELECT max(id) AS last_id, count(*) AS rows_before FROM psk.audit_log \gset

-- the upkeep: this week and two ahead, Monday to Monday, UTC; the rows of
-- the default partition moved to their week with their ids
SELECT partition_name = 'psk.audit_log_p' || to_char(date_trunc('week', now(), 'UTC'), 'YYYYMMDD')
         OR action = 'created' AS expected, action, n
  FROM psk_audit_maintain() ORDER BY action, partition_name;
SELECT count(*) AS weekly_partitions,
       min(lower_bound) = date_trunc('week', now(), 'UTC') AS from_this_week,
       max(upper_bound) = date_trunc('week', now(), 'UTC') + interval '504 hours' AS three_weeks
  FROM psk.audit_partitions();
SELECT count(*) AS in_default FROM psk.audit_log_default;
SELECT count(*) = :rows_before AS all_rows_kept, max(id) = :last_id AS same_ids,
       bool_and(tableoid = (SELECT part FROM psk.audit_partitions() ORDER BY lower_bound LIMIT 1)) AS in_this_week
  FROM psk.audit_log;
-- every partition made has the indexes of the default one
SELECT p.part, array_agg(replace(i.indexrelid::regclass::text, p.part::text, '') ORDER BY 1) AS indexes
  FROM psk.audit_partitions() p JOIN pg_index i ON i.indrelid = p.part GROUP BY 1 ORDER BY 1 LIMIT 1 \gset
SELECT :'indexes' AS indexes_of_a_partition;
-- a second upkeep changes nothing
SELECT count(*) AS nothing_to_do FROM psk_audit_maintain();

-- the engine writes to this week's partition now, and the next id
SELECT code FROM psk_release('osv@example.com', (SELECT code FROM psk.codes WHERE tester_name = 'before upkeep'));
SELECT id > :last_id AS next_id, tableoid::regclass = (SELECT part FROM psk.audit_partitions() ORDER BY lower_bound LIMIT 1) AS this_week
  FROM psk.audit_log ORDER BY id DESC LIMIT 1;

-- rows at a week's boundary: its first microsecond opens it, the one
-- before it is in the week before (or the default partition, none made)
INSERT INTO psk.audit_log (logged_at, action, code, note)
SELECT date_trunc('week', now(), 'UTC') + d, 'COMMENTED', 'EDGE', n
  FROM (VALUES (interval '0', 'first'), (interval '-1 microsecond', 'before'),
               (interval '504 hours' - interval '1 microsecond', 'last ahead'),
               (interval '504 hours', 'past every partition')) v(d, n);
SELECT note, CASE WHEN tableoid = 'psk.audit_log_default'::regclass THEN 'default'
                  ELSE 'week ' || (logged_at >= date_trunc('week', now(), 'UTC'))::text END AS went_to
  FROM psk.audit_log WHERE code = 'EDGE' ORDER BY logged_at;
-- the upkeep moves those to partitions of their weeks
SELECT action, count(*) FROM psk_audit_maintain() GROUP BY 1 ORDER BY 1;
SELECT count(*) AS in_default FROM psk.audit_log_default;
SELECT count(*) AS weekly_partitions FROM psk.audit_partitions();

-- append-only on every partition, the new ones too, and through the parent
SELECT part AS newest FROM psk.audit_partitions() ORDER BY lower_bound DESC LIMIT 1 \gset
SELECT test.err(format('UPDATE %s SET note = ''x''', :'newest'));
SELECT test.err(format('DELETE FROM %s', :'newest'));
SELECT test.err(format('TRUNCATE %s', :'newest'));
SELECT test.err('TRUNCATE psk.audit_log_default');
SELECT test.err('DELETE FROM psk.audit_log WHERE code = ''EDGE''');
SELECT test.err('TRUNCATE psk.audit_log');
SELECT count(*) AS edge_rows_kept FROM psk.audit_log WHERE code = 'EDGE';
-- a partition made by hand gets the TRUNCATE trigger at the next upkeep
CREATE TABLE psk.audit_log_by_hand PARTITION OF psk.audit_log
  FOR VALUES FROM ('2001-01-01 00:00+00') TO ('2001-01-08 00:00+00');
SELECT partition_name, action FROM psk_audit_maintain();
SELECT test.err('TRUNCATE psk.audit_log_by_hand');
INSERT INTO psk.audit_log (logged_at, action) VALUES ('2001-01-02 00:00+00', 'COMMENTED');
SELECT test.err('DELETE FROM psk.audit_log_by_hand');
DROP TABLE psk.audit_log_by_hand;

-- retention: rows of weeks long past, read by every reader, then gone with
-- their partitions (never row by row)
SELECT id AS osv_id FROM psk.users WHERE email = 'osv@example.com' \gset
INSERT INTO psk.audit_log (logged_at, action, code, code_type, user_id, user_name, contact_email, note)
SELECT now() - d, a, 'OLD-1', 'OSV', :osv_id, 'osv', 'osv@example.com', 'old'
  FROM (VALUES (interval '60 days', 'RESERVED'), (interval '59 days', 'RELEASED')) v(d, a);
-- (a partition for every week from theirs to this one; last week's was
-- made for the EDGE row above)
SELECT action, CASE action WHEN 'created' THEN (count(*) + 1) * interval '168 hours'
                   = date_trunc('week', now(), 'UTC') - date_trunc('week', now() - interval '60 days', 'UTC')
                   ELSE count(*) = 1 END AS every_week_since_theirs
  FROM psk_audit_maintain() GROUP BY 1 ORDER BY 1;
SELECT count(*) * interval '168 hours' = max(upper_bound) - min(lower_bound) AS no_gap FROM psk.audit_partitions();
SELECT count(*) AS recent_rows FROM psk.audit_log WHERE logged_at > now() - interval '40 days' \gset
SELECT (SELECT count(*) FROM psk_log(code => 'OLD-1')) AS in_psk_log,
       (SELECT count(*) FROM psk_user_log('osv@example.com', 100) WHERE code = 'OLD-1') AS in_user_log,
       (SELECT count(*) FROM psk_recent_releases(100) WHERE code = 'OLD-1') AS in_recent_releases;
SET psk.audit_retention = '40d';
SELECT action, count(*) * interval '168 hours'
         = date_trunc('week', now() - interval '40 days', 'UTC') - date_trunc('week', now() - interval '60 days', 'UTC')
         AS the_weeks_past_retention
  FROM psk_audit_maintain() GROUP BY 1 ORDER BY 1;
RESET psk.audit_retention;
SELECT (SELECT count(*) FROM psk_log(code => 'OLD-1')) AS in_psk_log,
       (SELECT count(*) FROM psk_user_log('osv@example.com', 100) WHERE code = 'OLD-1') AS in_user_log,
       (SELECT count(*) FROM psk_recent_releases(100) WHERE code = 'OLD-1') AS in_recent_releases,
       (SELECT count(*) FROM psk.audit_log WHERE code = 'OLD-1') AS in_table;
SELECT min(lower_bound) = date_trunc('week', now() - interval '40 days', 'UTC') AS kept_from FROM psk.audit_partitions();
-- nothing else went
SELECT count(*) = :recent_rows AS recent_rows_kept FROM psk.audit_log;

-- who may run the upkeep: not PUBLIC
SELECT has_function_privilege('public', 'psk_audit_maintain(int)', 'EXECUTE') AS public_may;
SELECT test.err('SELECT psk_audit_maintain(-1)');

-- psk_log's total: exact up to 10,000 matching rows, then an estimate
INSERT INTO psk.audit_log (action, code, note)
SELECT 'COMMENTED', 'BULK-' || g, 'bulk' FROM generate_series(1, 10050) g;
ANALYZE psk.audit_log;
SELECT total_count >= 10001 AS total_above, total_is_estimate FROM psk_log(page_size => 1);
SELECT total_count, total_is_estimate FROM psk_log(page_size => 1, action => 'RESERVED');
SELECT total_count, total_is_estimate FROM psk_log(page_size => 1, code => 'BULK-1000');
SELECT count(*) AS page_rows, bool_and(total_is_estimate) FROM psk_log(page => 3, page_size => 100);

-- every page read along an index, newest partitions first (the statements
-- of readers.c with the values of a call): no sequential scan, no sort,
-- the LIMIT on top (the partitions, named by date, are left out)
CREATE FUNCTION test.plan_lines(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    SET LOCAL enable_seqscan = off;  -- (tiny tables would otherwise be read whole)
    FOR r IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        RETURN NEXT r."QUERY PLAN";
    END LOOP;
END
$$;
SELECT top, NOT bool_or(l ~ 'Seq Scan|->  Sort') AS along_indexes,
       count(*) FILTER (WHERE l ~ 'time_idx') >= 1 AS time_indexes  -- (future weeks pruned)
  FROM (SELECT l, first_value(l) OVER () AS top FROM test.plan_lines($$
SELECT a.id FROM psk.audit_log a
 WHERE a.logged_at < now() ORDER BY a.logged_at DESC, a.id DESC OFFSET 100 LIMIT 20$$) l) p GROUP BY top;
SELECT top, NOT bool_or(l ~ 'Seq Scan|->  Sort') AS along_indexes
  FROM (SELECT l, first_value(l) OVER () AS top FROM test.plan_lines($$
SELECT id, logged_at FROM psk.audit_log WHERE user_id = 1 ORDER BY logged_at DESC, id DESC LIMIT 20$$) l) p GROUP BY top;
SELECT top, NOT bool_or(l ~ 'Seq Scan|->  Sort') AS along_indexes,
       count(*) FILTER (WHERE l ~ 'releases_idx') = (SELECT count(*) + 1 FROM psk.audit_partitions()) AS every_partition
  FROM (SELECT l, first_value(l) OVER () AS top FROM test.plan_lines($$
SELECT code FROM psk.audit_log WHERE action = 'RELEASED' ORDER BY id DESC LIMIT 5$$) l) p GROUP BY top;
-- a month: only its weeks' partitions (pruned), along their time index
SELECT top, NOT bool_or(l ~ 'Seq Scan|->  Sort') AS along_indexes,
       count(*) FILTER (WHERE l ~ 'time_idx') BETWEEN 1 AND 2 AS its_weeks_only
  FROM (SELECT l, first_value(l) OVER () AS top FROM test.plan_lines(format($$
SELECT a.id FROM psk.audit_log a WHERE a.logged_at >= %L AND a.logged_at < %L
 ORDER BY a.logged_at DESC, a.id DESC LIMIT 20$$, date_trunc('week', now(), 'UTC') + interval '1 day',
       date_trunc('week', now(), 'UTC') + interval '2 days')) l) p GROUP BY top;
