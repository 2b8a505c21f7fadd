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

-- ==== metrics (75_metrics.sql) ====
CREATE TABLE psk.transition_totals (
    action text PRIMARY KEY,
    n      bigint NOT NULL CHECK (n >= 0)
);

-- One row, made by the first refresh.
CREATE TABLE psk.metrics_state (
    id           int PRIMARY KEY CHECK (id = 1),
    -- audit rows with id <= folded_to are counted in psk.transition_totals
    folded_to    bigint NOT NULL DEFAULT 0,
    -- the next fold, up to this id, once no transaction older than
    -- pending_xmax runs
    pending_to   bigint,
    pending_xmax xid8,
    -- psk.code_counts as of counted_at, counted in count_ms
    counted_at   timestamptz,
    count_ms     double precision
);

-- The codes by pool and status (country NULL), and the free codes by pool
-- and country: recounted by the worker every psk.expiry_interval (less
-- often when counting takes long: at most about 5% of its time), so that
-- a scrape reads a few rows instead of counting a pool of 10M codes.
CREATE TABLE psk.code_counts (
    code_type text NOT NULL,
    status    text NOT NULL,
    country   text NOT NULL, -- '': the row of the pool and status
    n         bigint NOT NULL,
    PRIMARY KEY (code_type, status, country)
);

-- A dump keeps the totals with the log they count (one snapshot), as it
-- keeps every table of psk (90_backup.sql).
SELECT pg_catalog.pg_extension_config_dump('psk.transition_totals', '');
SELECT pg_catalog.pg_extension_config_dump('psk.metrics_state', '');
SELECT pg_catalog.pg_extension_config_dump('psk.code_counts', '');
REVOKE ALL ON psk.transition_totals, psk.metrics_state, psk.code_counts FROM PUBLIC;

-- The expiry worker of this database, from shared memory (metrics.c).
CREATE FUNCTION psk.expiry_worker_state()
RETURNS TABLE (preloaded bool, running bool, pid int, started_at timestamptz,
               last_sweep_at timestamptz, sweeps bigint)
AS 'MODULE_PATHNAME', 'psk_expiry_worker_state'
LANGUAGE C VOLATILE STRICT;

-- Fold new audit rows into the totals; recount the codes when the last
-- count is older than recount_every (and than 20 times its duration).
-- Called by the worker after each sweep; by hand or a scheduler without it.
CREATE FUNCTION psk.metrics_refresh(recount_every interval DEFAULT '0')
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    snap pg_snapshot := pg_catalog.pg_current_snapshot();
    s    psk.metrics_state;
    t0   timestamptz;
BEGIN
    INSERT INTO psk.metrics_state (id) VALUES (1) ON CONFLICT DO NOTHING;
    SELECT * INTO s FROM psk.metrics_state WHERE id = 1 FOR UPDATE;
    -- restored from another cluster: its transaction ids mean nothing here
    IF s.pending_xmax > pg_catalog.pg_snapshot_xmax(snap) THEN
        s.pending_to := NULL;
    END IF;
    IF s.pending_to IS NOT NULL
       AND pg_catalog.pg_snapshot_xmin(snap) >= s.pending_xmax THEN
        INSERT INTO psk.transition_totals AS t (action, n)
        SELECT l.action, pg_catalog.count(*)
          FROM psk.audit_log l
         WHERE l.id > s.folded_to AND l.id <= s.pending_to
         GROUP BY l.action
        ON CONFLICT (action) DO UPDATE SET n = t.n + excluded.n;
        s.folded_to := s.pending_to;
        s.pending_to := NULL;
    END IF;
    IF s.pending_to IS NULL THEN
        -- at most 1M rows a fold: the first one after an update is bounded.
        -- Only the rows past folded_to are read (the log's BRIN index of
        -- ids, 45_audit_partitions.sql: there is no btree on id to take a
        -- max() from); none: nothing to fold.
        s.pending_to := (SELECT pg_catalog.max(LEAST(l.id, s.folded_to + 1000000))
                           FROM psk.audit_log l WHERE l.id > s.folded_to);
        s.pending_xmax := pg_catalog.pg_snapshot_xmax(snap);
        IF s.pending_to IS NULL OR s.pending_to <= s.folded_to THEN
            s.pending_to := NULL;
            s.pending_xmax := NULL;
        END IF;
    END IF;

    IF s.counted_at IS NULL
       OR pg_catalog.clock_timestamp() - s.counted_at >=
          GREATEST(recount_every,
                   pg_catalog.make_interval(secs => 0.02 * coalesce(s.count_ms, 0))) THEN
        t0 := pg_catalog.clock_timestamp();
        DELETE FROM psk.code_counts;
        INSERT INTO psk.code_counts (code_type, status, country, n)
        SELECT c.pool, c.status, '', pg_catalog.count(*)
          FROM psk.codes c GROUP BY c.pool, c.status;
        INSERT INTO psk.code_counts (code_type, status, country, n)
        SELECT c.pool, 'CAN_BE_USED', co.name, pg_catalog.count(*)
          FROM psk.codes c
          JOIN psk.code_countries cc ON cc.code_id = c.id
          JOIN psk.countries co ON co.id = cc.country_id
         WHERE c.status = 'CAN_BE_USED'
         GROUP BY c.pool, co.name;
        s.counted_at := t0;
        s.count_ms := EXTRACT(epoch FROM pg_catalog.clock_timestamp() - t0) * 1000;
    END IF;

    UPDATE psk.metrics_state
       SET folded_to = s.folded_to, pending_to = s.pending_to,
           pending_xmax = s.pending_xmax, counted_at = s.counted_at,
           count_ms = s.count_ms
     WHERE id = 1;
