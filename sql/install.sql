-- The extension installs into a fresh database and drops cleanly.
\i test/fixtures/reset.sql
SELECT extname, extversion, extrelocatable FROM pg_extension WHERE extname IN ('psk', 'pgcrypto') ORDER BY 1;
-- every psk_* function of the contract, in the extension's schema
SELECT p.proname, p.prosecdef, p.proconfig
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'psk'
 WHERE p.proname LIKE 'psk\_%' ORDER BY 1;
-- nothing of psk is open to PUBLIC
SELECT count(*) AS public_execute FROM pg_proc p
 WHERE p.proname LIKE 'psk\_%' AND has_function_privilege('public', p.oid, 'EXECUTE');
-- the audit log is append-only
SELECT test.err($$UPDATE psk.audit_log SET note = 'x'$$);
SELECT test.err($$DELETE FROM psk.audit_log$$);
SELECT test.err($$TRUNCATE psk.audit_log$$);
-- the constraints make impossible states impossible
SELECT test.err($$INSERT INTO psk.codes (code, pool, status) VALUES ('X1', 'OSV', 'RESERVED')$$);
SELECT test.err($$INSERT INTO psk.codes (code, pool) VALUES ('lower', 'OSV')$$);
SELECT test.err($$INSERT INTO psk.codes (code, pool) VALUES ('A B', 'OSV')$$);
SELECT test.err($$INSERT INTO psk.codes (code, pool) VALUES ('X2', 'NOPE')$$);
SELECT test.err($$INSERT INTO psk.codes (code, pool, holder_id) VALUES ('X3', 'OSV', 1)$$);
-- codes are trimmed of whitespace (only) and upper-cased
SELECT psk.normalize_code(E' \tvv-1\x0B\r\n ') AS normalized;
-- the tests' fingerprint of what a refused call may not change
-- (test/fixtures/state.sql) covers every table of psk, from the catalog
SELECT regexp_replace(test.state(), '=\S*', '', 'g') AS fingerprint;
DROP EXTENSION psk;
SELECT count(*) FROM pg_namespace WHERE nspname = 'psk';
CREATE EXTENSION psk;
