-- psk_log's code filter when it is broad (more than 10,000 codes match):
-- the prefix is a range of each partition's C-collated code index, the
-- suffix the codes psk.audit_codes finds, one by one; each partition is
-- read by a statement of its own, newest first, and the default partition
-- merged in (readers.c).  Whatever the path, the rows must be exactly
-- those of matching the text over the whole log, newest first, and the
-- total exact up to 10,000 rows, an estimate (flagged) above.
\i test/fixtures/reset.sql
\set VERBOSITY terse

-- The page psk_log gives against the same filter matched as text.
CREATE FUNCTION test.same_page(f text, page int, size int) RETURNS text
LANGUAGE sql AS $$
WITH got AS (
    SELECT row_number() OVER () AS n, id FROM psk_log(page, size, f)
), want AS (
    SELECT row_number() OVER (ORDER BY logged_at DESC, id DESC) AS n, id
      FROM (SELECT a.logged_at, a.id FROM psk.audit_log a
             WHERE starts_with(a.code, psk.normalize_code(f))
                OR right(a.code, length(psk.normalize_code(f))) = psk.normalize_code(f)
             ORDER BY a.logged_at DESC, a.id DESC OFFSET (page - 1) * size LIMIT size) w
)
SELECT CASE WHEN EXISTS (SELECT FROM got FULL JOIN want USING (n)
                          WHERE got.id IS DISTINCT FROM want.id)
            THEN 'DIFFERENT'
            ELSE (SELECT count(*) FROM got) || ' rows, same' END
$$;
-- The rows matching the text, counted.
CREATE FUNCTION test.text_count(f text) RETURNS bigint
LANGUAGE sql AS $$
SELECT count(*) FROM psk.audit_log a
 WHERE starts_with(a.code, psk.normalize_code(f))
    OR right(a.code, length(psk.normalize_code(f))) = psk.normalize_code(f)
$$;

-- Four weeks of partitions (the rows land in the default partition, the
-- upkeep moves each to its week's).  Broad prefixes and suffixes:
--   BRD-n      10,100 codes, one row each, spread over the four weeks
--   Qn-SFX     10,100 codes ending in -SFX, spread the same way
--   OLD-n      10,500 codes, only in the oldest week (no newer row)
--   XYZ-BRD, BRD-X-BRD  a suffix only and both a prefix and a suffix
SELECT date_trunc('week', now(), 'UTC') AS this_week \gset
INSERT INTO psk.audit_log (logged_at, action, code, note)
SELECT :'this_week'::timestamptz - (g % 4) * interval '7 days' + g * interval '1 second',
       'COMMENTED', c, 'broad'
  FROM generate_series(1, 10100) g,
       LATERAL (VALUES ('BRD-' || g), ('Q' || g || '-SFX')) v(c);
INSERT INTO psk.audit_log (logged_at, action, code, note)
SELECT :'this_week'::timestamptz - interval '21 days' + g * interval '1 second', 'COMMENTED',
       'OLD-' || g, 'old'
  FROM generate_series(1, 10500) g;
INSERT INTO psk.audit_log (logged_at, action, code, note)
SELECT :'this_week'::timestamptz - d * interval '1 day', 'COMMENTED', c, 'both'
  FROM (VALUES ('XYZ-BRD'), ('BRD-X-BRD'), ('AXBRDX')) v(c), generate_series(0, 20, 3) d;
-- and this week's newest 25,000 rows match none of them (a page of a
-- suffix that more than 10,000 codes end with finds none of its rows among
-- them, and looks its codes up one by one there)
INSERT INTO psk.audit_log (logged_at, action, code, note)
SELECT :'this_week'::timestamptz + interval '4 hours' + g * interval '1 ms', 'COMMENTED',
       'FILL-' || g, 'fill'
  FROM generate_series(1, 25000) g;
SELECT count(*) > 0 AS upkept FROM psk_audit_maintain(0);
SELECT count(*) AS in_default FROM psk.audit_log_default;
SELECT count(DISTINCT tableoid) AS partitions_with_rows FROM psk.audit_log;
-- rows the upkeep has not moved yet (past every partition, before the
-- first): the default partition's, merged into the page where they belong
INSERT INTO psk.audit_log (logged_at, action, code, note)
VALUES (:'this_week'::timestamptz + interval '60 days', 'COMMENTED', 'BRD-FUTURE', 'default'),
       (:'this_week'::timestamptz - interval '90 days', 'COMMENTED', 'BRD-PAST', 'default'),
       (:'this_week'::timestamptz + interval '60 days', 'COMMENTED', 'OLD-FUTURE', 'default');
SELECT count(*) AS in_default FROM psk.audit_log_default;
ANALYZE psk.audit_log;

