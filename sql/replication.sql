-- Logical replication and change data capture: every table of psk has a
-- primary key, so that a publication FOR ALL TABLES can carry every update
-- and delete that psk makes (on a table without a replica identity they
-- are refused, and with them the call that made them).
\i test/fixtures/reset.sql
\set VERBOSITY terse

-- tables of schema psk without a primary key (none but the audit log's
-- partitions, which a publication carries: those psk_audit_maintain makes
-- too, and the default one, are identified by the whole row, REPLICA
-- IDENTITY FULL; the log takes only inserts, but the upkeep deletes the
-- rows it moves out of the default partition)
SELECT count(*) FROM psk_audit_maintain();
SELECT regexp_replace(c.relname, '_p[0-9]{8}$', '_pYYYYMMDD') AS relname, count(*),
       bool_and(c.relreplident = 'f' AND c.relispartition) AS identified_by_the_row
  FROM pg_class c
 WHERE c.relnamespace = 'psk'::regnamespace AND c.relkind = 'r'
   AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
 GROUP BY 1 ORDER BY 1;

-- (wal_level need not be logical for the publication to bind writes)
SET client_min_messages = error;
CREATE PUBLICATION psk_everything FOR ALL TABLES;
RESET client_min_messages;
SELECT count(*) AS added FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['REP-1']);
-- a wrong password: the login guard inserts a failure row
SELECT test.err($$SELECT * FROM psk_login('osv@example.com', 'wrong')$$);
SELECT test.login_failures('osv@example.com') AS failures;
-- a good login deletes them
SELECT token_type FROM psk_login('osv@example.com', 'Rdl@12345');
SELECT test.login_failures('osv@example.com') AS failures;
-- updates of codes, inserts into the log
SELECT code FROM psk_reserve('osv@example.com', 'rep');
SELECT code FROM psk_release('osv@example.com', 'REP-1');
SELECT action, code, tester_name FROM psk.audit_log WHERE code = 'REP-1' ORDER BY id;
-- a row past every partition, moved by the upkeep (a delete from the
-- default partition, carried too)
INSERT INTO psk.audit_log (logged_at, action, note) VALUES (now() + interval '60 days', 'COMMENTED', 'far ahead');
SELECT tableoid::regclass AS went_to FROM psk.audit_log WHERE note = 'far ahead';
SELECT action, n FROM psk_audit_maintain() WHERE action = 'moved';
SELECT tableoid::regclass <> 'psk.audit_log_default'::regclass AS moved_out FROM psk.audit_log WHERE note = 'far ahead';
DROP PUBLICATION psk_everything;
