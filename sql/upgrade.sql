-- psk 0.1.0, as released, updates to 0.2.0 and then to the current version
-- with its data, and is then the same as a fresh install of the current
-- version: every function (language, body or symbol, security, settings,
-- grants), relation, column, index, constraint and trigger, and the tables
-- and sequences that pg_dump keeps.
\set ECHO none
\set QUIET on
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS test CASCADE;
DROP EXTENSION IF EXISTS psk;
RESET client_min_messages;
-- One line per object of the extension; equal lines, equal objects.
SET check_function_bodies = off;
CREATE FUNCTION public.psk_objects() RETURNS SETOF text LANGUAGE sql AS $$
    WITH ext AS (
        SELECT objid, classid FROM pg_depend
         WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'psk')
           AND deptype = 'e'
    ), rel AS (
        SELECT oid FROM pg_class WHERE relnamespace = 'psk'::regnamespace
    )
    SELECT 'function ' || p.oid::regprocedure || ' returns ' || pg_get_function_result(p.oid)
           || ' language ' || l.lanname || ' volatile ' || p.provolatile::text
           || ' strict ' || p.proisstrict || ' definer ' || p.prosecdef
           || ' config ' || coalesce(array_to_string(p.proconfig, ','), '-')
           || ' bin ' || coalesce(p.probin, '-') || ' src ' || md5(p.prosrc)
           || ' acl ' || coalesce(p.proacl::text, '-')
      FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
     WHERE p.oid IN (SELECT objid FROM ext WHERE classid = 'pg_proc'::regclass)
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' kind ' || c.relkind::text
           || ' options ' || coalesce(c.reloptions::text, '-') || ' acl ' || coalesce(c.relacl::text, '-')
      FROM pg_class c WHERE c.oid IN (SELECT oid FROM rel)
    UNION ALL
    SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || ' not null ' || a.attnotnull || ' identity ' || a.attidentity::text
           || ' default ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
      FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attrelid IN (SELECT oid FROM rel) AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid IN (SELECT oid FROM rel)
    UNION ALL
    SELECT 'constraint ' || coalesce(conrelid::regclass::text, contypid::regtype::text) || ' ' || conname
           || ' ' || pg_get_constraintdef(oid)
      FROM pg_constraint WHERE connamespace = 'psk'::regnamespace
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger
     WHERE tgrelid IN (SELECT oid FROM rel) AND NOT tgisinternal
    UNION ALL
    SELECT 'type ' || t.oid::regtype || ' ' || t.typtype::text FROM pg_type t
     WHERE t.oid IN (SELECT objid FROM ext WHERE classid = 'pg_type'::regclass)
    UNION ALL
    SELECT 'dumped ' || u.rel::regclass || ' where ' || coalesce(nullif(u.cond, ''), '-')
      FROM pg_extension e, unnest(e.extconfig, e.extcondition) u(rel, cond)
     WHERE e.extname = 'psk'
$$;
\set QUIET off
\set ECHO all

CREATE EXTENSION psk VERSION '0.1.0' CASCADE;
SELECT extversion FROM pg_extension WHERE extname = 'psk';
SELECT lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = 'psk.http_reserve'::regproc;
-- data made under 0.1.0
SELECT FROM psk_create_user(NULL, 'Admin', 'admin', 'admin@example.com', 'Rdl@12345', true);
SELECT FROM psk_create_user('admin@example.com', 'Trillium', 'osv', 'osv@example.com', 'Rdl@12345', pool => 'OSV');
SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['U1', 'U2']);
SELECT code FROM psk_reserve('osv@example.com', 'before');
SELECT access_token AS token FROM psk_login('osv@example.com', 'Rdl@12345') \gset

ALTER EXTENSION psk UPDATE TO '0.2.0';
SELECT extversion FROM pg_extension WHERE extname = 'psk';
SELECT lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = 'psk.http_reserve'::regproc;
-- the data and the session carry over, and the new code runs on them
SELECT psk.http_me(:'token', NULL, NULL)::jsonb ->> 'contact_email' AS me;
SELECT psk.http_release(:'token', '{"code": "u1"}', NULL)::jsonb ->> 'released' AS released;
SELECT (psk.http_reserve(:'token', '{"tester_name": "after"}', NULL)::jsonb ->> 'code') AS reserved;
SELECT action, code, tester_name FROM psk.audit_log WHERE code IS NOT NULL ORDER BY id;

