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

-- The readers on a log of realistic size, planned by cost (no
-- enable_seqscan = off): 200,000 rows in this week's partition (its
-- Thursday), 50 users,
-- five actions, a rare pool among the releases.  Each reader along its
-- index (45_audit_partitions.sql, psk.audit_partition_indexes); the rows
-- past an id (the metrics' fold) along the BRIN index of ids.
INSERT INTO psk.audit_log (logged_at, action, code, code_type, user_id, user_name)
SELECT date_trunc('week', now(), 'UTC') + interval '3 days' - g * interval '1 ms',
       (ARRAY['RESERVED', 'RELEASED', 'CONFIRMED', 'EXPIRED', 'ADDED'])[1 + g % 5],
       'BIG-' || g % 50000, CASE WHEN g % 10000 = 1 THEN 'HSV' ELSE 'OSV' END,
       1000 + g % 50, 'big' || g % 50
  FROM generate_series(1, 200000) g;
ANALYZE psk.audit_log;
SELECT max(id) - 1000 AS recent_id FROM psk.audit_log \gset
CREATE FUNCTION test.cost_plan(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        RETURN NEXT r."QUERY PLAN";
    END LOOP;
END
$$;
SELECT c.relname AS big_week FROM psk.audit_partitions() p JOIN pg_class c ON c.oid = p.part
 WHERE p.lower_bound = date_trunc('week', now(), 'UTC') \gset
SELECT reader, NOT bool_or(l ~ ('Seq Scan on ' || :'big_week' || ' ')) AS big_week_by_index,
       count(*) FILTER (WHERE l ~ '->  Sort|^Sort') AS sorts,
       string_agg(DISTINCT substring(l FROM :'big_week' || '_(code_idx|user_idx|time_idx|releases_idx|id_brin)'), ',') AS indexes
  FROM (VALUES
    ('psk_log page', 'SELECT id FROM psk.audit_log ORDER BY logged_at DESC, id DESC OFFSET 100 LIMIT 20'),
    ('psk_log action', $$SELECT id FROM psk.audit_log WHERE action = 'EXPIRED' ORDER BY logged_at DESC, id DESC LIMIT 20$$),
    ('psk_user_log', 'SELECT id FROM psk.audit_log WHERE user_id = 1007 ORDER BY logged_at DESC, id DESC LIMIT 20'),
    ('psk_recent_releases', $$SELECT code FROM psk.audit_log WHERE action = 'RELEASED' ORDER BY id DESC LIMIT 5$$),
    ('psk_recent_releases HSV', $$SELECT code FROM psk.audit_log WHERE action = 'RELEASED' AND code_type = 'HSV' ORDER BY id DESC LIMIT 5$$),
    ('a code''s history', $$SELECT id FROM psk.audit_log WHERE code COLLATE "C" = 'BIG-77' ORDER BY id DESC LIMIT 1$$),
    ('metrics fold', format('SELECT max(LEAST(id, %s)) FROM psk.audit_log WHERE id > %s', :recent_id + 1000000, :recent_id)),
    ('metrics count', format('SELECT action, count(*) FROM psk.audit_log WHERE id > %s GROUP BY action', :recent_id))
  ) r(reader, q), test.cost_plan(r.q) l
 GROUP BY reader ORDER BY reader;
-- and the readers themselves, as a caller sees them
SELECT count(*) AS hsv_releases FROM psk_recent_releases(5, 'HSV');
SELECT psk.metrics_refresh();
SELECT psk.metrics_refresh();
SELECT (SELECT sum(n) FROM psk.transition_totals) + (SELECT count(*) FROM psk.audit_log WHERE id > (SELECT folded_to FROM psk.metrics_state))
       = (SELECT count(*) FROM psk.audit_log) AS metrics_fold_counts_every_row;

-- A page of each reader is the same whatever the index set: the readers'
-- pages on this layout, then on the one before it (a primary key on id on
-- every partition, no BRIN, the code index in the database's collation),
-- compared row for row.
CREATE TABLE test.pages AS
SELECT 'log p1' AS reader, to_jsonb(l) AS r FROM psk_log(1, 50) l
UNION ALL SELECT 'log p40 EXPIRED', to_jsonb(l) FROM psk_log(40, 20, action => 'EXPIRED') l
UNION ALL SELECT 'log code', to_jsonb(l) FROM psk_log(1, 20, code => 'BIG-4999') l
UNION ALL SELECT 'log user_name', to_jsonb(l) FROM psk_log(3, 20, user_name => 'big7') l
UNION ALL SELECT 'releases', to_jsonb(l) FROM psk_recent_releases(100) l
UNION ALL SELECT 'releases HSV', to_jsonb(l) FROM psk_recent_releases(100, 'HSV') l;
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.oid::regclass AS part, c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'psk.audit_log'::regclass LOOP
    EXECUTE format('DROP INDEX psk.%I', r.relname || '_id_brin');
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I PRIMARY KEY (id)', r.part, r.relname || '_pkey');
    EXECUTE format('DROP INDEX psk.%I', r.relname || '_code_idx');
    EXECUTE format('CREATE INDEX %I ON %s (code, id)', r.relname || '_code_idx', r.part);
  END LOOP;
END $$;
SELECT reader, count(*) AS rows,
       count(*) = (SELECT count(*) FROM test.pages o WHERE o.reader = p.reader) AS as_many,
       bool_and(EXISTS (SELECT FROM test.pages o WHERE o.reader = p.reader AND o.r = p.r)) AS same_rows
  FROM (SELECT 'log p1' AS reader, to_jsonb(l) AS r FROM psk_log(1, 50) l
        UNION ALL SELECT 'log p40 EXPIRED', to_jsonb(l) FROM psk_log(40, 20, action => 'EXPIRED') l
        UNION ALL SELECT 'log code', to_jsonb(l) FROM psk_log(1, 20, code => 'BIG-4999') l
        UNION ALL SELECT 'log user_name', to_jsonb(l) FROM psk_log(3, 20, user_name => 'big7') l
        UNION ALL SELECT 'releases', to_jsonb(l) FROM psk_recent_releases(100) l
        UNION ALL SELECT 'releases HSV', to_jsonb(l) FROM psk_recent_releases(100, 'HSV') l) p
 GROUP BY reader ORDER BY reader;
-- psk.audit_partition_indexes brings such partitions back to this index set
SELECT count(psk.audit_partition_indexes(inhrelid::regclass)) > 0 AS converted
  FROM pg_inherits WHERE inhparent = 'psk.audit_log'::regclass;
SELECT count(*) FILTER (WHERE i.indisprimary) AS primary_keys,
       count(*) FILTER (WHERE i.indexrelid::regclass::text ~ '_id_brin$') = count(DISTINCT p.inhrelid) AS brin_on_each,
       count(*) FILTER (WHERE i.indexrelid::regclass::text ~ '_code_idx$'
                          AND i.indcollation[0] = 'pg_catalog."C"'::regcollation)
         = count(DISTINCT p.inhrelid) AS c_code_index_on_each
  FROM pg_inherits p JOIN pg_index i ON i.indrelid = p.inhrelid
 WHERE p.inhparent = 'psk.audit_log'::regclass;
