-- The minimal cycle's own tables (run m of make bench, bench/min_cycle.sql):
-- what a reserve + release cycle needs and nothing more.  A codes table with
-- a primary key and one partial index of the free codes, a log table with a
-- primary key only; the same columns as psk.codes and psk.audit_log, and the
-- same codes as the psk pools (copied from psk.codes after its load).
--
-- Schema minimal_indexed (run mi): the same tables with the indexes of
-- psk.codes and of an audit partition, copied from the installed extension,
-- so that mi is m plus what psk's readers need indexed and nothing else (no
-- checks, no triggers, no partitions, no function calls): c/mi is what psk
-- costs beyond its indexes, mi/m what the indexes cost.  The cycle's
-- statements name their tables unqualified (search_path picks the schema).
\set QUIET on
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS minimal, minimal_indexed CASCADE;
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
CREATE SCHEMA minimal_indexed;
CREATE TABLE minimal_indexed.codes (LIKE minimal.codes INCLUDING DEFAULTS INCLUDING IDENTITY)
    WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
          autovacuum_vacuum_cost_delay = 0, vacuum_index_cleanup = on);
CREATE TABLE minimal_indexed.log (LIKE minimal.log INCLUDING DEFAULTS INCLUDING IDENTITY);
-- psk.codes's indexes, and the log's as psk makes them on each partition,
-- before the load (as psk's codes are added)
DO $$
DECLARE
    def text;
BEGIN
    FOR def IN SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'psk.codes'::regclass
    LOOP
        EXECUTE regexp_replace(def, ' ON psk\.codes ', ' ON minimal_indexed.codes ');
    END LOOP;
END $$;
SELECT psk.audit_partition_indexes('minimal_indexed.log');
INSERT INTO minimal_indexed.codes (code, pool) SELECT code, pool FROM psk.codes ORDER BY id;
VACUUM ANALYZE minimal_indexed.codes;
