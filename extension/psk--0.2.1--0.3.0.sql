-- psk 0.2.1 -> 0.3.0 (in development)
--
-- Every change to the install script (extension/sql/*.sql) since 0.2.1 has
-- its counterpart here, so that an updated database equals a fresh one
-- (sql/upgrade.sql checks it).
\echo Use "ALTER EXTENSION psk UPDATE TO '0.3.0'" to load this file. \quit

-- The lists of extension/lists.h, for sql/lists.sql (00_schema.sql).
CREATE FUNCTION psk.lists(OUT list text, OUT n int, OUT name text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'psk_lists'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION psk.lists() FROM PUBLIC;

-- The dummy hash of a login without an account, made at start-up from
-- PSK_BCRYPT_COST (20_accounts.sql).
CREATE FUNCTION psk.login_dummy_hash() RETURNS text
AS 'MODULE_PATHNAME', 'psk_login_dummy_hash'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION psk.login_dummy_hash() FROM PUBLIC;
