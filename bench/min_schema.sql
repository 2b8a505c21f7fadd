-- The minimal cycle's own tables (run m of make bench, bench/min_cycle.sql):
-- what a reserve + release cycle needs and nothing more.  A codes table with
-- a primary key and one partial index of the free codes, a log table with a
-- primary key only; the same columns as psk.codes and psk.audit_log, and the
-- same codes as the psk pools (copied from psk.codes after its load).
\set QUIET on
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS minimal CASCADE;
CREATE SCHEMA minimal;
CREATE TABLE minimal.codes (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code              text NOT NULL,
    pool              text NOT NULL,
    status            text NOT NULL DEFAULT 'CAN_BE_USED',
    holder_id         bigint,
    tester_name       text,
    reserved_at       timestamptz,
    expires_at        timestamptz,
    confirmed_at      timestamptz,
    reservation_token uuid,
    released_at       timestamptz,
    freed_at          timestamptz,
    note              text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    batch_id          uuid
) WITH (fillfactor = 80);
CREATE INDEX codes_free_idx ON minimal.codes (pool, freed_at NULLS FIRST, id)
    WHERE status = 'CAN_BE_USED';
-- as psk.codes: autovacuum soon after the dead free-index entries pile up
ALTER TABLE minimal.codes SET (autovacuum_vacuum_scale_factor = 0,
                               autovacuum_vacuum_threshold = 5000,
                               autovacuum_vacuum_cost_delay = 0,
                               vacuum_index_cleanup = on);
CREATE TABLE minimal.log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    logged_at       timestamptz NOT NULL DEFAULT now(),
    action          text NOT NULL,
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
    subject_user_id bigint
);
INSERT INTO minimal.codes (code, pool) SELECT code, pool FROM psk.codes ORDER BY id;
VACUUM ANALYZE minimal.codes;
