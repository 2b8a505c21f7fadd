-- The functions that pin their search_path in C (search_path.c) rather
-- than with a SET clause resolve their statements' names as the others do,
-- whatever search_path the caller set: a caller's "=" operator, first in
-- the path, would otherwise run with the rights of psk's owner.
\i test/fixtures/reset.sql
\set VERBOSITY terse

-- which functions those are: C, SECURITY DEFINER, no SET clause
SELECT p.prosrc, count(*) AS functions, bool_and(p.prosecdef) AS security_definer
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace IN ('psk'::regnamespace, 'public'::regnamespace)
   AND l.lanname = 'c' AND p.prosrc LIKE 'psk\_%' AND p.proconfig IS NULL
 GROUP BY 1 ORDER BY 1;

INSERT INTO psk.codes (code, pool) VALUES ('SP-1', 'OSV'), ('SP-2', 'OSV');
INSERT INTO psk.code_countries (code_id, country_id)
SELECT c.id, k.id FROM psk.codes c, psk.countries k WHERE c.code LIKE 'SP-%';
SELECT access_token AS osv FROM psk_login('osv@example.com', 'Rdl@12345') \gset

-- "=" for the types psk's statements compare, each one failing loudly
CREATE SCHEMA regress_hostile;
CREATE FUNCTION regress_hostile.eq(text, text) RETURNS bool LANGUAGE plpgsql
AS $$ BEGIN RAISE EXCEPTION 'hostile = (text) called'; END $$;
CREATE FUNCTION regress_hostile.eq(bytea, bytea) RETURNS bool LANGUAGE plpgsql
AS $$ BEGIN RAISE EXCEPTION 'hostile = (bytea) called'; END $$;
CREATE FUNCTION regress_hostile.eq(bigint, bigint) RETURNS bool LANGUAGE plpgsql
AS $$ BEGIN RAISE EXCEPTION 'hostile = (bigint) called'; END $$;
CREATE FUNCTION regress_hostile.eq(uuid, uuid) RETURNS bool LANGUAGE plpgsql
AS $$ BEGIN RAISE EXCEPTION 'hostile = (uuid) called'; END $$;
CREATE OPERATOR regress_hostile.= (FUNCTION = regress_hostile.eq, LEFTARG = text, RIGHTARG = text);
CREATE OPERATOR regress_hostile.= (FUNCTION = regress_hostile.eq, LEFTARG = bytea, RIGHTARG = bytea);
CREATE OPERATOR regress_hostile.= (FUNCTION = regress_hostile.eq, LEFTARG = bigint, RIGHTARG = bigint);
CREATE OPERATOR regress_hostile.= (FUNCTION = regress_hostile.eq, LEFTARG = uuid, RIGHTARG = uuid);

SET search_path = regress_hostile, pg_catalog, public;
-- a country (looked up by a statement), a token (a session's hash), a code
SELECT code, code_type FROM psk_reserve('osv@example.com', 'tester', country => 'UK');
SELECT psk.http_reserve(:'osv', '{"tester_name": "web", "country": "DE"}', '{}')::jsonb - 'reservation_token' - 'reserved_at' - 'expires_at' AS reserved;
SELECT code FROM psk_release('osv@example.com', 'SP-1');
SELECT psk.http_release(:'osv', '{"code": "SP-2"}', '{}')::jsonb - 'released_at' AS released;
SELECT psk.http_me(:'osv', NULL, '{}') AS me;
-- and an error inside a pinned call leaves the caller's path as it was
SELECT code FROM psk_release('osv@example.com', 'SP-1');
SELECT 'a'::text = 'a'::text AS callers_own_operator;
RESET search_path;

-- what the calls did, in the log
SELECT action, code, tester_name, country FROM psk.audit_log
 WHERE code LIKE 'SP-%' AND action IN ('RESERVED', 'RELEASED') ORDER BY id;
DROP SCHEMA regress_hostile CASCADE;
