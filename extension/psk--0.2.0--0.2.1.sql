-- psk 0.2.0 -> 0.2.1
--
-- Backups that restore: a pg_dump of a 0.2.0 database held none of psk's
-- rows (its tables were not marked for dumping).  This update marks every
-- table and identity sequence of schema psk, and gives psk.login_failures
-- the primary key that logical replication needs.  No C function changes:
-- a server running the 0.2.0 library runs 0.2.1 as it is.
\echo Use "ALTER EXTENSION psk UPDATE TO '0.2.1'" to load this file. \quit

ALTER TABLE psk.login_failures
    ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
REVOKE ALL ON SEQUENCE psk.login_failures_id_seq FROM PUBLIC;

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
