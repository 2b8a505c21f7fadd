-- Least privilege: PUBLIC gets nothing; the roles of README.md "Roles and privileges" (named
-- regress_* here: roles are cluster-wide) get exactly what they need.
\i test/fixtures/reset.sql
\set VERBOSITY terse

INSERT INTO psk.codes (code, pool) VALUES ('P-1', 'OSV'), ('P-2', 'OSV');

-- what the extension itself grants: nothing to PUBLIC, and every psk_*
-- function runs as its owner with a pinned search_path (the log's readers
-- also without JIT); the holder's cycle pins it in C (search_path.c, and
-- sql/search_path.sql), with no SET clause
SELECT has_schema_privilege('public', 'psk', 'USAGE') AS public_usage_on_psk;
SELECT c.relname FROM pg_class c
 WHERE c.relnamespace = 'psk'::regnamespace AND c.relkind IN ('r', 'S')
   AND (has_table_privilege('public', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
        OR (c.relkind = 'S' AND has_sequence_privilege('public', c.oid, 'USAGE, SELECT, UPDATE')));
SELECT p.oid::regprocedure FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'psk'
 WHERE has_function_privilege('public', p.oid, 'EXECUTE')
    OR (p.proname LIKE 'psk\_%' AND p.proname <> 'psk_migrate_legacy'
        AND (NOT p.prosecdef
             OR CASE WHEN p.prosrc IN ('psk_reserve', 'psk_confirm', 'psk_renew', 'psk_release')
                          AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')
                     THEN p.proconfig IS NOT NULL
                     ELSE p.proconfig[1] IS DISTINCT FROM 'search_path=pg_catalog, pg_temp'
                          OR coalesce(array_length(p.proconfig, 1), 0) > 2
                          OR p.proconfig[2] IS DISTINCT FROM NULL AND p.proconfig[2] <> 'jit=off' END));
-- the one exception: psk_migrate_legacy runs as its caller, a superuser, and
-- is granted to no one (README's grant to psk_app leaves it out)
SELECT p.prosecdef, p.proconfig, p.proacl FROM pg_proc p WHERE p.proname = 'psk_migrate_legacy';

-- The roles, with the GRANTs of README.md "Roles and privileges".  A run that failed half-way
-- may have left them behind.
SET client_min_messages = warning;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['regress_psk_app', 'regress_psk_auditor', 'regress_psk_nobody'] LOOP
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('DROP OWNED BY %I', r);
            EXECUTE format('DROP ROLE %I', r);
        END IF;
    END LOOP;
END
$$;
RESET client_min_messages;

CREATE ROLE regress_psk_app LOGIN;
GRANT USAGE ON SCHEMA public TO regress_psk_app;
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
          FROM pg_proc p
          JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
           AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
          JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'psk'
         WHERE p.proname LIKE 'psk\_%' AND p.proname <> 'psk_migrate_legacy'
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO regress_psk_app', f);
    END LOOP;
END
$$;

CREATE ROLE regress_psk_auditor LOGIN;
GRANT USAGE ON SCHEMA psk TO regress_psk_auditor;
GRANT SELECT ON psk.audit_log TO regress_psk_auditor;

CREATE ROLE regress_psk_nobody LOGIN;

-- (test.err is the tests' own helper, not part of the privilege model)
GRANT USAGE ON SCHEMA test TO regress_psk_app, regress_psk_auditor, regress_psk_nobody;

--
-- A role without grants: refused everything
--
SET ROLE regress_psk_nobody;
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'tester')$$);
SELECT test.err($$SELECT * FROM psk_login('osv@example.com', 'Rdl@12345')$$);
SELECT test.err($$SELECT * FROM psk_session_user('x')$$);
SELECT test.err($$SELECT * FROM psk_users()$$);
SELECT test.err($$SELECT * FROM psk_create_user('admin@example.com', 'T', 'u', 'u@example.com', 'Rdl@12345')$$);
SELECT test.err($$SELECT * FROM psk.codes$$);
SELECT test.err($$SELECT * FROM psk.users$$);
SELECT test.err($$SELECT * FROM psk.audit_log$$);
SELECT test.err($$SELECT * FROM psk.sessions$$);
RESET ROLE;

--
-- The application role: calls the functions, reads no table
--
SELECT test.state() AS before \gset
SET ROLE regress_psk_app;
SELECT current_user;
SELECT code FROM psk_reserve('osv@example.com', 'tester');
SELECT code FROM psk_release('osv@example.com', 'P-1');
SELECT access_token FROM psk_login('osv@example.com', 'Rdl@12345') \gset
SELECT id, contact_email FROM psk_session_user(:'access_token');
SELECT * FROM psk_logout(:'access_token');
-- a failed login is counted for it too (by the guard's worker)
SELECT test.err($$SELECT * FROM psk_login('osv@example.com', 'wrong')$$);
SELECT id FROM psk_create_user('admin@example.com', 'Apollo', 'app-made', 'app-made@example.com', 'Rdl@12345');
SELECT id, reserved_count FROM psk_users() ORDER BY id;
-- but no table, no internal function, no setting
SELECT test.err($$SELECT * FROM psk.codes$$);
SELECT test.err($$SELECT * FROM psk.users$$);
SELECT test.err($$SELECT * FROM psk.sessions$$);
SELECT test.err($$SELECT * FROM psk.login_failures$$);
SELECT test.err($$SELECT * FROM psk.login_key$$);
SELECT test.err($$SELECT * FROM psk.audit_log$$);
SELECT test.err($$UPDATE psk.audit_log SET note = 'x'$$);
SELECT test.err($$DELETE FROM psk.audit_log$$);
SELECT test.err($$DELETE FROM psk.login_failures$$);
SELECT test.err($$SELECT psk.crypt('a', 'b')$$);
SELECT test.err($$SET psk.login_max_failures = 1000$$);
RESET ROLE;
SELECT test.state() <> :'before' AS the_app_did_its_work;
SELECT test.login_failures('osv@example.com') AS failures_counted;

--
-- The auditor: reads the audit log, nothing else
--
SET ROLE regress_psk_auditor;
SELECT action, code, user_name, note FROM psk.audit_log ORDER BY id;
SELECT test.err($$UPDATE psk.audit_log SET note = 'x'$$);
SELECT test.err($$DELETE FROM psk.audit_log$$);
SELECT test.err($$TRUNCATE psk.audit_log$$);
SELECT test.err($$INSERT INTO psk.audit_log (action) VALUES ('ADDED')$$);
SELECT test.err($$SELECT * FROM psk.codes$$);
SELECT test.err($$SELECT * FROM psk.users$$);
SELECT test.err($$SELECT * FROM psk.sessions$$);
SELECT test.err($$SELECT * FROM psk.login_failures$$);
SELECT test.err($$SELECT * FROM psk.login_key$$);
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'tester')$$);
SELECT test.err($$SELECT * FROM psk_login('osv@example.com', 'Rdl@12345')$$);
SELECT test.err($$SELECT * FROM psk_users()$$);
RESET ROLE;

-- not even the owner rewrites history
SELECT test.err($$UPDATE psk.audit_log SET note = 'x'$$);
SELECT test.err($$DELETE FROM psk.audit_log$$);

-- roles are cluster-wide: leave none behind
DROP OWNED BY regress_psk_app, regress_psk_auditor, regress_psk_nobody;
DROP ROLE regress_psk_app, regress_psk_auditor, regress_psk_nobody;
