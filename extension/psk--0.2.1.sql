-- psk: schema.  State lives in schema psk; the psk_* functions live in
-- the schema CREATE EXTENSION targets (@extschema@).
\echo Use "CREATE EXTENSION psk CASCADE" to load this file. \quit

CREATE SCHEMA psk;
REVOKE ALL ON SCHEMA psk FROM PUBLIC;

-- Codes are stored trimmed and upper-cased; every function normalises its
-- input the same way through this one definition.
CREATE FUNCTION psk.normalize_code(text) RETURNS text
AS 'MODULE_PATHNAME', 'normalize_code'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Pool of a user created without one: derived once from the team name, as the
-- old service did.
CREATE FUNCTION psk.pool_for_team(text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
  SELECT CASE WHEN pg_catalog.strpos(pg_catalog.lower($1), 'osv') > 0 THEN 'OSV'
              WHEN pg_catalog.strpos(pg_catalog.lower($1), 'hsv') > 0 THEN 'HSV'
              ELSE 'COMMON' END
$$;

-- A code as stored.  A domain rather than a table constraint: it is checked
-- when a code is written, not again on every change of a code's status.
CREATE DOMAIN psk.code_text AS text
    CONSTRAINT code_is_normalized CHECK (VALUE = psk.normalize_code(VALUE)
           AND pg_catalog.length(VALUE) BETWEEN 1 AND 128
           AND VALUE !~ '[[:space:][:cntrl:]]');

CREATE TABLE psk.regions (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CHECK (name = pg_catalog.btrim(name) AND pg_catalog.length(name) BETWEEN 1 AND 128)
);
CREATE UNIQUE INDEX regions_name_key ON psk.regions (pg_catalog.lower(name));

CREATE TABLE psk.countries (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name      text NOT NULL CHECK (name = pg_catalog.btrim(name) AND pg_catalog.length(name) BETWEEN 1 AND 128),
    region_id bigint NOT NULL REFERENCES psk.regions (id)
);
CREATE UNIQUE INDEX countries_name_key ON psk.countries (pg_catalog.lower(name));
CREATE INDEX countries_region_id_idx ON psk.countries (region_id);

CREATE TABLE psk.users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_name     text NOT NULL CHECK (pg_catalog.length(team_name) BETWEEN 1 AND 128),
    user_name     text NOT NULL CHECK (pg_catalog.length(user_name) BETWEEN 1 AND 128),
    -- stored lower-case, so equality is the case-insensitive match
    email         text NOT NULL UNIQUE
                  CHECK (email = pg_catalog.lower(email) AND pg_catalog.length(email) BETWEEN 3 AND 254),
    password_hash text NOT NULL CHECK (password_hash LIKE '$2_$%'),
    is_admin      boolean NOT NULL DEFAULT false,
    pool          text NOT NULL CHECK (pool IN ('OSV', 'HSV', 'COMMON')),
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- The heart of it.  A held code (RESERVED, IN_USE) has a holder, a tester, a
-- token and a reservation time; a code that is not held has none of them.
-- freed_at is when the code last became free (NULL: never used), the key of
-- the least-recently-used order.
CREATE TABLE psk.codes (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code              psk.code_text NOT NULL UNIQUE,
    pool              text NOT NULL CHECK (pool IN ('OSV', 'HSV', 'COMMON')),
    status            text NOT NULL DEFAULT 'CAN_BE_USED'
                      CHECK (status IN ('CAN_BE_USED', 'RESERVED', 'IN_USE', 'NON_USABLE')),
    holder_id         bigint REFERENCES psk.users (id),
    tester_name       text,
    reserved_at       timestamptz,
    expires_at        timestamptz,
    confirmed_at      timestamptz,
    reservation_token uuid,
    released_at       timestamptz,
    freed_at          timestamptz,
    note              text,
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT codes_held_has_holder CHECK (
        CASE WHEN status IN ('RESERVED', 'IN_USE')
             THEN holder_id IS NOT NULL AND tester_name IS NOT NULL
                  AND reservation_token IS NOT NULL AND reserved_at IS NOT NULL
             ELSE holder_id IS NULL AND tester_name IS NULL AND reservation_token IS NULL
                  AND reserved_at IS NULL AND expires_at IS NULL AND confirmed_at IS NULL
        END),
    CONSTRAINT codes_in_use_is_confirmed CHECK ((status = 'IN_USE') = (confirmed_at IS NOT NULL)),
    CONSTRAINT codes_expiry_after_reserve CHECK (expires_at IS NULL OR (status = 'RESERVED' AND expires_at > reserved_at))
) WITH (fillfactor = 80);

-- Reserve: the free codes of one pool in least-recently-used order.  Only
-- free rows are in it, so its size and the cost of taking its first entry do
-- not grow with the number of held codes.
CREATE INDEX codes_free_lru_idx ON psk.codes (pool, freed_at NULLS FIRST, id)
    WHERE status = 'CAN_BE_USED';
-- psk_my_codes, psk_users, psk_delete_user: the codes a user holds.
CREATE INDEX codes_holder_idx ON psk.codes (holder_id) WHERE holder_id IS NOT NULL;
-- psk_expire_reservations: the overdue reservations only.
CREATE INDEX codes_expires_idx ON psk.codes (expires_at)
    WHERE status = 'RESERVED' AND expires_at IS NOT NULL;

-- Autovacuum early and often, whatever the table's size: every reservation
-- and every release leaves a dead row version and a dead entry at the head
-- of codes_free_lru_idx, which each reserve steps over until vacuum removes
-- it.  A fixed threshold (no scale factor) and no cost delay keep that run
-- short on a pool of 10M codes as on one of 10k.  Index cleanup always: on
-- a large table VACUUM otherwise skips the indexes while few of its pages
-- have dead rows, and the dead head of the free-codes index would only
-- grow (at 10M codes, throughput fell by a third in 40 s; with it, flat).
-- (autovacuum_naptime, a server setting, bounds how soon a worker comes:
-- see README, Settings.)
ALTER TABLE psk.codes SET (autovacuum_vacuum_scale_factor = 0,
                           autovacuum_vacuum_threshold = 5000,
                           autovacuum_vacuum_cost_delay = 0,
                           autovacuum_analyze_scale_factor = 0.05,
                           vacuum_index_cleanup = on);

CREATE TABLE psk.code_countries (
    code_id    bigint NOT NULL REFERENCES psk.codes (id) ON DELETE CASCADE,
    country_id bigint NOT NULL REFERENCES psk.countries (id),
    PRIMARY KEY (code_id, country_id)
);
CREATE INDEX code_countries_country_idx ON psk.code_countries (country_id);

-- The audit trail: one row per change, written in the same transaction as
-- the change.  Names are copied in, so the log stays readable after a user
-- or a country is gone.  user_* is the actor (for EXPIRED: the holder).
CREATE TABLE psk.audit_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    logged_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    action          text NOT NULL CHECK (action IN (
                        'ADDED', 'RESERVED', 'CONFIRMED', 'RELEASED', 'EXPIRED',
                        'DISASSOCIATED', 'MARKED_NON_USABLE', 'RESTORED',
                        'DELETED', 'COMMENTED',
                        'USER_CREATED', 'USER_UPDATED', 'USER_DELETED')),
    code            text,
    code_type       text,
    user_id         bigint,
    user_name       text,
    contact_email   text,
    tester_name     text,
    country         text,
    region          text,
    note            text,
    clearance_id    text,
    -- for USER_* rows: the user changed
    subject_user_id bigint
);
CREATE INDEX audit_log_code_idx ON psk.audit_log (code, id);
CREATE INDEX audit_log_user_idx ON psk.audit_log (user_id, logged_at DESC, id DESC);
CREATE INDEX audit_log_time_idx ON psk.audit_log (logged_at DESC, id DESC);
CREATE INDEX audit_log_releases_idx ON psk.audit_log (id DESC) WHERE action = 'RELEASED';

