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

-- The pools, code statuses and audit actions as the C code has them
-- (extension/lists.h).  The CHECK constraints below spell them out again;
-- sql/lists.sql compares the two.
CREATE FUNCTION psk.lists(OUT list text, OUT n int, OUT name text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'psk_lists'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION psk.lists() FROM PUBLIC;

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
    -- the pools, statuses and actions of these CHECKs: as psk.lists()
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
    -- a psk.users id, kept so without a foreign key (holders.c): every call
    -- that sets it has that user's row locked first, and the trigger on
    -- psk.users refuses to delete a user who holds codes
    holder_id         bigint,
    tester_name       text,
    reserved_at       timestamptz,
    expires_at        timestamptz,
    confirmed_at      timestamptz,
    reservation_token uuid,
    released_at       timestamptz,
    freed_at          timestamptz,
    note              text,
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- the CSV import that added the code (NULL: added otherwise)
    batch_id          uuid,
    CONSTRAINT codes_held_has_holder CHECK (
        CASE WHEN status IN ('RESERVED', 'IN_USE')
             THEN holder_id IS NOT NULL AND tester_name IS NOT NULL
                  AND reservation_token IS NOT NULL AND reserved_at IS NOT NULL
             ELSE holder_id IS NULL AND tester_name IS NULL AND reservation_token IS NULL
                  AND reserved_at IS NULL AND expires_at IS NULL AND confirmed_at IS NULL
        END),
    CONSTRAINT codes_in_use_is_confirmed CHECK ((status = 'IN_USE') = (confirmed_at IS NOT NULL)),
    -- a hold that ends: a reservation (psk.reservation_ttl) or a code in use
    -- (psk.in_use_ttl), renewed by its holder (psk_renew)
    CONSTRAINT codes_expiry_after_reserve CHECK (expires_at IS NULL OR (status IN ('RESERVED', 'IN_USE') AND expires_at > reserved_at))
) WITH (fillfactor = 80);

-- Reserve: the free codes of one pool in least-recently-used order.  Only
-- free rows are in it, so its size and the cost of taking its first entry do
-- not grow with the number of held codes.
CREATE INDEX codes_free_lru_idx ON psk.codes (pool, freed_at NULLS FIRST, id)
    WHERE status = 'CAN_BE_USED';
-- psk_my_codes, psk_users, psk_delete_user: the codes a user holds.
CREATE INDEX codes_holder_idx ON psk.codes (holder_id) WHERE holder_id IS NOT NULL;
-- psk_expire_reservations: the holds that end (RESERVED and IN_USE codes
-- with an expires_at: only held codes have one) and nothing else.
CREATE INDEX codes_expires_idx ON psk.codes (expires_at)
    WHERE expires_at IS NOT NULL;
-- psk_overdue: the held codes by how long they have been held, oldest
-- first, so that a report of long holds reads only those.
CREATE INDEX codes_held_since_idx ON psk.codes (reserved_at, id)
    WHERE status IN ('RESERVED', 'IN_USE');

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

-- Freeze every row a vacuum of psk.codes visits (measured in the soak of
-- make bench-scale, README "Vacuum and transaction IDs"): its pages are
-- rewritten all the time, so with the default (rows older than 50M
-- transactions) no pass froze anything and the table's relfrozenxid never
-- moved, and at full speed (2 transaction IDs a cycle) an aggressive
-- anti-wraparound pass over the whole table would come every few hours.
-- Frozen as it goes, each ordinary pass moves relfrozenxid up to its
-- cutoff, for a little more WAL.
ALTER TABLE psk.codes SET (autovacuum_freeze_min_age = 0);

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
-- Rows past every partition (none made yet, or the worker stopped for
-- weeks) land here rather than failing the change that wrote them;
-- psk_audit_maintain moves them into their week's partition.
--
-- Indexes are made on each partition, not on the parent: a partitioned
-- index of a member table of the extension would be made again on every
-- partition that a restore attaches, and pg_dump's own copy of it would
-- then fail.  Every partition has the same ones, the default one included
-- (psk.audit_partition_indexes, 45_audit_partitions.sql).
CREATE TABLE psk.audit_log_default PARTITION OF psk.audit_log DEFAULT;

-- Reserves that give a request_id (psk_reserve, the HTTP Idempotency-Key):
-- what the first successful call of each (user, request_id) returned, so
-- that a retry returns the same rows and reserves nothing.  Written in the
-- reserve's own transaction (a failed call leaves no row), under the
-- user's row lock, so that two calls with one request_id reserve once.
-- Remembered 24 hours from made_at; the expiry worker (and the sweep,
-- psk_expire_reservations) deletes older rows in batches.  No foreign key
-- to psk.users: its check would run a statement on every such reserve,
-- and a deleted user's rows age out like any other.
CREATE TABLE psk.reserve_requests (
    user_id     bigint NOT NULL,
    request_id  text NOT NULL CHECK (pg_catalog.length(request_id) BETWEEN 1 AND 255),
    made_at     timestamptz NOT NULL,
    -- the arguments, to refuse the same request_id with other ones:
    -- country as the country's name, code_type as the pool's (NULL: not given)
    tester_name text NOT NULL,
    country     text,
    code_type   text,
    how_many    int NOT NULL CHECK (how_many BETWEEN 1 AND 100),
    -- the rows returned, one array element per code
    codes       text[] NOT NULL,
    code_types  text[] NOT NULL,
    tokens      uuid[] NOT NULL,
    reserved_at timestamptz NOT NULL,
    expires_at  timestamptz,
    PRIMARY KEY (user_id, request_id)
);
CREATE INDEX reserve_requests_made_at_idx ON psk.reserve_requests (made_at);

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
-- Row triggers are cloned onto every partition; a statement trigger is
-- not, and TRUNCATE of a partition by name skips the parent's: each
-- partition gets its own (psk_audit_maintain adds it to any that lacks it).
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON psk.audit_log_default
    FOR EACH STATEMENT EXECUTE FUNCTION psk.audit_log_is_append_only();

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
