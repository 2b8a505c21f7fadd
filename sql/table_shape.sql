-- The engine writes rows below SPI, storing Datums as they are: it checks
-- that every column it writes still has the type the install script gave
-- it, and refuses a table altered under it (an error, never a wrong row or
-- a crashed backend), changing nothing.
\i test/fixtures/reset.sql
\set VERBOSITY terse
SELECT count(*) AS added FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['S1', 'S2']);
SELECT test.state() AS before \gset

-- a typmod the engine would not enforce: refused, not stored too long
ALTER TABLE psk.codes ALTER tester_name TYPE varchar(5);
SELECT code FROM psk_reserve('osv@example.com', 'a-long-tester-name');
SELECT test.changed(:'before') AS changed;
ALTER TABLE psk.codes ALTER tester_name TYPE text;
SELECT code FROM psk_reserve('osv@example.com', 'a-long-tester-name');
SELECT test.state() AS before \gset

-- another type (this one crashed the backend): refused
ALTER TABLE psk.audit_log ALTER user_id TYPE text;
SELECT code FROM psk_release('osv@example.com', 'S1');
SELECT code FROM psk_reserve('osv@example.com', 't');
SELECT test.changed(:'before') AS changed;
ALTER TABLE psk.audit_log ALTER user_id TYPE bigint USING user_id::bigint;
SELECT code FROM psk_release('osv@example.com', 'S1');

-- a domain over the right type is the right type (codes.code is one)
CREATE DOMAIN test.tester AS text CHECK (VALUE <> '');
ALTER TABLE psk.codes ALTER tester_name TYPE test.tester;
SELECT code FROM psk_reserve('osv@example.com', 'dom');
SELECT code, status, tester_name FROM psk.codes ORDER BY code;
SELECT action, code, tester_name FROM psk.audit_log WHERE code LIKE 'S_' ORDER BY id;