-- 0.2.1: every table and identity sequence kept by pg_dump
ALTER EXTENSION psk UPDATE TO '0.2.1';
SELECT extversion FROM pg_extension WHERE extname = 'psk';
SELECT rel::regclass AS dumped FROM pg_extension e, unnest(e.extconfig) rel
 WHERE e.extname = 'psk' ORDER BY rel::regclass::text;
SELECT psk.http_me(:'token', NULL, NULL)::jsonb ->> 'contact_email' AS me;

-- 0.3.0; psk_reserve is made anew (it gains request_id) with the grants
-- the old one had
CREATE ROLE regress_psk_upgrade;
GRANT EXECUTE ON FUNCTION psk_reserve(text, text, text, text, int) TO regress_psk_upgrade;
-- the log is moved into weekly partitions: a page of it before and after,
-- with rows of months ago, one at the start of a week (Monday 00:00 UTC)
INSERT INTO psk.audit_log (logged_at, action, code, note)
SELECT date_trunc('week', now() - interval '200 days', 'UTC') + d, 'COMMENTED', 'OLD1', n
  FROM (VALUES (interval '0', 'at a week''s start'), (interval '-1 microsecond', 'just before'),
               (interval '3 days 4 hours', 'mid-week')) v(d, n);
CREATE TABLE public.log_page_before AS
  SELECT total_count, id, logged_at, action, code, user_name, contact_email,
         tester_name, country, region, note FROM psk_log(1, 100);
SELECT max(id) AS last_id_before FROM psk.audit_log \gset
ALTER EXTENSION psk UPDATE TO '0.3.0';
SELECT relkind FROM pg_class WHERE oid = 'psk.audit_log'::regclass;
SELECT min(lower_bound) = date_trunc('week', now() - interval '200 days', 'UTC') - interval '168 hours'
         AS from_the_oldest_week,
       max(upper_bound) = date_trunc('week', now(), 'UTC') + interval '504 hours' AS to_two_weeks_ahead,
       count(*) * interval '168 hours' = max(upper_bound) - min(lower_bound) AS no_gap,
       min(upper_bound - lower_bound) AS span,
       bool_and(extract(isodow FROM lower_bound AT TIME ZONE 'UTC') = 1) AS mondays
  FROM psk.audit_partitions();
SELECT count(*) AS member_partitions FROM pg_depend d JOIN pg_inherits i ON i.inhrelid = d.objid
 WHERE d.deptype = 'e' AND i.inhparent = 'psk.audit_log'::regclass
   AND i.inhrelid <> 'psk.audit_log_default'::regclass;
SELECT count(*) AS rows_in_default FROM psk.audit_log_default;
-- every partition's code index C-collated (a prefix is a range of it),
-- the default one's too
SELECT count(*) = (SELECT count(*) FROM pg_inherits WHERE inhparent = 'psk.audit_log'::regclass)
         AS a_code_index_each,
       bool_and(i.indcollation[0] = 'pg_catalog."C"'::regcollation) AS c_collated
  FROM pg_inherits h JOIN pg_index i ON i.indrelid = h.inhrelid
  JOIN pg_class ic ON ic.oid = i.indexrelid
 WHERE h.inhparent = 'psk.audit_log'::regclass AND ic.relname LIKE '%\_code\_idx';
-- every row in the partition of its week; a row at a week's start opens it
SELECT a.note, a.logged_at = p.lower_bound AS at_lower_bound, a.logged_at < p.upper_bound AS below_upper
  FROM psk.audit_log a JOIN psk.audit_partitions() p ON p.part = a.tableoid
 WHERE a.code = 'OLD1' ORDER BY a.logged_at;
SELECT count(*) AS rows, count(*) FILTER (WHERE a.logged_at >= p.lower_bound AND a.logged_at < p.upper_bound
                                     AND p.upper_bound - p.lower_bound = interval '168 hours') AS in_their_week,
       count(DISTINCT a.tableoid) FILTER (WHERE a.code = 'OLD1') AS old_partitions
  FROM psk.audit_log a JOIN psk.audit_partitions() p ON p.part = a.tableoid;
(SELECT 'before' AS side, * FROM public.log_page_before
 EXCEPT SELECT 'before', total_count, id, logged_at, action, code, user_name, contact_email,
              tester_name, country, region, note FROM psk_log(1, 100))
UNION ALL
(SELECT 'after', total_count, id, logged_at, action, code, user_name, contact_email,
        tester_name, country, region, note FROM psk_log(1, 100)
 EXCEPT SELECT 'after', * FROM public.log_page_before);
