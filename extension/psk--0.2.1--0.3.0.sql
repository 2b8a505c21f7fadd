-- psk 0.2.1 -> 0.3.0 (in development)
--
-- Every change to the install script (extension/sql/*.sql) since 0.2.1 has
-- its counterpart here, so that an updated database equals a fresh one
-- (sql/upgrade.sql checks it).
\echo Use "ALTER EXTENSION psk UPDATE TO '0.3.0'" to load this file. \quit

-- The HTTP routes are the C adapter (http.c, http_routes.c): every
-- psk.http_<route> becomes psk_http (CREATE OR REPLACE keeps the grants),
-- and the PL/pgSQL helpers of the former routes go.

-- POST /auth/login {username, password}, from JSON or the OAuth2 form
CREATE OR REPLACE FUNCTION psk.http_login(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- GET or POST /auth/me
CREATE OR REPLACE FUNCTION psk.http_me(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- POST /auth/logout
CREATE OR REPLACE FUNCTION psk.http_logout(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- POST /users/reserve {tester_name, country?, code_type?, how_many?}
CREATE OR REPLACE FUNCTION psk.http_reserve(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- POST /users/confirm {code, reservation_token}
CREATE OR REPLACE FUNCTION psk.http_confirm(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- POST /users/release {code, clearance_id?, note?}
CREATE OR REPLACE FUNCTION psk.http_release(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- POST /users/mark-non-usable {code, reason}
CREATE OR REPLACE FUNCTION psk.http_mark_non_usable(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- POST /users/comment {code, comment}
CREATE OR REPLACE FUNCTION psk.http_comment(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- GET /users/my
CREATE OR REPLACE FUNCTION psk.http_my_codes(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- GET /users/logs
CREATE OR REPLACE FUNCTION psk.http_user_logs(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- GET /users/recent-releases ?n=5&code_type=
CREATE OR REPLACE FUNCTION psk.http_recent_releases(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- GET /users/countries
CREATE OR REPLACE FUNCTION psk.http_user_countries(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- GET /admin/countries
CREATE OR REPLACE FUNCTION psk.http_admin_countries(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- GET /admin/count
CREATE OR REPLACE FUNCTION psk.http_count(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- POST /admin/users/create {team_name, user_name, contact_email, password, is_admin?, pool?}
CREATE OR REPLACE FUNCTION psk.http_create_user(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- GET /admin/users/get-users
CREATE OR REPLACE FUNCTION psk.http_users(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- PATCH /admin/users/update {id, ...}
CREATE OR REPLACE FUNCTION psk.http_update_user(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- DELETE /admin/users/delete {id} or ?id=
CREATE OR REPLACE FUNCTION psk.http_delete_user(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- POST /admin/codes/add {code_type, countries?, codes}
CREATE OR REPLACE FUNCTION psk.http_add_codes(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- GET /admin/codes/all
CREATE OR REPLACE FUNCTION psk.http_codes_all(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- GET /admin/codes ?code_type&status&after&page_size
CREATE OR REPLACE FUNCTION psk.http_codes(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- DELETE /admin/codes/{code}
CREATE OR REPLACE FUNCTION psk.http_delete_code(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- POST /admin/codes/disassociate {code, note?}
CREATE OR REPLACE FUNCTION psk.http_disassociate(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- POST /admin/codes/mark-non-usable {code, reason}
CREATE OR REPLACE FUNCTION psk.http_admin_mark_non_usable(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- POST /admin/codes/restore {code}
CREATE OR REPLACE FUNCTION psk.http_restore(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- GET /admin/logs ?page&page_size&code&user_name&action&start_date&end_date
CREATE OR REPLACE FUNCTION psk.http_logs(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- GET /healthz
CREATE OR REPLACE FUNCTION psk.http_healthz(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

DROP FUNCTION psk.http_session(text);
DROP FUNCTION psk.http_require(psk.http_caller, boolean);
DROP FUNCTION psk.http_body(text);
DROP FUNCTION psk.http_text(jsonb, jsonb, text);
DROP FUNCTION psk.http_int(jsonb, jsonb, text, bigint, bigint);
DROP FUNCTION psk.http_bool(jsonb, jsonb, text);
DROP FUNCTION psk.http_param(jsonb, jsonb, text, text);
DROP FUNCTION psk.http_text_array(jsonb, text);
DROP FUNCTION psk.http_uuid(text, text);
DROP FUNCTION psk.http_time(text, text, boolean);
DROP FUNCTION psk.http_user_json(bigint);
DROP FUNCTION psk.http_countries_json();
DROP TYPE psk.http_caller;

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

-- Logins of one e-mail serialised on a row only psk can lock, not on an
-- advisory lock any role can take (05_accounts_schema.sql); not dumped.
CREATE TABLE psk.login_slots (
    slot int PRIMARY KEY CHECK (slot BETWEEN 0 AND 1023)
);
INSERT INTO psk.login_slots SELECT pg_catalog.generate_series(0, 1023);
REVOKE ALL ON TABLE psk.login_slots FROM PUBLIC;


-- Switching from the old service (70_migrate.sql): psk_migrate_legacy,
-- for a superuser, granted to no one.
CREATE FUNCTION @extschema@.psk_migrate_legacy(source_schema text DEFAULT 'public')
RETURNS TABLE (item text, n bigint)
AS 'MODULE_PATHNAME', 'psk_migrate_legacy'
LANGUAGE C VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION @extschema@.psk_migrate_legacy(text) FROM PUBLIC;

-- CSV in and out (00_schema.sql, 62_bulk.sql): the import's batch on each
-- code it added, and the routes of the import and the exports.
ALTER TABLE psk.codes ADD COLUMN batch_id uuid;

CREATE FUNCTION psk.http_codes_import(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION psk.http_codes_import_rows(token text, batch_id uuid,
                                           lines bigint[], codes text[],
                                           countries text[], notes text[])
RETURNS int
AS 'MODULE_PATHNAME', 'psk_http_codes_import_rows'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION psk.http_codes_import_report(batch_id uuid) RETURNS SETOF text
AS 'MODULE_PATHNAME', 'psk_http_codes_import_report'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION psk.http_codes_export(token text, body text, query jsonb)
RETURNS TABLE (code text, code_type text, status text, holder text,
               tester_name text, reserved_at text, expires_at text,
               released_at text, note text, countries text)
AS 'MODULE_PATHNAME', 'psk_http_codes_export'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION psk.http_logs_export(token text, body text, query jsonb)
RETURNS TABLE (id bigint, logged_at text, action text, code text,
               user_name text, contact_email text, tester_name text,
               country text, region text, note text)
AS 'MODULE_PATHNAME', 'psk_http_logs_export'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION psk.http_codes_import(text, text, jsonb),
    psk.http_codes_import_rows(text, uuid, bigint[], text[], text[], text[]),
    psk.http_codes_import_report(uuid),
    psk.http_codes_export(text, text, jsonb),
    psk.http_logs_export(text, text, jsonb) FROM PUBLIC;