-- the pages, as matching the text: broad prefixes (new, old), a broad
-- suffix, narrow ones, one matching both ways, none
SELECT f.code, f.page, f.size, test.same_page(f.code, f.page, f.size)
  FROM (VALUES ('brd', 1, 20), ('brd', 2, 20), ('BRD-', 7, 100), ('brd', 506, 20), ('brd', 1000, 20),
               ('-sfx', 1, 20), ('-SFX', 300, 20), ('sfx', 1, 100),
               ('OLD-', 1, 20), ('OLD-', 525, 20), ('old', 1, 100),
               ('BRD-1', 1, 20), ('BRD-10', 2, 20), ('7-SFX', 1, 100), ('BRD-X-BRD', 1, 20),
               ('XYZ-BRD', 1, 20), ('NOPE', 1, 20)) f(code, page, size);

-- the total: exact up to 10,000 rows, an estimate (at least 10,001) above
SELECT f.code, l.total_is_estimate,
       CASE WHEN l.total_is_estimate THEN l.total_count >= 10001
            ELSE l.total_count = test.text_count(f.code) END AS total_right,
       test.text_count(f.code) AS text_count
  FROM (VALUES ('BRD'), ('-SFX'), ('OLD-'), ('BRD-1'), ('7-SFX'), ('XYZ-BRD')) f(code),
       LATERAL (SELECT * FROM psk_log(1, 1, f.code)) l
 ORDER BY 1;