-- Append-only, whoever asks.
CREATE FUNCTION psk.audit_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'psk.audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'PK004';
END
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON psk.audit_log
    FOR EACH ROW EXECUTE FUNCTION psk.audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON psk.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION psk.audit_log_is_append_only();

-- pgcrypto may live in any schema; reach it through fixed wrappers so that
-- no caller-controlled search_path can stand in for it.
DO $do$
DECLARE
    s text := (SELECT n.nspname FROM pg_catalog.pg_extension e
               JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
               WHERE e.extname = 'pgcrypto');
BEGIN
    EXECUTE pg_catalog.format(
        'CREATE FUNCTION psk.crypt(text, text) RETURNS text LANGUAGE sql STRICT '
        'AS $f$ SELECT %I.crypt($1, $2) $f$', s);
    EXECUTE pg_catalog.format(
        'CREATE FUNCTION psk.gen_salt(text, int) RETURNS text LANGUAGE sql STRICT '
        'AS $f$ SELECT %I.gen_salt($1, $2) $f$', s);
END
$do$;
REVOKE ALL ON FUNCTION psk.crypt(text, text), psk.gen_salt(text, int) FROM PUBLIC;
-- Sessions and the brute-force guard (sessions.c, login_guard.c).

-- A session is known by the SHA-256 of its token only: the token itself is
-- handed to the caller once and never stored.  Ended sessions (expired, or
-- revoked and then expired) are swept by later logins.
CREATE TABLE psk.sessions (
    token_hash bytea PRIMARY KEY CHECK (pg_catalog.length(token_hash) = 32),
    user_id    bigint NOT NULL REFERENCES psk.users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX sessions_user_idx ON psk.sessions (user_id);
CREATE INDEX sessions_expires_idx ON psk.sessions (expires_at);

-- Failed logins, one row each, by lower-cased e-mail whether or not an
-- account has it (so that a wrong e-mail and a wrong password look alike).
-- Written by a short-lived background worker in its own transaction, so a
-- row survives the rollback of the login that failed.  Rows older than
-- psk.login_lockout are swept by later failures.  The id is there so that
-- the table has a primary key, which logical replication and change data
-- capture need to replicate its deletes (a publication FOR ALL TABLES
-- otherwise refuses every login); last, as the 0.2.1 update adds it.
CREATE TABLE psk.login_failures (
    email     text NOT NULL CHECK (pg_catalog.length(email) BETWEEN 1 AND 254),
    failed_at timestamptz NOT NULL DEFAULT pg_catalog.statement_timestamp(),
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY
);
CREATE INDEX login_failures_email_idx ON psk.login_failures (email, failed_at);
CREATE INDEX login_failures_time_idx ON psk.login_failures (failed_at);
-- The hot path and expiry (reserve.c, expiry.c).
--
-- Every psk_* function runs as the extension's owner with a pinned
-- search_path (SECURITY DEFINER, as PostgreSQL's docs advise), so callers
-- need EXECUTE on the function and no privilege on the tables.

CREATE FUNCTION @extschema@.psk_reserve(user_email text, tester_name text,
                                        country text DEFAULT NULL,
                                        code_type text DEFAULT NULL,
                                        how_many int DEFAULT 1)
RETURNS TABLE (code text, code_type text, reservation_token uuid,
               reserved_at timestamptz, expires_at timestamptz)
AS 'MODULE_PATHNAME', 'psk_reserve'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_confirm(user_email text, code text,
                                        reservation_token uuid)
RETURNS TABLE (code text, status text, confirmed_at timestamptz)
AS 'MODULE_PATHNAME', 'psk_confirm'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_release(user_email text, code text,
                                        clearance_id text DEFAULT NULL,
                                        note text DEFAULT NULL)
RETURNS TABLE (code text, released_at timestamptz)
AS 'MODULE_PATHNAME', 'psk_release'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_expire_reservations()
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'psk_expire_reservations'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
-- Accounts, regions and countries (users.c, places.c).

CREATE FUNCTION @extschema@.psk_create_user(admin_email text, team_name text,
                                            user_name text, email text,
                                            password text,
                                            is_admin bool DEFAULT false,
                                            pool text DEFAULT NULL)
RETURNS TABLE (id bigint)
AS 'MODULE_PATHNAME', 'psk_create_user'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_add_region(admin_email text, name text)
RETURNS TABLE (id bigint, name text)
AS 'MODULE_PATHNAME', 'psk_add_region'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_add_country(admin_email text, name text,
                                            region text)
RETURNS TABLE (id bigint, name text)
AS 'MODULE_PATHNAME', 'psk_add_country'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_update_user(admin_email text, id bigint,
                                            team_name text DEFAULT NULL,
                                            user_name text DEFAULT NULL,
                                            email text DEFAULT NULL,
                                            password text DEFAULT NULL,
                                            is_admin bool DEFAULT NULL,
                                            pool text DEFAULT NULL)
RETURNS TABLE (id bigint)
AS 'MODULE_PATHNAME', 'psk_update_user'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_delete_user(admin_email text, id bigint)
RETURNS TABLE (id bigint)
AS 'MODULE_PATHNAME', 'psk_delete_user'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_users()
RETURNS TABLE (id bigint, user_name text, team_name text, contact_email text,
               is_admin bool, pool text, reserved_count int,
               reserved_codes text[])
AS 'MODULE_PATHNAME', 'psk_users'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- Sessions (sessions.c).  psk_login is VOLATILE and writes even when it
-- fails: a failed login is recorded by a background worker, in a
-- transaction of its own (login_guard.c).

CREATE FUNCTION @extschema@.psk_login(email text, password text)
RETURNS TABLE (access_token text, token_type text, expires_in int)
AS 'MODULE_PATHNAME', 'psk_login'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_session_user(access_token text)
RETURNS TABLE (id bigint, user_name text, team_name text, contact_email text,
               is_admin bool, pool text)
AS 'MODULE_PATHNAME', 'psk_session_user'
LANGUAGE C STABLE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_logout(access_token text)
RETURNS TABLE (revoked bool)
AS 'MODULE_PATHNAME', 'psk_logout'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
-- Filling the pools and changing single codes (codes.c).

CREATE FUNCTION @extschema@.psk_add_codes(admin_email text, code_type text,
                                          codes text[],
                                          countries text[] DEFAULT NULL)
RETURNS TABLE (code text, outcome text)
AS 'MODULE_PATHNAME', 'psk_add_codes'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_mark_non_usable(user_email text, code text,
                                                reason text)
RETURNS TABLE (code text, status text)
AS 'MODULE_PATHNAME', 'psk_mark_non_usable'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_disassociate(admin_email text, code text,
                                             note text DEFAULT NULL)
RETURNS TABLE (code text, previous_holder text)
AS 'MODULE_PATHNAME', 'psk_disassociate'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_restore(admin_email text, code text)
RETURNS TABLE (code text, status text)
AS 'MODULE_PATHNAME', 'psk_restore'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_comment(user_email text, code text,
                                        comment text)
RETURNS TABLE (code text, note text)
AS 'MODULE_PATHNAME', 'psk_comment'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_delete_code(admin_email text, code text)
RETURNS TABLE (code text)
AS 'MODULE_PATHNAME', 'psk_delete_code'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
-- Reading codes, counts, countries and the audit trail (readers.c).
-- psk_my_codes and psk_user_log act for a user; the others have no acting
-- user and are governed by EXECUTE privileges (see README.md).

CREATE FUNCTION @extschema@.psk_my_codes(user_email text)
RETURNS TABLE (code text, code_type text, status text, tester_name text,
               reserved_at timestamptz, expires_at timestamptz,
               reservation_token uuid, note text, countries text[],
               regions text[])
AS 'MODULE_PATHNAME', 'psk_my_codes'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_recent_releases(n int DEFAULT 5,
                                                code_type text DEFAULT NULL)
RETURNS TABLE (code text, code_type text, released_at timestamptz,
               released_by text, note text)
AS 'MODULE_PATHNAME', 'psk_recent_releases'
LANGUAGE C STABLE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_user_log(user_email text, n int DEFAULT 20)
RETURNS TABLE (id bigint, logged_at timestamptz, action text, code text,
               tester_name text, country text, region text, note text)
AS 'MODULE_PATHNAME', 'psk_user_log'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_log(page int DEFAULT 1, page_size int DEFAULT 20,
                                    code text DEFAULT NULL,
                                    user_name text DEFAULT NULL,
                                    action text DEFAULT NULL,
                                    since timestamptz DEFAULT NULL,
                                    until timestamptz DEFAULT NULL)
RETURNS TABLE (total_count bigint, id bigint, logged_at timestamptz,
               action text, code text, user_name text, contact_email text,
               tester_name text, country text, region text, note text)
AS 'MODULE_PATHNAME', 'psk_log'
LANGUAGE C STABLE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_counts()
RETURNS TABLE (code_type text, status text, n bigint)
AS 'MODULE_PATHNAME', 'psk_counts'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_codes(code_type text DEFAULT NULL,
                                      status text DEFAULT NULL,
                                      after text DEFAULT NULL,
                                      page_size int DEFAULT 1000)
RETURNS TABLE (code text, code_type text, status text, holder text,
               tester_name text, reserved_at timestamptz,
               expires_at timestamptz, released_at timestamptz, note text,
               countries text[])
AS 'MODULE_PATHNAME', 'psk_codes'
LANGUAGE C STABLE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_countries()
RETURNS TABLE (id bigint, country text, region text)
AS 'MODULE_PATHNAME', 'psk_countries'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
-- The HTTP API (psk-shim, shim/): one function per route.
--
-- The shim calls exactly one of these per request,
--     SELECT psk.http_<route>(token, body, query)
-- with the bearer token, the request body as text (JSON; the shim turns the
-- login form into JSON) and the query string as a JSON object of strings
-- (plus a path parameter such as {code}).  Each function checks the token,
-- reads and type-checks the fields, checks the caller's role, calls the
-- psk_* function and returns the reply body.  Errors are the psk_*
-- SQLSTATEs, which the shim maps to HTTP statuses; a body that is not JSON
-- raises 22P02, which the shim answers as invalid_input.
--
-- Checks run in the contract's order: token (unauthorized), body
-- (invalid_input), then role and rules (not_allowed, ...).
--
-- The hot routes, run on every reservation cycle (/auth/me, /users/reserve,
-- /users/confirm, /users/release, /users/my), are C (http.c), with the same
-- checks and replies as the helpers below give the others.
--
-- The helpers below are called only by the route functions, which pin
-- search_path (SECURITY DEFINER, SET search_path) and are the only ones the
-- shim's role may execute.  The helpers name everything schema-qualified or
-- from pg_catalog and carry no SET clause of their own: a SET clause costs a
-- configuration save and restore per call, and stops a SQL function from
-- being inlined, on every request.

CREATE TYPE psk.http_caller AS (id bigint, email text, is_admin boolean);

-- The session behind a bearer token, or unauthorized.
CREATE FUNCTION psk.http_session(token text) RETURNS psk.http_caller
LANGUAGE plpgsql
AS $$
#variable_conflict use_variable
DECLARE
    who psk.http_caller;
BEGIN
    SELECT s.id, s.contact_email, s.is_admin INTO who
      FROM @extschema@.psk_session_user(token) s;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invalid or expired session token' USING ERRCODE = 'PK008';
    END IF;
    RETURN who;
END
$$;

-- /users/* refuse admins and /admin/* refuse users, as the old service did.
-- Returns the caller's e-mail, the acting user of the psk_* functions.
CREATE FUNCTION psk.http_require(who psk.http_caller, admin boolean) RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
#variable_conflict use_variable
BEGIN
    IF who.is_admin AND NOT admin THEN
        RAISE EXCEPTION 'Users only' USING ERRCODE = 'PK003';
    ELSIF admin AND NOT who.is_admin THEN
        RAISE EXCEPTION 'Permission denied' USING ERRCODE = 'PK003';
    END IF;
    RETURN who.email;
END
$$;

-- The request body: a JSON object; no body is an empty object.
CREATE FUNCTION psk.http_body(body text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
AS $$
#variable_conflict use_variable
DECLARE
    b jsonb;
BEGIN
    IF body IS NULL OR btrim(body, E' \t\r\n') = '' THEN
        RETURN '{}';
    END IF;
    b := body::jsonb;           -- 22P02 when it is not JSON
    IF jsonb_typeof(b) <> 'object' THEN
        RAISE EXCEPTION 'request body must be a JSON object' USING ERRCODE = 'PK007';
    END IF;
    RETURN b;
END
$$;

-- One scalar parameter as text: from the body, where it must have JSON type
-- jtype (null counts as absent), or from the query string q (admin routes
-- and GET routes; NULL for the others), where an empty value is absent.
-- Given in both places: invalid_input.
CREATE FUNCTION psk.http_param(b jsonb, q jsonb, name text, jtype text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
#variable_conflict use_variable
BEGIN
    IF b ? name THEN
        IF q ? name THEN
            RAISE EXCEPTION 'parameter "%" is given both in the body and in the query string', name
                USING ERRCODE = 'PK007';
        END IF;
        IF jsonb_typeof(b -> name) = 'null' THEN
            RETURN NULL;
        ELSIF jsonb_typeof(b -> name) = jtype THEN
            RETURN b ->> name;
        END IF;
        RAISE EXCEPTION '"%" must be %', name,
            CASE jtype WHEN 'string' THEN 'a string'
                       WHEN 'number' THEN 'an integer'
                       ELSE 'true or false' END
            USING ERRCODE = 'PK007';
    END IF;
    RETURN nullif(q ->> name, '');
END
$$;

CREATE FUNCTION psk.http_text(b jsonb, q jsonb, name text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT psk.http_param(b, q, name, 'string') $$;

-- An integer parameter, within [lo, hi] (the psk_* functions check the
-- contract's own ranges; these bounds only keep the cast safe).
CREATE FUNCTION psk.http_int(b jsonb, q jsonb, name text,
                             lo bigint DEFAULT -2147483648,
                             hi bigint DEFAULT 2147483647) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE
AS $$
#variable_conflict use_variable
DECLARE
    v text := psk.http_param(b, q, name, 'number');
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    ELSIF v !~ '^-?[0-9]{1,18}$' OR v::numeric NOT BETWEEN lo AND hi THEN
        RAISE EXCEPTION '"%" must be an integer', name USING ERRCODE = 'PK007';
    END IF;
    RETURN v::bigint;
END
$$;

CREATE FUNCTION psk.http_bool(b jsonb, q jsonb, name text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
AS $$
#variable_conflict use_variable
DECLARE
    v text := psk.http_param(b, q, name, 'boolean');
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    ELSIF v NOT IN ('true', 'false') THEN
        RAISE EXCEPTION '"%" must be true or false', name USING ERRCODE = 'PK007';
    END IF;
    RETURN v = 'true';
END
$$;

-- A list (codes, countries): only in the body, an array of strings.
CREATE FUNCTION psk.http_text_array(b jsonb, name text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
AS $$
#variable_conflict use_variable
BEGIN
    IF b -> name IS NULL OR jsonb_typeof(b -> name) = 'null' THEN
        RETURN NULL;
    ELSIF jsonb_typeof(b -> name) <> 'array'
       OR EXISTS (SELECT FROM jsonb_array_elements(b -> name) e
                   WHERE jsonb_typeof(e) <> 'string') THEN
        RAISE EXCEPTION '"%" must be an array of strings', name USING ERRCODE = 'PK007';
    END IF;
    RETURN ARRAY(SELECT e FROM jsonb_array_elements_text(b -> name) WITH ORDINALITY AS a(e, i)
                 ORDER BY i);
END
$$;

-- A reservation token: a UUID, or invalid_input.
CREATE FUNCTION psk.http_uuid(v text, name text) RETURNS uuid
LANGUAGE plpgsql IMMUTABLE
AS $$
#variable_conflict use_variable
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    ELSIF v !~ '^\{?[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}\}?$' THEN
        RAISE EXCEPTION '"%" must be a UUID', name USING ERRCODE = 'PK007';
    END IF;
    RETURN v::uuid;
END
$$;

-- A date or timestamp of GET /admin/logs (ISO 8601; without an offset it is
-- UTC, the shim's session time zone).  An end given as a date alone includes
-- that whole day.
CREATE FUNCTION psk.http_time(v text, name text, is_end boolean) RETURNS timestamptz
LANGUAGE plpgsql STABLE
AS $$
#variable_conflict use_variable
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    ELSIF v ~ '^\d{4}-\d{2}-\d{2}$' THEN
        RETURN v::date + CASE WHEN is_end THEN 1 ELSE 0 END;
    ELSIF v ~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$' THEN
        RETURN v::timestamptz;
    END IF;
    RAISE EXCEPTION '"%" must be an ISO 8601 date or timestamp', name USING ERRCODE = 'PK007';
EXCEPTION
    WHEN datetime_field_overflow OR invalid_datetime_format THEN
        RAISE EXCEPTION '"%" must be an ISO 8601 date or timestamp', name USING ERRCODE = 'PK007';
END
$$;

-- One user as POST /admin/users/create and PATCH /admin/users/update return it.
CREATE FUNCTION psk.http_user_json(user_id bigint) RETURNS json
LANGUAGE plpgsql STABLE
AS $$
#variable_conflict use_variable
BEGIN
    RETURN (SELECT json_build_object('id', u.id, 'user_name', u.user_name,
                                     'team_name', u.team_name, 'contact_email', u.contact_email,
                                     'is_admin', u.is_admin, 'pool', u.pool)
              FROM @extschema@.psk_users() u
             WHERE u.id = user_id);
END
$$;

CREATE FUNCTION psk.http_countries_json() RETURNS json
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN (SELECT coalesce(json_agg(json_build_object('id', c.id, 'country', c.country,
                                                       'region', c.region) ORDER BY c.ordinality),
                            '[]')
              FROM @extschema@.psk_countries() WITH ORDINALITY AS c);
END
$$;

---------------------------------------------------------------------------
-- Routes.  All take (token text, body text, query jsonb) and return json.
---------------------------------------------------------------------------

-- POST /auth/login: {username, password}, from JSON or the OAuth2 form.
-- locked_out says "try again in N seconds"; the shim sends N as Retry-After.
CREATE FUNCTION psk.http_login(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    b jsonb := psk.http_body(body);
    username text := psk.http_text(b, NULL, 'username');
    password text := psk.http_text(b, NULL, 'password');
    reply json;
BEGIN
    IF username IS NULL OR password IS NULL THEN
        RAISE EXCEPTION '"%" is required', CASE WHEN username IS NULL THEN 'username' ELSE 'password' END
            USING ERRCODE = 'PK007';
    END IF;
    SELECT json_build_object('access_token', l.access_token, 'token_type', l.token_type,
                             'expires_in', l.expires_in)
      INTO reply
      FROM @extschema@.psk_login(username, password) l;
    RETURN reply;
END
$$;

-- GET or POST /auth/me
CREATE FUNCTION psk.http_me(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http_me'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- POST /auth/logout
CREATE FUNCTION psk.http_logout(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    who psk.http_caller := psk.http_session(token);
BEGIN
    PERFORM FROM @extschema@.psk_logout(token);
    RETURN json_build_object('msg', 'logged out');
END
$$;

-- POST /users/reserve {tester_name, country?, code_type?, how_many?}
CREATE FUNCTION psk.http_reserve(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http_reserve'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- POST /users/confirm {code, reservation_token}
CREATE FUNCTION psk.http_confirm(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http_confirm'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- POST /users/release {code, clearance_id?, note?}
CREATE FUNCTION psk.http_release(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http_release'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- POST /users/mark-non-usable {code, reason}
CREATE FUNCTION psk.http_mark_non_usable(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    who psk.http_caller := psk.http_session(token);
    b jsonb := psk.http_body(body);
    code text := psk.http_text(b, NULL, 'code');
    reason text := psk.http_text(b, NULL, 'reason');
    email text := psk.http_require(who, false);
    reply json;
BEGIN
    SELECT json_build_object('code', m.code, 'status', m.status)
      INTO reply
      FROM @extschema@.psk_mark_non_usable(email, code, reason) m;
    RETURN reply;
END
$$;

-- POST /users/comment {code, comment}
CREATE FUNCTION psk.http_comment(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    who psk.http_caller := psk.http_session(token);
    b jsonb := psk.http_body(body);
    code text := psk.http_text(b, NULL, 'code');
    comment text := psk.http_text(b, NULL, 'comment');
    email text := psk.http_require(who, false);
    reply json;
BEGIN
    SELECT json_build_object('code', c.code, 'comment', c.note, 'message', 'comment saved')
      INTO reply
      FROM @extschema@.psk_comment(email, code, comment) c;
    RETURN reply;
END
$$;

-- GET /users/my
CREATE FUNCTION psk.http_my_codes(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http_my_codes'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- GET /users/logs: the caller's last 20 audit rows
CREATE FUNCTION psk.http_user_logs(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    email text := psk.http_require(psk.http_session(token), false);
BEGIN
    RETURN json_build_object('logs', (
        SELECT coalesce(json_agg(json_build_object(
                   'id', l.id, 'logged_at', l.logged_at, 'action', l.action, 'code', l.code,
                   'tester_name', l.tester_name, 'country', l.country, 'region', l.region,
                   'note', l.note) ORDER BY l.ordinality), '[]')
          FROM @extschema@.psk_user_log(email, 20) WITH ORDINALITY AS l));
END
$$;

-- GET /users/recent-releases ?n=5&code_type=
CREATE FUNCTION psk.http_recent_releases(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    who psk.http_caller := psk.http_session(token);
    n bigint := psk.http_int(NULL, query, 'n');
    pool text := psk.http_text(NULL, query, 'code_type');
    email text := psk.http_require(who, false);
BEGIN
    RETURN (SELECT coalesce(json_agg(json_build_object(
                       'code', r.code, 'code_type', r.code_type, 'released_at', r.released_at,
                       'released_by', r.released_by, 'note', r.note) ORDER BY r.ordinality), '[]')
              FROM @extschema@.psk_recent_releases(coalesce(n, 5)::int, pool)
                   WITH ORDINALITY AS r);
END
$$;

-- GET /users/countries
CREATE FUNCTION psk.http_user_countries(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    email text := psk.http_require(psk.http_session(token), false);
BEGIN
    RETURN psk.http_countries_json();
END
$$;

-- GET /admin/countries
CREATE FUNCTION psk.http_admin_countries(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    email text := psk.http_require(psk.http_session(token), true);
BEGIN
    RETURN psk.http_countries_json();
END
$$;

-- GET /admin/count
CREATE FUNCTION psk.http_count(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    email text := psk.http_require(psk.http_session(token), true);
BEGIN
    RETURN (
        WITH c AS (SELECT * FROM @extschema@.psk_counts()),
        by_pool AS (
            SELECT c.code_type,
                   json_build_object(
                       'total', coalesce(sum(c.n), 0),
                       'can_be_used', coalesce(sum(c.n) FILTER (WHERE c.status = 'CAN_BE_USED'), 0),
                       'reserved', coalesce(sum(c.n) FILTER (WHERE c.status = 'RESERVED'), 0),
                       'in_use', coalesce(sum(c.n) FILTER (WHERE c.status = 'IN_USE'), 0),
                       'non_usable', coalesce(sum(c.n) FILTER (WHERE c.status = 'NON_USABLE'), 0)) AS o
              FROM c GROUP BY c.code_type)
        SELECT json_build_object(
                   'total', coalesce(sum(c.n), 0),
                   'can_be_used', coalesce(sum(c.n) FILTER (WHERE c.status = 'CAN_BE_USED'), 0),
                   'reserved', coalesce(sum(c.n) FILTER (WHERE c.status = 'RESERVED'), 0),
                   'in_use', coalesce(sum(c.n) FILTER (WHERE c.status = 'IN_USE'), 0),
                   'non_usable', coalesce(sum(c.n) FILTER (WHERE c.status = 'NON_USABLE'), 0),
                   'by_pool', (SELECT json_object_agg(p.code_type, p.o
                                   ORDER BY array_position(ARRAY['OSV', 'HSV', 'COMMON'], p.code_type))
                                 FROM by_pool p))
          FROM c);
END
$$;

-- POST /admin/users/create {team_name, user_name, contact_email, password, is_admin?, pool?}
CREATE FUNCTION psk.http_create_user(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    who psk.http_caller := psk.http_session(token);
    b jsonb := psk.http_body(body);
    team text := psk.http_text(b, query, 'team_name');
    name text := psk.http_text(b, query, 'user_name');
    contact text := psk.http_text(b, query, 'contact_email');
    password text := psk.http_text(b, query, 'password');
    admin boolean := psk.http_bool(b, query, 'is_admin');
    pool text := psk.http_text(b, query, 'pool');
    email text := psk.http_require(who, true);
    new_id bigint;
BEGIN
    SELECT u.id INTO new_id
      FROM @extschema@.psk_create_user(email, team, name, contact, password,
                                       coalesce(admin, false), pool) u;
    RETURN psk.http_user_json(new_id);
END
$$;

-- GET /admin/users/get-users
CREATE FUNCTION psk.http_users(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    email text := psk.http_require(psk.http_session(token), true);
BEGIN
    RETURN (SELECT coalesce(json_agg(json_build_object(
                       'id', u.id, 'user_name', u.user_name, 'team_name', u.team_name,
                       'contact_email', u.contact_email, 'is_admin', u.is_admin, 'pool', u.pool,
                       'reserved_count', u.reserved_count,
                       'reserved_codes', coalesce(u.reserved_codes, '{}'))
                       ORDER BY u.ordinality), '[]')
              FROM @extschema@.psk_users() WITH ORDINALITY AS u);
END
$$;

-- PATCH /admin/users/update {id, and any of team_name, user_name,
-- contact_email, password, is_admin, pool}
CREATE FUNCTION psk.http_update_user(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    who psk.http_caller := psk.http_session(token);
    b jsonb := psk.http_body(body);
    user_id bigint := psk.http_int(b, query, 'id', 1, 9223372036854775807);
    team text := psk.http_text(b, query, 'team_name');
    name text := psk.http_text(b, query, 'user_name');
    contact text := psk.http_text(b, query, 'contact_email');
    password text := psk.http_text(b, query, 'password');
    admin boolean := psk.http_bool(b, query, 'is_admin');
    pool text := psk.http_text(b, query, 'pool');
    email text := psk.http_require(who, true);
    updated bigint;
BEGIN
    IF user_id IS NULL THEN
        RAISE EXCEPTION '"id" is required' USING ERRCODE = 'PK007';
    END IF;
    SELECT u.id INTO updated
      FROM @extschema@.psk_update_user(email, user_id, team, name, contact, password,
                                       admin, pool) u;
    RETURN psk.http_user_json(updated);
END
$$;

-- DELETE /admin/users/delete {id} or ?id=
CREATE FUNCTION psk.http_delete_user(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    who psk.http_caller := psk.http_session(token);
    b jsonb := psk.http_body(body);
    user_id bigint := psk.http_int(b, query, 'id', 1, 9223372036854775807);
    email text := psk.http_require(who, true);
    deleted bigint;
BEGIN
    IF user_id IS NULL THEN
        RAISE EXCEPTION '"id" is required' USING ERRCODE = 'PK007';
    END IF;
    SELECT d.id INTO deleted FROM @extschema@.psk_delete_user(email, user_id) d;
    RETURN json_build_object('message', format('user %s deleted', deleted));
END
$$;

-- POST /admin/codes/add {code_type, countries?, codes}
CREATE FUNCTION psk.http_add_codes(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    who psk.http_caller := psk.http_session(token);
    b jsonb := psk.http_body(body);
    pool text := psk.http_text(b, query, 'code_type');
    codes text[] := psk.http_text_array(b, 'codes');
    countries text[] := psk.http_text_array(b, 'countries');
    email text := psk.http_require(who, true);
BEGIN
    RETURN (
        WITH r AS (SELECT a.code, a.outcome, a.ordinality
                     FROM @extschema@.psk_add_codes(email, pool, codes, countries)
                          WITH ORDINALITY AS a)
        SELECT json_build_object(
                   'inserted', coalesce(json_agg(r.code ORDER BY r.ordinality)
                                        FILTER (WHERE r.outcome = 'inserted'), '[]'),
                   'failed', coalesce(json_agg(json_build_array(r.code, r.outcome) ORDER BY r.ordinality)
                                      FILTER (WHERE r.code IS NOT NULL AND r.outcome <> 'inserted'), '[]'),
                   'unknown_countries', coalesce(json_agg(substr(r.outcome, length('unknown_country:') + 1)
                                                          ORDER BY r.ordinality)
                                                 FILTER (WHERE r.code IS NULL
                                                           AND r.outcome LIKE 'unknown\_country:%'), '[]'))
          FROM r);
END
$$;

-- GET /admin/codes/all: every code, by pool and status
CREATE FUNCTION psk.http_codes_all(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    email text := psk.http_require(psk.http_session(token), true);
    all_codes text[] := '{}';
    all_pools text[] := '{}';
    all_statuses text[] := '{}';
    page_codes text[];
    page_pools text[];
    page_statuses text[];
    after text;
    got bigint;
BEGIN
    -- psk_codes pages by code (keyset); 10000 is its largest page
    LOOP
        SELECT array_agg(c.code ORDER BY c.ordinality), array_agg(c.code_type ORDER BY c.ordinality),
               array_agg(c.status ORDER BY c.ordinality), count(*)
          INTO page_codes, page_pools, page_statuses, got
          FROM @extschema@.psk_codes(NULL, NULL, after, 10000) WITH ORDINALITY AS c;
        EXIT WHEN got = 0;
        all_codes := all_codes || page_codes;
        all_pools := all_pools || page_pools;
        all_statuses := all_statuses || page_statuses;
        after := page_codes[got];
        EXIT WHEN got < 10000;
    END LOOP;
    RETURN (
        SELECT json_object_agg(p.pool, (
                   SELECT json_build_object(
                       'reserved', coalesce(json_agg(a.code ORDER BY a.i) FILTER (WHERE a.status = 'RESERVED'), '[]'),
                       'in_use', coalesce(json_agg(a.code ORDER BY a.i) FILTER (WHERE a.status = 'IN_USE'), '[]'),
                       'can_be_used', coalesce(json_agg(a.code ORDER BY a.i) FILTER (WHERE a.status = 'CAN_BE_USED'), '[]'),
                       'non_usable', coalesce(json_agg(a.code ORDER BY a.i) FILTER (WHERE a.status = 'NON_USABLE'), '[]'))
                     FROM unnest(all_codes, all_pools, all_statuses) WITH ORDINALITY AS a(code, pool, status, i)
                    WHERE a.pool = p.pool)
                   ORDER BY p.i)
          FROM unnest(ARRAY['OSV', 'HSV', 'COMMON']) WITH ORDINALITY AS p(pool, i));
END
$$;

-- GET /admin/codes ?code_type&status&after&page_size
CREATE FUNCTION psk.http_codes(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    who psk.http_caller := psk.http_session(token);
    pool text := psk.http_text(NULL, query, 'code_type');
    st text := psk.http_text(NULL, query, 'status');
    after text := psk.http_text(NULL, query, 'after');
    size bigint := psk.http_int(NULL, query, 'page_size');
    email text := psk.http_require(who, true);
    page json;
    last_code text;
    more boolean;
BEGIN
    SELECT coalesce(json_agg(json_build_object(
               'code', c.code, 'code_type', c.code_type, 'status', c.status,
               'holder', c.holder, 'tester_name', c.tester_name,
               'reserved_at', c.reserved_at, 'expires_at', c.expires_at,
               'released_at', c.released_at, 'note', c.note, 'countries', c.countries)
               ORDER BY c.ordinality), '[]'),
           (array_agg(c.code ORDER BY c.ordinality DESC))[1]
      INTO page, last_code
      -- 1000: psk_codes' default page
      FROM @extschema@.psk_codes(pool, st, after, coalesce(size, 1000)::int) WITH ORDINALITY AS c;
    -- a next page exists when one more code follows the last one
    more := last_code IS NOT NULL
            AND EXISTS (SELECT FROM @extschema@.psk_codes(pool, st, last_code, 1));
    RETURN json_build_object('codes', page,
                             'next_after', CASE WHEN more THEN last_code END);
END
$$;

-- DELETE /admin/codes/{code}
CREATE FUNCTION psk.http_delete_code(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    who psk.http_caller := psk.http_session(token);
    code text := psk.http_text(NULL, query, 'code');
    email text := psk.http_require(who, true);
    deleted text;
BEGIN
    SELECT d.code INTO deleted FROM @extschema@.psk_delete_code(email, code) d;
    RETURN json_build_object('message', format('code %s deleted', deleted));
END
$$;

-- POST /admin/codes/disassociate {code, note?}
CREATE FUNCTION psk.http_disassociate(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    who psk.http_caller := psk.http_session(token);
    b jsonb := psk.http_body(body);
    code text := psk.http_text(b, query, 'code');
    note text := psk.http_text(b, query, 'note');
    email text := psk.http_require(who, true);
    reply json;
BEGIN
    SELECT json_build_object('code', d.code, 'previous_holder', d.previous_holder)
      INTO reply
      FROM @extschema@.psk_disassociate(email, code, note) d;
    RETURN reply;
END
$$;

-- POST /admin/codes/mark-non-usable {code, reason}
CREATE FUNCTION psk.http_admin_mark_non_usable(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    who psk.http_caller := psk.http_session(token);
    b jsonb := psk.http_body(body);
    code text := psk.http_text(b, query, 'code');
    reason text := psk.http_text(b, query, 'reason');
    email text := psk.http_require(who, true);
    reply json;
BEGIN
    SELECT json_build_object('code', m.code, 'status', m.status)
      INTO reply
      FROM @extschema@.psk_mark_non_usable(email, code, reason) m;
    RETURN reply;
END
$$;

-- POST /admin/codes/restore {code}
CREATE FUNCTION psk.http_restore(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    who psk.http_caller := psk.http_session(token);
    b jsonb := psk.http_body(body);
    code text := psk.http_text(b, query, 'code');
    email text := psk.http_require(who, true);
    reply json;
BEGIN
    SELECT json_build_object('code', r.code, 'status', r.status)
      INTO reply
      FROM @extschema@.psk_restore(email, code) r;
    RETURN reply;
END
$$;

-- GET /admin/logs ?page&page_size&code&user_name&action&start_date&end_date
CREATE FUNCTION psk.http_logs(token text, body text, query jsonb) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    who psk.http_caller := psk.http_session(token);
    page bigint := psk.http_int(NULL, query, 'page');
    size bigint := psk.http_int(NULL, query, 'page_size');
    code text := psk.http_text(NULL, query, 'code');
    user_name text := psk.http_text(NULL, query, 'user_name');
    action text := psk.http_text(NULL, query, 'action');
    start_text text := psk.http_text(NULL, query, 'start_date');
    end_text text := psk.http_text(NULL, query, 'end_date');
    since timestamptz := psk.http_time(start_text, 'start_date', false);
    until timestamptz := psk.http_time(end_text, 'end_date', true);
    email text := psk.http_require(who, true);
    total bigint;
    logs json;
BEGIN
    -- a date alone as the end means that whole day: until is the next midnight
    IF since > until OR (since = until AND end_text ~ '^\d{4}-\d{2}-\d{2}$') THEN
        RAISE EXCEPTION 'start_date is after end_date' USING ERRCODE = 'PK007';
    END IF;
    SELECT max(l.total_count),
           coalesce(json_agg(json_build_object(
               'id', l.id, 'logged_at', l.logged_at, 'action', l.action, 'code', l.code,
               'user_name', l.user_name, 'contact_email', l.contact_email,
               'tester_name', l.tester_name, 'country', l.country, 'region', l.region,
               'note', l.note) ORDER BY l.ordinality), '[]')
      INTO total, logs
      FROM @extschema@.psk_log(coalesce(page, 1)::int, coalesce(size, 20)::int, code,
                               user_name, action, since, until) WITH ORDINALITY AS l;
    IF total IS NULL THEN
        -- a page past the end is empty; the total still counts
        SELECT max(l.total_count) INTO total
          FROM @extschema@.psk_log(1, 1, code, user_name, action, since, until) l;
    END IF;
    RETURN json_build_object('total_count', coalesce(total, 0), 'logs', logs);
END
$$;

-- GET /healthz: the database answers
CREATE FUNCTION psk.http_healthz(token text, body text, query jsonb) RETURNS json
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT json_build_object('status', 'ok') $$;
-- Backups.  pg_dump leaves out the rows of an extension's member tables,
-- since CREATE EXTENSION makes those tables, unless the extension marks them
-- with pg_extension_config_dump: unmarked, a dump of a PSK database restores
-- an empty PSK.  Every table of schema psk holds state that must survive a
-- restore (sessions too, so that logged-in clients stay logged in, and
-- login failures, so that a restore does not lift a lockout), and so does
-- the position of every identity sequence, so that ids made after a restore
-- never collide with restored ones.  Marked whole (no filter): the install
-- script adds no rows of its own.
DO $do$
DECLARE
    r regclass;
BEGIN
    FOR r IN
        SELECT c.oid FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'psk'::regnamespace AND c.relkind IN ('r', 'S')
         ORDER BY c.relname
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(r, '');
    END LOOP;
END
$do$;
-- Least privilege: nothing of psk is open to PUBLIC.  A DBA grants EXECUTE
-- on the psk_* functions to an application role (see README.md).
DO $do$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
          FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_depend d
            ON d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
           AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
          JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'psk'
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$do$;
REVOKE ALL ON ALL TABLES IN SCHEMA psk FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA psk FROM PUBLIC;
