-- Where reserves start in the free-code index (extension/free_hint.c).
-- psk's own changes of a code lower the hint of its pool themselves; plain
-- SQL on psk.codes (psk_add_codes, the CSV import, the migration, a
-- superuser's INSERT, UPDATE, COPY or TRUNCATE) may put an entry anywhere
-- in the index, and resets the database's hints.  A statement trigger fires
-- for SQL statements only, not for psk's row updates: the hot path pays
-- nothing.  ENABLE ALWAYS: also under session_replication_role = replica
-- (a logical replication subscriber, pg_restore --disable-triggers aside).
CREATE FUNCTION psk.free_hints_reset() RETURNS trigger
AS 'MODULE_PATHNAME', 'psk_free_hints_reset'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
CREATE TRIGGER codes_free_hints_reset
    AFTER INSERT OR UPDATE OR TRUNCATE ON psk.codes
    FOR EACH STATEMENT EXECUTE FUNCTION psk.free_hints_reset();
ALTER TABLE psk.codes ENABLE ALWAYS TRIGGER codes_free_hints_reset;

-- The hints of this database, for monitoring: no row without psk in
-- shared_preload_libraries; id NULL: the pool's head.
CREATE FUNCTION psk.free_code_hints()
RETURNS TABLE (pool text, freed_at timestamptz, id bigint, generation bigint)
AS 'MODULE_PATHNAME', 'psk_free_code_hints'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