-- at the boundary, the prefix and the suffix halves together: 6,000 rows
-- of EDGE-n codes (a code's rows in several partitions) and 3,999 of
-- codes ending in EDGE, one also starting with it (counted once), and
-- codes with EDGE inside (not matched)
INSERT INTO psk.audit_log (logged_at, action, code, note)
SELECT :'this_week'::timestamptz - (g % 3) * interval '7 days' + g * interval '1 ms',
       'COMMENTED', 'EDGE-' || (g % 2000), 'edge'
  FROM generate_series(1, 6000) g;
INSERT INTO psk.audit_log (logged_at, action, code, note)
SELECT :'this_week'::timestamptz - (g % 3) * interval '7 days' + g * interval '1 ms',
       'COMMENTED', CASE WHEN g = 1 THEN 'EDGE-X-EDGE' ELSE 'Z' || g || 'EDGE' END, 'edge'
  FROM generate_series(1, 3999) g;
INSERT INTO psk.audit_log (action, code, note) VALUES ('COMMENTED', 'AEDGEB', 'inside');
SELECT total_count, total_is_estimate, test.text_count('EDGE') AS text_count FROM psk_log(1, 1, 'edge');
SELECT test.same_page('edge', 1, 100) AS first_page, test.same_page('edge', 100, 100) AS last_page;
-- 10,000: still counted
INSERT INTO psk.audit_log (action, code, note) VALUES ('COMMENTED', 'Y-EDGE', 'edge');
SELECT total_count, total_is_estimate, test.text_count('EDGE') AS text_count FROM psk_log(1, 1, 'edge');
-- 10,001: an estimate, flagged
INSERT INTO psk.audit_log (action, code, note) VALUES ('COMMENTED', 'W-EDGE', 'edge');
SELECT total_count >= 10001 AS above, total_is_estimate, test.text_count('EDGE') AS text_count
  FROM psk_log(1, 1, 'edge');
SELECT test.same_page('edge', 1, 100) AS first_page, test.same_page('edge', 101, 100) AS last_page;
-- the same rows through the export (GET /admin/logs/export)
SELECT access_token AS admin FROM psk_login('admin@example.com', 'Rdl@12345') \gset
SELECT count(*) AS exported, count(*) = test.text_count('EDGE') AS as_many
  FROM psk.http_logs_export(:'admin', NULL, '{"code": "edge"}') x;

-- Each step along an index, as readers.c plans it for these values (its
-- statements with this call's values; COSTS OFF): no sequential scan of a
-- partition, the code index's range for a prefix, the reversed index of
-- psk.audit_codes for a suffix.  This test's weeks are small (a few
-- thousand rows): but where a week's plan is the point (the planner's
-- choice between its code and time indexes), the planner is left to
-- choose as it would on 50M rows.
ANALYZE psk.audit_log;
CREATE FUNCTION test.plan(q text, seqscan bool) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    -- (this test's weeks are small: read whole unless told not to)
    PERFORM set_config('enable_seqscan', seqscan::text, true);
    FOR r IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        RETURN NEXT r."QUERY PLAN";
    END LOOP;
END
$$;
CREATE FUNCTION test.plan_summary(q text, seqscan bool DEFAULT false) RETURNS text LANGUAGE sql AS $$
SELECT concat_ws(' ',
         CASE WHEN bool_or(l ~ 'Seq Scan on audit_log_p') THEN 'SEQ-SCAN' END,
         CASE WHEN bool_or(l ~ '(Index (Only )?Scan.* using|Bitmap Index Scan on) audit_log_p\d+_code_idx') THEN 'code_idx' END,
         CASE WHEN bool_or(l ~ 'Index Cond: .*code.* >= ') THEN 'range' END,
         CASE WHEN bool_or(l ~ 'audit_codes_reversed_idx') THEN 'reversed_idx' END,
         CASE WHEN bool_or(l ~ 'Scan Backward using audit_log_p\d+_time_idx') THEN 'time_idx' END,
         CASE WHEN bool_or(l ~ 'Sort') THEN 'sort' END)
  FROM test.plan(q, seqscan) l
$$;
-- the count: the prefix's rows, then the suffix's codes one by one
SELECT 'count, prefix' AS step, test.plan_summary($$
SELECT count(*) FROM (SELECT FROM psk.audit_log a WHERE a.code COLLATE "C" LIKE 'BRD%' ESCAPE '!' LIMIT 10001) s$$);
SELECT 'count, suffix' AS step, test.plan_summary($$
SELECT count(*) FROM (SELECT FROM psk.audit_codes c,
       LATERAL (SELECT FROM psk.audit_log a WHERE a.code COLLATE "C" = c.code LIMIT 10001) l
 WHERE reverse(c.code) ^@ reverse('-SFX' COLLATE "C") AND NOT c.code ^@ ('-SFX' COLLATE "C")
 LIMIT 10001) s$$);
-- a page of one partition: where the prefix's rows are few, sorted from
-- the code index; where they are many, newest first along the time index
SELECT c.relname AS newest FROM psk.audit_partitions() p JOIN pg_class c ON c.oid = p.part
 WHERE p.lower_bound = :'this_week'::timestamptz \gset
SELECT c.relname AS oldest FROM psk.audit_partitions() p JOIN pg_class c ON c.oid = p.part
 WHERE p.lower_bound = :'this_week'::timestamptz - interval '21 days' \gset
SELECT 'page, few in the week' AS step, test.plan_summary(format($$
SELECT id FROM psk.%I a WHERE a.code COLLATE "C" LIKE 'OLD-%%' ESCAPE '!'
 ORDER BY a.logged_at DESC, a.id DESC LIMIT 20$$, :'newest'), true);
SELECT 'page, many in the week' AS step, test.plan_summary(format($$
SELECT id FROM psk.%I a WHERE a.code COLLATE "C" LIKE 'OLD-%%' ESCAPE '!'
 ORDER BY a.logged_at DESC, a.id DESC LIMIT 20$$, :'oldest'), true);
-- the suffix's codes, up to 10,000 of them each looked up (a bounded
-- number of probes whatever the planner expects)
SELECT 'page, the suffix''s few codes' AS step, test.plan_summary(format($$
SELECT l.id FROM psk.audit_codes c,
       LATERAL (SELECT a.id, a.logged_at FROM psk.%I a WHERE a.code COLLATE "C" = c.code
                 ORDER BY a.logged_at DESC, a.id DESC LIMIT 20) l
 WHERE reverse(c.code) ^@ reverse('7-SFX' COLLATE "C") AND NOT c.code ^@ ('7-SFX' COLLATE "C")
 ORDER BY l.logged_at DESC, l.id DESC LIMIT 20$$, :'newest'), true);
-- (more codes: first the week's newest rows, matched as text)
SELECT 'page, the suffix''s many codes' AS step, test.plan_summary(format($$
SELECT a.id FROM (SELECT * FROM psk.%I w ORDER BY w.logged_at DESC, w.id DESC LIMIT 20000) a
 WHERE a.code LIKE '%%-SFX' AND NOT a.code COLLATE "C" LIKE '-SFX%%'
 ORDER BY a.logged_at DESC, a.id DESC LIMIT 20$$, :'newest'), true);
-- a code filter's few rows (counted), all of them along the code index
SELECT 'page, few counted' AS step, test.plan_summary($$
WITH m AS MATERIALIZED (
  SELECT a.id, a.logged_at FROM psk.audit_log a WHERE a.code COLLATE "C" LIKE 'BRD-1%' ESCAPE '!'
  UNION ALL
  SELECT l.* FROM psk.audit_codes c,
         LATERAL (SELECT a.id, a.logged_at FROM psk.audit_log a WHERE a.code COLLATE "C" = c.code) l
   WHERE reverse(c.code) ^@ reverse('BRD-1' COLLATE "C") AND NOT c.code ^@ ('BRD-1' COLLATE "C"))
SELECT * FROM m ORDER BY logged_at DESC, id DESC LIMIT 20$$);
