-- reserve.c and release.c: reserve and release below SPI (writer.c) keep what a statement would give:
-- constraints (with the compiled-once cache noticing changes), a fresh view
-- of earlier changes within one statement, the audit row's fields, and a
-- clean start after the extension is dropped and created again.
\i test/fixtures/reset.sql

SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['O1', 'O2', 'O3', 'O4'], ARRAY['UK']);
SELECT count(*) FROM psk_add_codes('admin@example.com', 'COMMON', ARRAY['C1', 'C2']);

-- the audit row carries every field of the change (one transaction, for now())
BEGIN;
SELECT code, code_type FROM psk_reserve('osv@example.com', 'alice', 'UK') \gset
SELECT c.status, c.tester_name, u.email AS holder, c.expires_at IS NULL AS no_expiry,
       c.reserved_at = now() AS reserved_now, c.released_at IS NULL AS not_released
  FROM psk.codes c JOIN psk.users u ON u.id = c.holder_id WHERE c.code = :'code';
SELECT action, code, code_type, user_id = (SELECT id FROM psk.users WHERE email = 'osv@example.com') AS by_user,
       user_name, contact_email, tester_name, country, region, note, clearance_id,
       logged_at = now() AS logged_now
  FROM psk.audit_log WHERE code = :'code' AND action = 'RESERVED';
COMMIT;
BEGIN;
SELECT code, released_at = now() AS now FROM psk_release('osv@example.com', ' o1 ', 'CL-7', 'done');
SELECT status, holder_id, tester_name, reservation_token, reserved_at, note,
       released_at = now() AS released_now, freed_at = now() AS freed_now
  FROM psk.codes WHERE code = 'O1';
SELECT action, code, code_type, user_name, contact_email, tester_name, country, note, clearance_id
  FROM psk.audit_log WHERE code = 'O1' AND action = 'RELEASED';
COMMIT;
-- audit ids come from the table's own identity sequence, in order
SELECT bool_and(id > prev) AS ids_increase
  FROM (SELECT id, lag(id, 1, 0::bigint) OVER (ORDER BY id) AS prev FROM psk.audit_log) s;

-- several calls in one statement each see the codes the previous ones took
SELECT r.code, r.code_type
  FROM generate_series(1, 3) i, LATERAL psk_reserve('osv@example.com', 'bob' || i) r ORDER BY i;
SELECT count(DISTINCT code) AS distinct_codes, count(*) AS rows
  FROM psk.audit_log WHERE action = 'RESERVED' AND tester_name LIKE 'bob_';

-- a constraint added to psk.codes binds the engine at once (the compiled
-- constraints are refreshed), and its failure changes nothing
ALTER TABLE psk.codes ADD CONSTRAINT test_no_eve CHECK (tester_name <> 'eve');
SELECT test.state() AS before \gset
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'eve')$$);
SELECT test.state() = :'before' AS unchanged;
ALTER TABLE psk.codes DROP CONSTRAINT test_no_eve;
SELECT code FROM psk_reserve('osv@example.com', 'eve');

-- and on psk.audit_log: the code's change is rolled back with its audit row
ALTER TABLE psk.audit_log ADD CONSTRAINT test_no_frank CHECK (tester_name <> 'frank');
SELECT test.state() AS before \gset
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'frank', how_many => 2)$$);
SELECT test.state() = :'before' AS unchanged;
ALTER TABLE psk.audit_log DROP CONSTRAINT test_no_frank;

-- a constraint calling a SQL function follows CREATE OR REPLACE of it
CREATE FUNCTION test.tester_ok(t text) RETURNS boolean LANGUAGE sql AS $$ SELECT t <> 'ivy' $$;
ALTER TABLE psk.codes ADD CONSTRAINT test_tester_ok CHECK (test.tester_ok(tester_name));
SELECT code FROM psk_release('osv@example.com', 'O1');
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'ivy')$$);
CREATE OR REPLACE FUNCTION test.tester_ok(t text) RETURNS boolean LANGUAGE sql AS $$ SELECT t <> 'jim' $$;
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'jim')$$);
SELECT code FROM psk_reserve('osv@example.com', 'ivy');
ALTER TABLE psk.codes DROP CONSTRAINT test_tester_ok;

-- AFTER ROW triggers fire (the holder_id foreign key check is one), once
-- per change, after it: here a test trigger that records what it sees
CREATE TABLE test.seen (code text, status text, holder text);
CREATE FUNCTION test.record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test.seen SELECT NEW.code, NEW.status, u.email
      FROM (SELECT) x LEFT JOIN psk.users u ON u.id = NEW.holder_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER test_record AFTER UPDATE ON psk.codes FOR EACH ROW EXECUTE FUNCTION test.record();
SELECT code FROM psk_release('osv@example.com', 'O2');
SELECT code FROM psk_reserve('hsv@example.com', 'gina', code_type => 'OSV');
DROP TRIGGER test_record ON psk.codes;
SELECT * FROM test.seen;

-- a release that cannot happen says why
SELECT test.err($$SELECT * FROM psk_release('osv@example.com', 'c1')$$);
SELECT test.err($$SELECT * FROM psk_release('osv@example.com', 'O2')$$);
SELECT test.err($$SELECT * FROM psk_release('osv@example.com', 'NOPE')$$);
SELECT test.err($$SELECT * FROM psk_release('admin@example.com', 'O2')$$);
SELECT test.err($$SELECT * FROM psk_release('Nobody@example.com', 'O2')$$);

-- dropped and created again in this session: new tables, new column
-- numbers (a column added first moves them), new sequence
\set ECHO none
\set QUIET on
SET client_min_messages = warning;
DROP SCHEMA test CASCADE;
DROP EXTENSION psk;
\set QUIET off
\set ECHO all
\i test/fixtures/reset.sql
ALTER TABLE psk.codes DROP COLUMN note;
ALTER TABLE psk.codes ADD COLUMN note text;
SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['N1']);
SELECT code, code_type FROM psk_reserve('osv@example.com', 'zed');
SELECT code FROM psk_release('osv@example.com', 'N1', note => 'again');
SELECT code, status, note FROM psk.codes;
SELECT action, code, tester_name, note FROM psk.audit_log WHERE code = 'N1' ORDER BY id;