END
$$;

-- A Prometheus label value: backslash, double quote and newline escaped.
CREATE FUNCTION psk.prom_label(name text, value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT name || '="' || replace(replace(replace(value, '\', '\\'), '"', '\"'),
                                 E'\n', '\n') || '"'
$$;

-- The database part of GET /metrics: rows (name, labels, value), labels
-- already in Prometheus' form (code_type="OSV",status="RESERVED").  The
-- shim adds HELP and TYPE.  Counts of codes come from psk.code_counts
-- while the worker keeps it fresh.  When it is stale (no worker) they are
-- counted here if psk.codes is small (under 100,000 rows: a few ms);
-- otherwise the last counts are given with their time, or none at all
-- (never a made-up 0).  No JIT: compiling the plan of the branches that
-- do not run cost more than running the rest.
CREATE FUNCTION psk.metrics()
RETURNS TABLE (name text, labels text, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
WITH st0 AS (
    SELECT s.folded_to, s.counted_at,
           s.counted_at IS NULL
           OR s.counted_at < now() - GREATEST(
                  interval '1 minute',
                  3 * current_setting('psk.expiry_interval')::interval,
                  make_interval(secs => 0.04 * coalesce(s.count_ms, 0))) AS old
      FROM (SELECT 1) one LEFT JOIN psk.metrics_state s ON s.id = 1
), st AS (
    SELECT st0.folded_to, st0.counted_at,
           st0.old AND (SELECT c.reltuples < 100000 FROM pg_class c
                         WHERE c.oid = 'psk.codes'::regclass) AS stale
      FROM st0
), pools AS (
    SELECT l.name FROM psk.lists() l WHERE l.list = 'pool'
), counts AS (
    SELECT k.code_type, k.status, k.country, k.n
      FROM psk.code_counts k WHERE NOT (SELECT stale FROM st)
    UNION ALL
    SELECT c.pool, c.status, '', count(*)
      FROM psk.codes c WHERE (SELECT stale FROM st)
     GROUP BY c.pool, c.status
    UNION ALL
    SELECT c.pool, 'CAN_BE_USED', co.name, count(*)
      FROM psk.codes c
      JOIN psk.code_countries cc ON cc.code_id = c.id
      JOIN psk.countries co ON co.id = cc.country_id
     WHERE c.status = 'CAN_BE_USED' AND (SELECT stale FROM st)
     GROUP BY c.pool, co.name
), transitions AS (
    SELECT t.action, sum(t.n) AS n FROM (
        SELECT a.name AS action, 0::bigint AS n
          FROM psk.lists() a WHERE a.list = 'action'
        UNION ALL
        SELECT tt.action, tt.n FROM psk.transition_totals tt
        UNION ALL
        SELECT l.action, count(*) FROM psk.audit_log l
         WHERE l.id > coalesce((SELECT folded_to FROM st), 0)
         GROUP BY l.action) t
     GROUP BY t.action
), w AS (
    SELECT * FROM psk.expiry_worker_state()
)
SELECT 'psk_codes', psk.prom_label('code_type', p.name) || ','
                    || psk.prom_label('status', s.name),
       coalesce((SELECT sum(k.n) FROM counts k WHERE k.country = ''
                    AND k.code_type = p.name AND k.status = s.name), 0)
  FROM pools p CROSS JOIN psk.lists() s
 WHERE s.list = 'status'
   AND (SELECT st.stale OR st.counted_at IS NOT NULL FROM st)
UNION ALL
SELECT 'psk_free_codes', psk.prom_label('code_type', k.code_type) || ','
                         || psk.prom_label('country', k.country), k.n
  FROM counts k WHERE k.country <> ''
UNION ALL
SELECT 'psk_oldest_hold_seconds', psk.prom_label('code_type', p.name),
       coalesce(EXTRACT(epoch FROM now() - h.reserved_at)::double precision, 0)
  FROM pools p LEFT JOIN LATERAL (
       SELECT c.reserved_at FROM psk.codes c
        WHERE c.status IN ('RESERVED', 'IN_USE') AND c.pool = p.name
        ORDER BY c.reserved_at LIMIT 1) h ON true
UNION ALL
SELECT 'psk_transitions_total', psk.prom_label('action', t.action), t.n
  FROM transitions t
UNION ALL
SELECT 'psk_expiry_worker_up', '', CASE WHEN w.running THEN 1 ELSE 0 END FROM w
UNION ALL
SELECT 'psk_expiry_worker_last_sweep_timestamp_seconds', '',
       coalesce(EXTRACT(epoch FROM w.last_sweep_at)::double precision, 0) FROM w
UNION ALL
SELECT 'psk_expiry_worker_sweeps_total', '', w.sweeps FROM w
UNION ALL
SELECT 'psk_code_counts_timestamp_seconds', '',
       CASE WHEN st.stale THEN EXTRACT(epoch FROM now())::double precision
            ELSE coalesce(EXTRACT(epoch FROM st.counted_at)::double precision, 0) END
  FROM st
UNION ALL
SELECT 'psk_database_primary', '', CASE WHEN pg_is_in_recovery() THEN 0 ELSE 1 END
ORDER BY 1, 2
$$;

-- The shim's role gets EXECUTE on it in scripts/shim-role.sql.
REVOKE ALL ON FUNCTION psk.metrics(), psk.expiry_worker_state(),
    psk.metrics_refresh(interval), psk.prom_label(text, text) FROM PUBLIC;

-- The log made before this version, counted once here, so that no scrape
-- counts it: writers wait for the count (SHARE blocks inserts; an update
-- runs with the service stopped or quiet anyway).
LOCK TABLE psk.audit_log IN SHARE MODE;
INSERT INTO psk.transition_totals (action, n)
SELECT action, pg_catalog.count(*) FROM psk.audit_log GROUP BY action;
INSERT INTO psk.metrics_state (id, folded_to)
SELECT 1, coalesce(pg_catalog.max(id), 0) FROM psk.audit_log;

-- Keeping the log bounded (00_schema.sql, 45_audit_partitions.sql):
-- psk.audit_log becomes a table partitioned by week.  The old table is set
-- aside, the new one made as a fresh install makes it, with a partition
-- for every week of the old rows (and two weeks ahead), the rows copied
-- with their ids, the identity sequence carried on, and the old table
-- dropped.  The partitions are not members of the extension (pg_dump dumps
-- them and their rows like any table), as those the worker makes later.
ALTER TABLE psk.audit_log RENAME TO audit_log_0_2;
ALTER INDEX psk.audit_log_pkey RENAME TO audit_log_0_2_pkey;
ALTER INDEX psk.audit_log_code_idx RENAME TO audit_log_0_2_code_idx;
ALTER INDEX psk.audit_log_user_idx RENAME TO audit_log_0_2_user_idx;
ALTER INDEX psk.audit_log_time_idx RENAME TO audit_log_0_2_time_idx;
ALTER INDEX psk.audit_log_releases_idx RENAME TO audit_log_0_2_releases_idx;
ALTER TABLE psk.audit_log_0_2 RENAME CONSTRAINT audit_log_action_check TO audit_log_0_2_action_check;
ALTER SEQUENCE psk.audit_log_id_seq RENAME TO audit_log_0_2_id_seq;

CREATE TABLE psk.audit_log (
    id              bigint GENERATED ALWAYS AS IDENTITY,
    logged_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    action          text NOT NULL CHECK (action IN (
                        'ADDED', 'RESERVED', 'CONFIRMED', 'RELEASED', 'EXPIRED',
                        'DISASSOCIATED', 'MARKED_NON_USABLE', 'RESTORED',
                        'DELETED', 'COMMENTED', 'RENEWED',
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
) PARTITION BY RANGE (logged_at);
-- (its indexes: psk.audit_partition_indexes, below)
CREATE TABLE psk.audit_log_default PARTITION OF psk.audit_log DEFAULT;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON psk.audit_log
    FOR EACH ROW EXECUTE FUNCTION psk.audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON psk.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION psk.audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON psk.audit_log_default
    FOR EACH STATEMENT EXECUTE FUNCTION psk.audit_log_is_append_only();
-- the background worker; sites without it call it from a scheduler).
--
-- One partition per week, Monday 00:00 UTC to the next, named
-- audit_log_pYYYYMMDD after its first day: a week keeps the number of
-- partitions small when everything is kept (52 a year: planning a reader
-- that spans them all stays cheap), while psk.audit_retention removes rows
-- at most a week after they fall out of it.  Partitions are made two
-- weeks ahead; a row past them goes to psk.audit_log_default, and the next
-- maintenance moves it to a partition of its week.  Partitions made here
-- are not members of the extension, so pg_dump dumps them, their rows
-- included, like any table of the database.

-- The partitions of psk.audit_log with their bounds (the default one and
-- any with other bounds are left out).
CREATE FUNCTION psk.audit_partitions()
RETURNS TABLE (part regclass, lower_bound timestamptz, upper_bound timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.oid::regclass, m[1]::timestamptz, m[2]::timestamptz
      FROM pg_catalog.pg_inherits i
      JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid,
           pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                                   '^FOR VALUES FROM \(''([^'']*)''\) TO \(''([^'']*)''\)$') m
     WHERE i.inhparent = 'psk.audit_log'::regclass AND m IS NOT NULL
     ORDER BY 2
$$;

-- The indexes of every partition of the log, the default one included:
-- each one a reader needs, and no other, for each costs every audit row an
-- index entry (two rows a reserve + release cycle).  Named after the
-- partition (renew.c opens <partition>_code_idx).
--   code_idx      (code COLLATE "C", id): a code's history (renew),
--                 psk_log's code filter (a prefix is a range of it: "C",
--                 so in any database collation; every reader compares with
--                 COLLATE "C" to use it, the same equality), migrate's
--                 last row of each code
--   user_idx      (user_id, logged_at DESC, id DESC): psk_user_log
--   time_idx      (logged_at, id): psk_log's pages, newest first (read
--                 backwards), and its since/until
--   releases_idx  (id) WHERE action = 'RELEASED': psk_recent_releases,
--                 with a code_type too (the releases of a rare pool would
--                 be looked for row by row along the time index)
-- Ascending, read backwards: rows arrive in (logged_at, id) order, so each
-- entry goes to the index's last page, which a btree insert finds without
-- a descent and splits leaving the full page behind; in descending order
-- every entry went to the first page, split in halves (twice the pages).
--   id_brin       BRIN (id): the rows past an id (psk.metrics and
--                 psk.metrics_refresh count the rows past folded_to).  Rows
--                 arrive in id order, so a range of ids is a range of pages;
--                 an insert into the last, unsummarised range writes no
--                 index entry (autosummarize: summarised once the next
--                 range starts).
-- No primary key on id: ids come from the identity sequence, and no reader
-- looks a row up by id (it cost two index entries a cycle).  For logical
-- replication the whole row identifies it instead (REPLICA IDENTITY FULL):
-- the log only ever takes inserts, which need none, but the upkeep deletes
-- the rows it moves out of the default partition.  IF NOT EXISTS, and an
-- old primary key dropped: the same call brings a partition made with an
-- earlier index set to this one.
CREATE FUNCTION psk.audit_partition_indexes(part regclass)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning  -- (no notice for each index there is)
AS $$
DECLARE
    name text := (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = part);
    idx regclass;
BEGIN
    -- the descending time and releases indexes of an earlier index set,
    -- and its code index in the database's collation
    FOR idx IN SELECT i.indexrelid::regclass FROM pg_catalog.pg_index i
                 JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
                WHERE i.indrelid = part
                  AND ((c.relname IN (name || '_time_idx', name || '_releases_idx')
                        AND EXISTS (SELECT FROM pg_catalog.unnest(i.indoption::int2[]) o
                                     WHERE o & 1 = 1))
                       OR (c.relname = name || '_code_idx'
                           AND i.indcollation[0] <> 'pg_catalog."C"'::regcollation))
    LOOP
        EXECUTE pg_catalog.format('DROP INDEX %s', idx);
    END LOOP;
    EXECUTE pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY FULL', part);
    EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I',
                              part, name || '_pkey');
    EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS %I ON %s (code COLLATE "C", id)',
                              name || '_code_idx', part);
    EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS %I ON %s (user_id, logged_at DESC, id DESC)',
                              name || '_user_idx', part);
    EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS %I ON %s (logged_at, id)',
                              name || '_time_idx', part);
    EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS %I ON %s (id) WHERE action = ''RELEASED''',
                              name || '_releases_idx', part);
    EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS %I ON %s USING brin (id) WITH (autosummarize = on)',
                              name || '_id_brin', part);
END
$$;
SELECT psk.audit_partition_indexes('psk.audit_log_default');

-- psk.audit_partition_width (a week unless a test or the soak of make
-- bench-scale shortens it) as an interval, and the start of the partition
-- that holds ts at that width: partitions tile each week from Monday 00:00
-- UTC (the setting divides a week evenly).
CREATE FUNCTION psk.audit_partition_width()
RETURNS interval
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.make_interval(secs => pg_catalog.date_part(
        'epoch', pg_catalog.current_setting('psk.audit_partition_width')::interval))
$$;

CREATE FUNCTION psk.audit_partition_start(ts timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT w + pg_catalog.floor(pg_catalog.date_part('epoch', ts - w)
                                / pg_catalog.date_part('epoch', psk.audit_partition_width()))
               * psk.audit_partition_width()
      FROM pg_catalog.date_trunc('week', ts, 'UTC') w
$$;

-- The partition that starts at week_start (a Monday 00:00 UTC at the
-- default width) and spans psk.audit_partition_width, unless there is one:
-- append-only like its parent, with the indexes of every partition
-- (psk.audit_partition_indexes).  Named after its first day (and, when shorter than a
-- week, its first second).
CREATE FUNCTION psk.audit_partition_create(week_start timestamptz)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    width interval := psk.audit_partition_width();
    name text := 'audit_log_p' || pg_catalog.to_char(week_start AT TIME ZONE 'UTC',
        CASE WHEN width = interval '168 hours' THEN 'YYYYMMDD' ELSE 'YYYYMMDD_HH24MISS' END);
BEGIN
    IF pg_catalog.to_regclass('psk.' || pg_catalog.quote_ident(name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE pg_catalog.format(
        'CREATE TABLE psk.%I PARTITION OF psk.audit_log FOR VALUES FROM (%L) TO (%L)',
        name, week_start, week_start + width);
    PERFORM psk.audit_partition_indexes(pg_catalog.format('psk.%I', name)::regclass);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON psk.%I'
        ' FOR EACH STATEMENT EXECUTE FUNCTION psk.audit_log_is_append_only()', name);
    EXECUTE pg_catalog.format('REVOKE ALL ON psk.%I FROM PUBLIC', name);
    RETURN true;
END
$$;

-- Make the partitions from now to weeks_ahead weeks ahead, move any row of
-- the default partition to its week's, add the TRUNCATE trigger to any
-- partition without one, and drop the partitions whose every row is older
-- than psk.audit_retention (when > 0): whole tables, never a row deleted.
-- One row per partition made, filled or dropped.
CREATE FUNCTION @extschema@.psk_audit_maintain(weeks_ahead int DEFAULT 2)
RETURNS TABLE (partition_name text, action text, n bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- in seconds (GUC units), not days: the same in every time zone
    retention interval := pg_catalog.make_interval(secs => pg_catalog.date_part(
        'epoch', pg_catalog.current_setting('psk.audit_retention')::interval));
    -- partitions of psk.audit_partition_width: "week" below is one of them
    width interval := psk.audit_partition_width();
    this_week timestamptz := psk.audit_partition_start(pg_catalog.now());
    first_week timestamptz;
    last_week timestamptz;
    wk timestamptz;
    r record;
    moved bigint;
    detached boolean := false;
BEGIN
    IF weeks_ahead IS NULL OR weeks_ahead < 0 OR weeks_ahead > 52 THEN
        RAISE EXCEPTION 'weeks_ahead must be between 0 and 52'
            USING ERRCODE = 'PK001';
    END IF;
    last_week := this_week + weeks_ahead * width;

    -- Rows that found no partition: the default partition is detached (it
    -- loses the cloned row triggers, and new partitions need not be checked
    -- against it), partitions are made for their weeks, the rows go there
    -- and the default partition comes back empty.  Rare (a fresh install,
    -- a worker stopped for weeks) and short: the log is locked meanwhile.
    SELECT pg_catalog.min(logged_at), pg_catalog.max(logged_at)
      INTO first_week, wk FROM psk.audit_log_default;
    IF first_week IS NOT NULL THEN
        LOCK TABLE psk.audit_log IN ACCESS EXCLUSIVE MODE;
        SELECT pg_catalog.min(logged_at), pg_catalog.max(logged_at)
          INTO first_week, wk FROM psk.audit_log_default;
    END IF;
    IF first_week IS NOT NULL THEN
        ALTER TABLE psk.audit_log DETACH PARTITION psk.audit_log_default;
        detached := true;
        first_week := psk.audit_partition_start(first_week);
        last_week := GREATEST(last_week, psk.audit_partition_start(wk));
    ELSE
        first_week := this_week;
    END IF;

    FOR wk IN SELECT g FROM pg_catalog.generate_series(first_week, last_week, width) g
    LOOP
        IF NOT EXISTS (SELECT FROM psk.audit_partitions() p
                        WHERE p.lower_bound < wk + width AND p.upper_bound > wk)
           AND psk.audit_partition_create(wk) THEN
            partition_name := (SELECT p.part::text FROM psk.audit_partitions() p
                                WHERE p.lower_bound = wk);
            action := 'created'; n := 0;
            RETURN NEXT;
        END IF;
    END LOOP;

    IF detached THEN
        INSERT INTO psk.audit_log OVERRIDING SYSTEM VALUE SELECT * FROM psk.audit_log_default;
        GET DIAGNOSTICS moved = ROW_COUNT;
        DELETE FROM psk.audit_log_default;
        ALTER TABLE psk.audit_log ATTACH PARTITION psk.audit_log_default DEFAULT;
        partition_name := 'psk.audit_log_default'; action := 'moved'; n := moved;
        RETURN NEXT;
    END IF;

    FOR r IN SELECT c.oid::regclass AS part FROM pg_catalog.pg_inherits i
               JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'psk.audit_log'::regclass
                AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                                 WHERE t.tgrelid = c.oid AND t.tgtype & 32 <> 0
                                   AND t.tgfoid = 'psk.audit_log_is_append_only()'::regprocedure)
    LOOP
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON %s'
            ' FOR EACH STATEMENT EXECUTE FUNCTION psk.audit_log_is_append_only()', r.part);
        partition_name := r.part::text; action := 'made append-only'; n := 0;
        RETURN NEXT;
    END LOOP;

    IF retention > interval '0' THEN
        FOR r IN SELECT p.part FROM psk.audit_partitions() p
                  WHERE p.upper_bound <= pg_catalog.now() - retention
        LOOP
            -- n: the planner's estimate (a count would read the whole week)
            partition_name := r.part::text; action := 'dropped';
            n := (SELECT GREATEST(c.reltuples, 0)::bigint
                    FROM pg_catalog.pg_class c WHERE c.oid = r.part);
            EXECUTE pg_catalog.format('DROP TABLE %s', r.part);
            RETURN NEXT;
        END LOOP;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION @extschema@.psk_audit_maintain(int) FROM PUBLIC;
REVOKE ALL ON FUNCTION psk.audit_partitions() FROM PUBLIC;
REVOKE ALL ON FUNCTION psk.audit_partition_create(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION psk.audit_partition_indexes(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION psk.audit_partition_width() FROM PUBLIC;
REVOKE ALL ON FUNCTION psk.audit_partition_start(timestamptz) FROM PUBLIC;
REVOKE ALL ON TABLE psk.audit_log, psk.audit_log_default FROM PUBLIC;
REVOKE ALL ON SEQUENCE psk.audit_log_id_seq FROM PUBLIC;

DO $do$
DECLARE
    this_week timestamptz := pg_catalog.date_trunc('week', pg_catalog.now(), 'UTC');
    wk timestamptz;
    r record;
BEGIN
    FOR wk IN
        SELECT g FROM pg_catalog.generate_series(
                   LEAST(this_week, (SELECT pg_catalog.date_trunc('week', pg_catalog.min(logged_at), 'UTC')
                                                  FROM psk.audit_log_0_2)),
                   this_week + interval '336 hours', interval '168 hours') g
    LOOP
        PERFORM psk.audit_partition_create(wk);
    END LOOP;
    FOR r IN SELECT i.inhrelid::regclass AS part FROM pg_catalog.pg_inherits i
              WHERE i.inhparent = 'psk.audit_log'::regclass
                AND i.inhrelid <> 'psk.audit_log_default'::regclass
    LOOP
        EXECUTE pg_catalog.format('ALTER EXTENSION psk DROP TABLE %s', r.part);
    END LOOP;
    INSERT INTO psk.audit_log (id, logged_at, action, code, code_type, user_id,
                               user_name, contact_email, tester_name, country,
                               region, note, clearance_id, subject_user_id)
    OVERRIDING SYSTEM VALUE
    SELECT id, logged_at, action, code, code_type, user_id, user_name,
           contact_email, tester_name, country, region, note, clearance_id,
           subject_user_id
      FROM psk.audit_log_0_2 ORDER BY id;
    -- every partition with the index set of this version (those just
    -- made have it; the call changes nothing there)
    FOR r IN SELECT i.inhrelid::regclass AS part FROM pg_catalog.pg_inherits i
              WHERE i.inhparent = 'psk.audit_log'::regclass
    LOOP
        PERFORM psk.audit_partition_indexes(r.part);
    END LOOP;
    SELECT last_value, is_called INTO r FROM psk.audit_log_0_2_id_seq;
    PERFORM pg_catalog.setval('psk.audit_log_id_seq', r.last_value, r.is_called);
END
$do$;

-- Freezing the audit log (freeze.c, after each upkeep of the partitions).
-- The log is insert-only, so a page once frozen never needs a vacuum
-- again, and anti-wraparound autovacuum skips it:
--  * every partition freezes as it fills: autovacuum_freeze_min_age = 0
--    on it, so that each insert-triggered autovacuum freezes the pages it
--    visits and moves the partition's relfrozenxid up (with the default,
--    nothing is frozen until an anti-wraparound pass rereads the week);
--  * once closed, the worker runs VACUUM (FREEZE) on it (no function can
--    run VACUUM), for the rows written since the last autovacuum, and
--    records that with autovacuum_freeze_table_age = 0: done once;
--  * the default partition, whenever it is the table that holds
--    age(datfrozenxid) back (psk.audit_default_to_freeze).

-- Set autovacuum_freeze_min_age = 0 on every partition (the default one
-- left out: its rows are moved away) that lacks it, mostly those just
-- made ahead, still empty.  The partitions it set.
CREATE FUNCTION psk.audit_partitions_freeze_as_filled()
RETURNS SETOF regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT p.part FROM psk.audit_partitions() p
               JOIN pg_catalog.pg_class c ON c.oid = p.part
              WHERE NOT coalesce('autovacuum_freeze_min_age=0' = ANY (c.reloptions), false)
              ORDER BY p.lower_bound
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s SET (autovacuum_freeze_min_age = 0)', r.part);
        RETURN NEXT r.part;
    END LOOP;
END
$$;

-- The partitions to freeze, oldest first: closed (their upper bound a
-- minute past, so that a transaction that began inside it has ended),
-- not frozen yet (no autovacuum_freeze_table_age = 0, the record that
-- psk.audit_partition_frozen leaves), and not about to be dropped by
-- psk.audit_retention.
CREATE FUNCTION psk.audit_partitions_to_freeze()
RETURNS TABLE (part regclass, lower_bound timestamptz, upper_bound timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.part, p.lower_bound, p.upper_bound
      FROM psk.audit_partitions() p
      JOIN pg_catalog.pg_class c ON c.oid = p.part,
           pg_catalog.date_part('epoch', pg_catalog.current_setting('psk.audit_retention')::interval) r
     WHERE p.upper_bound <= pg_catalog.now() - interval '1 minute'
       AND NOT coalesce('autovacuum_freeze_table_age=0' = ANY (c.reloptions), false)
       AND NOT (r > 0 AND p.upper_bound <= pg_catalog.now() - r * interval '1 second')
     ORDER BY p.lower_bound
$$;

-- The record that part was frozen: autovacuum_freeze_table_age = 0 (and
-- autovacuum_freeze_min_age = 0) on it.  Any autovacuum of it is then
-- aggressive and freezes all it visits: a row that still comes in (a late
-- transaction, the upkeep moving rows out of the default partition, a
-- restore's COPY) is frozen by the next one, and the partition stays
-- all-frozen.
CREATE FUNCTION psk.audit_partition_frozen(part regclass)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i
                    WHERE i.inhparent = 'psk.audit_log'::regclass AND i.inhrelid = part) THEN
        RAISE EXCEPTION '% is not a partition of psk.audit_log', part
            USING ERRCODE = 'PK001';
    END IF;
    EXECUTE pg_catalog.format(
        'ALTER TABLE %s SET (autovacuum_freeze_min_age = 0, autovacuum_freeze_table_age = 0)', part);
END
$$;
-- The default partition, when its relfrozenxid is the oldest of the
-- database's tables: it is then what holds age(datfrozenxid) back.  It is
-- normally empty or a few pages (its rows are moved to their week's
-- partition) that no insert-triggered autovacuum visits, so only an
-- anti-wraparound pass would freeze it; the worker's VACUUM (FREEZE) of it
-- reads those few pages and moves its relfrozenxid to the newest there is,
-- and it is not due again until every other table has been vacuumed since.
CREATE FUNCTION psk.audit_default_to_freeze()
RETURNS SETOF regclass
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.oid::regclass FROM pg_catalog.pg_class d
     WHERE d.oid = 'psk.audit_log_default'::regclass
       AND pg_catalog.age(d.relfrozenxid) >=
           (SELECT pg_catalog.max(pg_catalog.age(c.relfrozenxid))
              FROM pg_catalog.pg_class c WHERE c.relkind IN ('r', 'm', 't'))
$$;
REVOKE ALL ON FUNCTION psk.audit_partitions_freeze_as_filled() FROM PUBLIC;
REVOKE ALL ON FUNCTION psk.audit_partitions_to_freeze() FROM PUBLIC;
REVOKE ALL ON FUNCTION psk.audit_partition_frozen(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION psk.audit_default_to_freeze() FROM PUBLIC;

-- (00_schema.sql) Freeze every row a vacuum of psk.codes visits (measured in the soak of
-- make bench-scale, README "Vacuum and transaction IDs"): its pages are
-- rewritten all the time, so with the default (rows older than 50M
-- transactions) no pass froze anything and the table's relfrozenxid never
-- moved, and at full speed (2 transaction IDs a cycle) an aggressive
-- anti-wraparound pass over the whole table would come every few hours.
-- Frozen as it goes, each ordinary pass moves relfrozenxid up to its
-- cutoff, for a little more WAL.
ALTER TABLE psk.codes SET (autovacuum_freeze_min_age = 0);

-- out of the extension first, so that pg_dump forgets them too
ALTER EXTENSION psk DROP SEQUENCE psk.audit_log_0_2_id_seq;
ALTER EXTENSION psk DROP TABLE psk.audit_log_0_2;
DROP TABLE psk.audit_log_0_2;
SELECT pg_catalog.pg_extension_config_dump('psk.audit_log_default', '');
SELECT pg_catalog.pg_extension_config_dump('psk.audit_log_id_seq', '');

-- psk_log gains its last result column, total_is_estimate (readers.c):
-- a new result type, so the function is made anew with the grants the old
-- one had.
CREATE FUNCTION @extschema@.psk_log_0_3(page int DEFAULT 1, page_size int DEFAULT 20,
                                    code text DEFAULT NULL,
                                    user_name text DEFAULT NULL,
                                    action text DEFAULT NULL,
                                    since timestamptz DEFAULT NULL,
                                    until timestamptz DEFAULT NULL)
RETURNS TABLE (total_count bigint, id bigint, logged_at timestamptz,
               action text, code text, user_name text, contact_email text,
               tester_name text, country text, region text, note text,
               total_is_estimate bool)
AS 'MODULE_PATHNAME', 'psk_log'
LANGUAGE C STABLE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET jit = off;
REVOKE ALL ON FUNCTION @extschema@.psk_log_0_3(int, int, text, text, text, timestamptz, timestamptz) FROM PUBLIC;
DO $do$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT a.grantee, a.is_grantable
          FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
         WHERE p.oid = '@extschema@.psk_log(int, int, text, text, text, timestamptz, timestamptz)'::pg_catalog.regprocedure
           AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner
    LOOP
        EXECUTE pg_catalog.format(
            'GRANT EXECUTE ON FUNCTION @extschema@.psk_log_0_3(int, int, text, text, text, timestamptz, timestamptz) TO %s%s',
            CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::pg_catalog.regrole::text END,
            CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END
$do$;
DROP FUNCTION @extschema@.psk_log(int, int, text, text, text, timestamptz, timestamptz);
ALTER FUNCTION @extschema@.psk_log_0_3(int, int, text, text, text, timestamptz, timestamptz) RENAME TO psk_log;
-- The log's readers without JIT (40_readers.sql).
ALTER FUNCTION @extschema@.psk_user_log(text, int) SET jit = off;
ALTER FUNCTION @extschema@.psk_recent_releases(int, text) SET jit = off;

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

-- Where reserves start in the free-code index (extension/free_hint.c).
CREATE FUNCTION psk.free_hints_reset() RETURNS trigger
AS 'MODULE_PATHNAME', 'psk_free_hints_reset'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
CREATE TRIGGER codes_free_hints_reset
    AFTER INSERT OR UPDATE OR TRUNCATE ON psk.codes
    FOR EACH STATEMENT EXECUTE FUNCTION psk.free_hints_reset();
ALTER TABLE psk.codes ENABLE ALWAYS TRIGGER codes_free_hints_reset;

CREATE FUNCTION psk.free_code_hints()
RETURNS TABLE (pool text, freed_at timestamptz, id bigint, generation bigint)
AS 'MODULE_PATHNAME', 'psk_free_code_hints'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION psk.free_hints_reset(), psk.free_code_hints()
    FROM PUBLIC;

-- ==== the log's codes and names, for psk_log's filters (00_schema.sql, audit_index.c) ====

-- The codes and the actors' names of the audit log, one row each, so that
-- psk_log's code filter (a prefix or a suffix) and user_name filter (a
-- substring) find in a small table the few codes or users they mean, then
-- read the log by its code and user indexes (readers.c).  A code is
-- remembered by the audit writer with its ADDED row (audit_index.c); a
-- name, which the writer copies from psk.users, when a user gets it (the
-- trigger on psk.users, in the transaction that sets it: so reserve and
-- release do nothing for it, and never wait on another's insert); rows
-- inserted into the log by SQL, by the statement trigger on it.  Codes and
-- names of partitions dropped past retention stay: a reader's probe for
-- them finds nothing.
CREATE TABLE psk.audit_codes (
    -- "C": a prefix is an index range whatever the database's collation
    code text COLLATE "C" PRIMARY KEY
);
-- the suffix half of the code filter
CREATE INDEX audit_codes_reversed_idx ON psk.audit_codes (pg_catalog.reverse(code));
CREATE TABLE psk.audit_names (
    user_id   bigint NOT NULL, -- 0: rows without a user_id
    user_name text NOT NULL,
    PRIMARY KEY (user_id, user_name)
);

CREATE FUNCTION psk.audit_log_remember() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO psk.audit_codes (code)
    SELECT DISTINCT code FROM new_rows WHERE code IS NOT NULL
    ON CONFLICT DO NOTHING;
    INSERT INTO psk.audit_names (user_id, user_name)
    SELECT DISTINCT coalesce(user_id, 0), user_name FROM new_rows
     WHERE user_name IS NOT NULL
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER audit_log_remember AFTER INSERT ON psk.audit_log
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION psk.audit_log_remember();

CREATE FUNCTION psk.users_remember_name() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO psk.audit_names (user_id, user_name) VALUES (NEW.id, NEW.user_name)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_remember_name AFTER INSERT OR UPDATE OF user_name ON psk.users
    FOR EACH ROW EXECUTE FUNCTION psk.users_remember_name();
REVOKE ALL ON psk.audit_codes, psk.audit_names FROM PUBLIC;
REVOKE ALL ON FUNCTION psk.audit_log_remember(), psk.users_remember_name() FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('psk.audit_codes', '');
SELECT pg_catalog.pg_extension_config_dump('psk.audit_names', '');
-- what the log holds already (the trigger only sees rows inserted from now)
INSERT INTO psk.audit_codes (code)
SELECT DISTINCT code FROM psk.audit_log WHERE code IS NOT NULL;
INSERT INTO psk.audit_names (user_id, user_name)
SELECT DISTINCT coalesce(user_id, 0), user_name FROM psk.audit_log
 WHERE user_name IS NOT NULL
UNION
SELECT id, user_name FROM psk.users;

-- The holder's cycle and the HTTP routes pin their search_path in C
-- (search_path.c) rather than with a SET clause (10_engine.sql).
ALTER FUNCTION @extschema@.psk_reserve(text, text, text, text, int, text) RESET search_path;
ALTER FUNCTION @extschema@.psk_confirm(text, text, uuid) RESET search_path;
ALTER FUNCTION @extschema@.psk_renew(text, text, uuid) RESET search_path;
ALTER FUNCTION @extschema@.psk_release(text, text, text, text) RESET search_path;
ALTER FUNCTION psk.http_login(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_me(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_logout(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_reserve(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_confirm(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_renew(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_release(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_mark_non_usable(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_comment(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_my_codes(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_user_logs(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_recent_releases(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_user_countries(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_admin_countries(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_count(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_create_user(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_users(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_update_user(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_delete_user(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_add_codes(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_codes_all(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_codes(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_overdue(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_delete_code(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_disassociate(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_admin_mark_non_usable(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_restore(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_logs(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_healthz(text, text, jsonb) RESET search_path;
ALTER FUNCTION psk.http_codes_import(text, text, jsonb) RESET search_path;

-- psk.codes.holder_id without its foreign key (holders.c): every call that
-- sets it has the user's row locked first, so the key's check on every
-- reserve could never fail; the users side is a trigger (20_accounts.sql).
ALTER TABLE psk.codes DROP CONSTRAINT codes_holder_id_fkey;
CREATE FUNCTION psk.users_keep_holders() RETURNS trigger
AS 'MODULE_PATHNAME', 'psk_users_keep_holders'
LANGUAGE C SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION psk.users_keep_holders() FROM PUBLIC;
CREATE TRIGGER users_keep_holders BEFORE DELETE OR UPDATE OF id ON psk.users
    FOR EACH ROW EXECUTE FUNCTION psk.users_keep_holders();
