-- The pools, statuses and actions have one list each, in C (extension/lists.h,
-- shown by psk.lists()); the schema's CHECK constraints must name the same
-- ones in the same order, and every other constraint or index naming a
-- status or an action must name known ones.
\i test/fixtures/reset.sql
CREATE FUNCTION pg_temp.quoted(def text) RETURNS text[] LANGUAGE sql AS $$
    SELECT ARRAY(SELECT m[1] FROM regexp_matches(def, '''([A-Z_]+)''', 'g') m)
$$;
SELECT c.table_name, c.conname, c.list,
       pg_temp.quoted(pg_get_constraintdef(k.oid))
         = ARRAY(SELECT l.name FROM psk.lists() l WHERE l.list = c.list ORDER BY l.n) AS same
  FROM (VALUES ('users', 'users_pool_check', 'pool'),
               ('codes', 'codes_pool_check', 'pool'),
               ('codes', 'codes_status_check', 'status'),
               ('audit_log', 'audit_log_action_check', 'action')) c(table_name, conname, list)
  LEFT JOIN pg_constraint k
    ON k.conrelid = ('psk.' || c.table_name)::regclass AND k.conname = c.conname
 ORDER BY 1, 2;
-- every list is there, none empty
SELECT list, count(*) > 0 AS has_names FROM psk.lists() GROUP BY list ORDER BY list;
-- names in other constraints and in index predicates: known ones
SELECT d.what, w AS unknown_name
  FROM (SELECT conname::text AS what, pg_get_constraintdef(oid) AS def
          FROM pg_constraint WHERE connamespace = 'psk'::regnamespace AND contype = 'c'
        UNION ALL
        SELECT indexrelid::regclass::text, pg_get_expr(indpred, indrelid)
          FROM pg_index WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'psk'::regnamespace)
           AND indpred IS NOT NULL) d,
       unnest(pg_temp.quoted(d.def)) w
 WHERE (d.def ~ 'status' OR d.def ~ 'action' OR d.def ~ 'pool')
   AND w NOT IN (SELECT name FROM psk.lists());
-- the readers follow the lists: psk_counts has a row per pool and status, in order
SELECT array_agg(DISTINCT code_type) = ARRAY(SELECT name FROM psk.lists() WHERE list = 'pool' ORDER BY name) AS pools,
       count(*) = (SELECT count(*) FROM psk.lists() WHERE list = 'pool')
                  * (SELECT count(*) FROM psk.lists() WHERE list = 'status') AS every_pair
  FROM psk_counts();
SELECT test.err($$SELECT * FROM psk_codes(code_type => 'nope')$$);
SELECT test.err($$SELECT * FROM psk_codes(status => 'nope')$$);
SELECT test.err($$SELECT * FROM psk_log(action => 'nope')$$);
-- the pool a team name gives (psk.pool_for_team) is a known one
SELECT t AS team_name, psk.pool_for_team(t) AS pool,
       psk.pool_for_team(t) IN (SELECT name FROM psk.lists() WHERE list = 'pool') AS known
  FROM unnest(ARRAY['Trillium OSV', 'Zeus hsv', 'Admin']) t;