SELECT count(*) AS page_rows FROM public.log_page_before;
DROP TABLE public.log_page_before;
SELECT extversion FROM pg_extension WHERE extname = 'psk';
SELECT psk.http_me(:'token', NULL, NULL)::jsonb ->> 'contact_email' AS me;
SELECT has_function_privilege('regress_psk_upgrade', 'psk_reserve(text, text, text, text, int, text)',
                              'EXECUTE') AS grant_kept;
REVOKE EXECUTE ON FUNCTION psk_reserve(text, text, text, text, int, text) FROM regress_psk_upgrade;
DROP ROLE regress_psk_upgrade;
-- metrics: the update counted the log it found, action by action, and
-- folded it all (no scrape counts it again)
SELECT m.labels, m.value, l.n AS in_the_log
  FROM psk.metrics() m
  LEFT JOIN (SELECT action, count(*) AS n FROM psk.audit_log GROUP BY action) l
    ON m.labels = 'action="' || l.action || '"'
 WHERE m.name = 'psk_transitions_total' AND m.value > 0
 ORDER BY 1;
SELECT folded_to = (SELECT max(id) FROM psk.audit_log) AS all_folded,
       (SELECT sum(n) FROM psk.transition_totals) = (SELECT count(*) FROM psk.audit_log) AS totals_are_the_log
  FROM psk.metrics_state;
-- what 0.3.0 adds works on the data of before: the code held since 0.2.0
-- renewed, a reserve remembered by its request_id, the report of holds
SELECT code AS held, reservation_token AS held_token FROM psk.codes WHERE status = 'RESERVED' \gset
SELECT code, status, expires_at FROM psk_renew('osv@example.com', :'held', :'held_token');
SELECT code FROM psk_release('osv@example.com', :'held');
SELECT code FROM psk_reserve('osv@example.com', 'upgraded', request_id => 'u-1');
SELECT code FROM psk_reserve('osv@example.com', 'upgraded', request_id => 'u-1');
SELECT code, holder, tester_name FROM psk_overdue('0');
SELECT action, code, tester_name FROM psk.audit_log WHERE code IS NOT NULL ORDER BY id;
SELECT count(*) AS new_rows, bool_and(id > :last_id_before) AS ids_carry_on FROM psk.audit_log
 WHERE action = 'RENEWED' OR tester_name = 'upgraded';
-- the rows of months ago go with their partitions past a retention of 30 days
SET psk.audit_retention = '30d';
SELECT action, count(*) > 20 AS weeks FROM psk_audit_maintain() GROUP BY action;
SELECT min(lower_bound) = date_trunc('week', now() - interval '30 days', 'UTC') AS kept_from_retention,
       max(upper_bound) = date_trunc('week', now(), 'UTC') + interval '504 hours' AS to_two_weeks_ahead,
       count(*) * interval '168 hours' = max(upper_bound) - min(lower_bound) AS no_gap
  FROM psk.audit_partitions();
RESET psk.audit_retention;
SELECT count(*) AS old_rows FROM psk.audit_log WHERE code = 'OLD1';
SELECT count(*) AS old_rows_in_log FROM psk_log(code => 'OLD1');
-- only this week and two ahead left, as in the fresh install below
SET psk.audit_retention = '1s';
SELECT action, count(*) > 0 AS weeks FROM psk_audit_maintain() GROUP BY action;
RESET psk.audit_retention;
CREATE TABLE public.psk_upgraded AS SELECT * FROM public.psk_objects() o(line);

-- a fresh install of the current version
\set ECHO none
SET client_min_messages = warning;
DROP EXTENSION psk;
CREATE EXTENSION psk;
RESET client_min_messages;
\set ECHO all
-- a fresh install has only the default partition until the first upkeep
SELECT count(*) AS weekly_partitions FROM psk.audit_partitions();
SELECT action, count(*) FROM psk_audit_maintain() GROUP BY action;
CREATE TABLE public.psk_fresh AS SELECT * FROM public.psk_objects() o(line);
SELECT count(*) > 150 AS many_objects FROM public.psk_fresh;
-- the same objects both ways (no rows)
(SELECT 'only updated' AS side, line FROM public.psk_upgraded
 EXCEPT SELECT 'only updated', line FROM public.psk_fresh)
UNION ALL
(SELECT 'only fresh', line FROM public.psk_fresh
 EXCEPT SELECT 'only fresh', line FROM public.psk_upgraded);
DROP TABLE public.psk_upgraded, public.psk_fresh;
DROP FUNCTION public.psk_objects();
