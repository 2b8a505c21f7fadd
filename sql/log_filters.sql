-- psk_log's code and user_name filters read the few codes and users they
-- mean from psk.audit_codes and psk.audit_names (audit_index.c), then the
-- log by its indexes.  Those tables must hold every code and name the log
-- holds, however the rows got there, and the pages must be exactly those
-- of matching the text over the whole log.
\i test/fixtures/reset.sql
\set VERBOSITY terse

-- every code and every (user_id, user_name) of the log is remembered
CREATE FUNCTION pg_temp.unremembered() RETURNS text LANGUAGE sql AS $$
SELECT coalesce(string_agg(x, ', ' ORDER BY x), 'none') FROM (
    SELECT 'code ' || code AS x FROM (SELECT DISTINCT code FROM psk.audit_log
                                       WHERE code IS NOT NULL
                                      EXCEPT SELECT code FROM psk.audit_codes) c
    UNION ALL
    SELECT 'name ' || coalesce(user_id, 0) || ' ' || user_name
      FROM (SELECT DISTINCT coalesce(user_id, 0) AS user_id, user_name FROM psk.audit_log
             WHERE user_name IS NOT NULL
            EXCEPT SELECT user_id, user_name FROM psk.audit_names) n) u
$$;

-- psk_log's page against the same filter matched as text over the log
CREATE FUNCTION pg_temp.same_as_text(text, text) RETURNS text
LANGUAGE sql AS $$
WITH got AS (
    SELECT row_number() OVER () AS n, id FROM psk_log(1, 100, $1, $2)
), want AS (
    SELECT row_number() OVER (ORDER BY logged_at DESC, id DESC) AS n, id
      FROM psk.audit_log a
     WHERE ($1 IS NULL OR starts_with(a.code, psk.normalize_code($1))
                       OR right(a.code, length(psk.normalize_code($1))) = psk.normalize_code($1))
       AND ($2 IS NULL OR strpos(lower(a.user_name), lower($2)) > 0)
     ORDER BY logged_at DESC, id DESC LIMIT 100
)
SELECT CASE WHEN EXISTS (SELECT FROM got FULL JOIN want USING (n)
                          WHERE got.id IS DISTINCT FROM want.id)
            THEN 'DIFFERENT'
            ELSE (SELECT count(*) FROM got) || ' rows, same' END
$$;

SELECT count(*) AS added FROM psk_add_codes('admin@example.com', 'OSV',
       ARRAY['LF-ALPHA-1', 'LF-ALPHA-2', 'LF-BETA-1', 'ZZ_9', 'ZZX9', 'LF%1']);
SELECT code FROM psk_reserve('osv@example.com', 'lf', code_type => 'OSV', how_many => 2) ORDER BY 1;
SELECT count(*) AS released FROM psk_my_codes('osv@example.com') m,
       LATERAL psk_release('osv@example.com', m.code) r;
-- a user whose first audit row comes now
SELECT count(*) AS created FROM psk_create_user('admin@example.com', 'TeamX', 'Lotte Filter',
       'lotte@example.com', 'Rdl@12345', false, 'OSV');
SELECT pg_temp.unremembered();

-- a row written by SQL (a superuser; restores with --load-via-partition-root)
INSERT INTO psk.audit_log (action, code, code_type, user_id, user_name)
VALUES ('COMMENTED', 'LF-SQL-ONLY', 'OSV', NULL, 'Someone Gone');
SELECT pg_temp.unremembered();

-- pages equal to matching the text, narrowed or not
SELECT f.code, f.user_name, pg_temp.same_as_text(f.code, f.user_name)
  FROM (VALUES ('lf-alpha', NULL), ('-1', NULL), ('alpha', NULL), ('zz_', NULL),
               ('ZZ_9', NULL), ('lf%', NULL), ('LF-SQL', NULL), ('nothing', NULL),
               (NULL, 'lotte'), (NULL, 'gone'), (NULL, 'e'), (NULL, '%'), (NULL, 'nobody'),
               ('lf', 'osv'), ('lf', 'admin')) f(code, user_name);

-- a name is remembered when a user gets it, in that transaction: a rename
-- rolled back (to a savepoint) leaves none, one committed its own
SELECT id AS lotte FROM psk.users WHERE email = 'lotte@example.com' \gset
SELECT code FROM psk_reserve('lotte@example.com', 'top', code_type => 'OSV');
BEGIN;
SAVEPOINT s;
SELECT count(*) AS renamed FROM psk_update_user('admin@example.com', :lotte, user_name => 'Lotte Savepoint');
SELECT code FROM psk_reserve('lotte@example.com', 'sub', code_type => 'OSV');
ROLLBACK TO SAVEPOINT s;
SELECT count(*) AS renamed FROM psk_update_user('admin@example.com', :lotte, user_name => 'Lotte Renamed');
COMMIT;
SELECT user_name FROM psk.audit_names WHERE user_id = :lotte ORDER BY 1;
SELECT count(*) AS released FROM psk_my_codes('lotte@example.com') m,
       LATERAL psk_release('lotte@example.com', m.code) r;
SELECT pg_temp.unremembered();
SELECT pg_temp.same_as_text(NULL, 'renamed');
-- a renamed user's rows: by the old name only those written under it
SELECT f.user_name, pg_temp.same_as_text(NULL, f.user_name)
  FROM (VALUES ('filter'), ('lotte'), ('renamed')) f(user_name);
