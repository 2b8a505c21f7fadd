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

-- Holds that end, retries that do not reserve twice, quotas (issue 14).

-- An IN_USE code may have an expires_at too (psk.in_use_ttl, psk_renew);
-- the sweep's index covers every hold that ends; psk_overdue's index of
-- held codes by reserved_at (00_schema.sql).
ALTER TABLE psk.codes DROP CONSTRAINT codes_expiry_after_reserve;
ALTER TABLE psk.codes ADD CONSTRAINT codes_expiry_after_reserve
    CHECK (expires_at IS NULL OR (status IN ('RESERVED', 'IN_USE') AND expires_at > reserved_at));
DROP INDEX psk.codes_expires_idx;
CREATE INDEX codes_expires_idx ON psk.codes (expires_at)
    WHERE expires_at IS NOT NULL;
CREATE INDEX codes_held_since_idx ON psk.codes (reserved_at, id)
    WHERE status IN ('RESERVED', 'IN_USE');

-- The audit action RENEWED (lists.h: 11 actions of codes).
ALTER TABLE psk.audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE psk.audit_log ADD CONSTRAINT audit_log_action_check CHECK (action IN (
    'ADDED', 'RESERVED', 'CONFIRMED', 'RELEASED', 'EXPIRED',
    'DISASSOCIATED', 'MARKED_NON_USABLE', 'RESTORED',
    'DELETED', 'COMMENTED', 'RENEWED',
    'USER_CREATED', 'USER_UPDATED', 'USER_DELETED'));

-- What reserves with a request_id returned, for 24 hours; dumped by pg_dump
-- like every other table of psk (90_backup.sql).
CREATE TABLE psk.reserve_requests (
    user_id     bigint NOT NULL,
    request_id  text NOT NULL CHECK (pg_catalog.length(request_id) BETWEEN 1 AND 255),
    made_at     timestamptz NOT NULL,
    tester_name text NOT NULL,
    country     text,
    code_type   text,
    how_many    int NOT NULL CHECK (how_many BETWEEN 1 AND 100),
    codes       text[] NOT NULL,
    code_types  text[] NOT NULL,
    tokens      uuid[] NOT NULL,
    reserved_at timestamptz NOT NULL,
    expires_at  timestamptz,
    PRIMARY KEY (user_id, request_id)
);
CREATE INDEX reserve_requests_made_at_idx ON psk.reserve_requests (made_at);
REVOKE ALL ON TABLE psk.reserve_requests FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('psk.reserve_requests', '');

-- psk_reserve gains its last argument, request_id: a new signature, so the
-- function is made anew, with the grants the old one had (a DBA's GRANT
-- EXECUTE to the application role carries over), and the old one dropped.
CREATE FUNCTION @extschema@.psk_reserve(user_email text, tester_name text,
                                        country text DEFAULT NULL,
                                        code_type text DEFAULT NULL,
                                        how_many int DEFAULT 1,
                                        request_id text DEFAULT NULL)
RETURNS TABLE (code text, code_type text, reservation_token uuid,
               reserved_at timestamptz, expires_at timestamptz)
AS 'MODULE_PATHNAME', 'psk_reserve'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION @extschema@.psk_reserve(text, text, text, text, int, text) FROM PUBLIC;
DO $do$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT a.grantee, a.is_grantable
          FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
         WHERE p.oid = '@extschema@.psk_reserve(text, text, text, text, int)'::pg_catalog.regprocedure
           AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner
    LOOP
        EXECUTE pg_catalog.format(
            'GRANT EXECUTE ON FUNCTION @extschema@.psk_reserve(text, text, text, text, int, text) TO %s%s',
            CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::pg_catalog.regrole::text END,
            CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END
$do$;
DROP FUNCTION @extschema@.psk_reserve(text, text, text, text, int);

-- The holder's heartbeat (renew.c) and the report of long holds (readers.c).
CREATE FUNCTION @extschema@.psk_renew(user_email text, code text,
                                      reservation_token uuid)
RETURNS TABLE (code text, status text, expires_at timestamptz)
AS 'MODULE_PATHNAME', 'psk_renew'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION @extschema@.psk_renew(text, text, uuid) FROM PUBLIC;

CREATE FUNCTION @extschema@.psk_overdue(older_than interval DEFAULT '7 days',
                                        code_type text DEFAULT NULL)
RETURNS TABLE (code text, code_type text, status text, holder text,
               tester_name text, reserved_at timestamptz,
               expires_at timestamptz, held_for interval)
AS 'MODULE_PATHNAME', 'psk_overdue'
LANGUAGE C STABLE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION @extschema@.psk_overdue(interval, text) FROM PUBLIC;

-- POST /users/renew and GET /admin/codes/overdue (60_http.sql)
CREATE FUNCTION psk.http_renew(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION psk.http_renew(text, text, jsonb) FROM PUBLIC;

CREATE FUNCTION psk.http_overdue(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION psk.http_overdue(text, text, jsonb) FROM PUBLIC;

-- Failed logins kept against the account, or a keyed hash of the e-mail
-- without one, never the typed text (05_accounts_schema.sql).  The failures
-- of an e-mail with an account move to its id; those of e-mails without one
-- (a password typed into the e-mail field among them) go: they protect no
-- account.
CREATE TABLE psk.login_key (
    id  int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    key bytea NOT NULL CHECK (pg_catalog.length(key) = 32)
);
INSERT INTO psk.login_key (key)
SELECT pg_catalog.decode(pg_catalog.replace(
           pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text,
           '-', ''), 'hex');
REVOKE ALL ON TABLE psk.login_key FROM PUBLIC;
ALTER TABLE psk.login_failures
    ADD COLUMN user_id bigint,
    ADD COLUMN email_hmac bytea CHECK (pg_catalog.length(email_hmac) = 32);
UPDATE psk.login_failures f SET user_id = u.id
  FROM psk.users u WHERE u.email = f.email;
DELETE FROM psk.login_failures WHERE user_id IS NULL;
ALTER TABLE psk.login_failures
    DROP COLUMN email,
    ADD CHECK ((user_id IS NULL) <> (email_hmac IS NULL));
CREATE INDEX login_failures_user_idx ON psk.login_failures (user_id, failed_at);
CREATE INDEX login_failures_hmac_idx ON psk.login_failures (email_hmac, failed_at);
