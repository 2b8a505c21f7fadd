-- Backups.  pg_dump leaves out the rows of an extension's member tables,
-- since CREATE EXTENSION makes those tables, unless the extension marks them
-- with pg_extension_config_dump: unmarked, a dump of a PSK database restores
-- an empty PSK.  Every table of schema psk holds state that must survive a
-- restore (sessions too, so that logged-in clients stay logged in, and
-- login failures, so that a restore does not lift a lockout), and so does
-- the position of every identity sequence, so that ids made after a restore
-- never collide with restored ones.  Marked whole (no filter).  Not
-- psk.login_slots: its rows are the install script's own, made again by
-- the CREATE EXTENSION of a restore; nor psk.login_key, which a restore
-- makes anew (05_accounts_schema.sql).
DO $do$
DECLARE
    r regclass;
BEGIN
    FOR r IN
        SELECT c.oid FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'psk'::regnamespace AND c.relkind IN ('r', 'S')
           AND c.relname NOT IN ('login_slots', 'login_key')
         ORDER BY c.relname
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(r, '');
    END LOOP;
END
$do$;
