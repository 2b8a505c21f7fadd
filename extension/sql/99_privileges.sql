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
