-- Moving from the old service (migrate.c): its regions, countries, users,
-- codes and log, into an empty psk, in one transaction.  Run by a
-- superuser in the old database after CREATE EXTENSION psk CASCADE; not
-- SECURITY DEFINER and granted to no one (99_privileges.sql revokes it
-- from PUBLIC; README's grant to psk_app leaves it out).
CREATE FUNCTION @extschema@.psk_migrate_legacy(source_schema text DEFAULT 'public')
RETURNS TABLE (item text, n bigint)
AS 'MODULE_PATHNAME', 'psk_migrate_legacy'
LANGUAGE C VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp;
