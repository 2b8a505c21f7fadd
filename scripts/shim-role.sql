-- psk_shim: the role psk-shim connects as.  It may EXECUTE the HTTP route
-- functions (psk.http_*, SECURITY DEFINER) and nothing else.  Safe to run
-- again (make run does, after every start).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'psk_shim') THEN
        CREATE ROLE psk_shim LOGIN;
    END IF;
END
$$;
-- tokens and passwords are bind parameters: never in the server log
ALTER ROLE psk_shim SET log_parameter_max_length = 0;
ALTER ROLE psk_shim SET log_parameter_max_length_on_error = 0;
GRANT USAGE ON SCHEMA psk TO psk_shim;
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = 'psk'::regnamespace AND p.proname LIKE 'http\_%'
                AND p.prosecdef
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO psk_shim', f);
    END LOOP;
END
$$;
-- GET /metrics and /ready on the admin port: the database's metrics
-- (psk.metrics(), SECURITY DEFINER), a grant of its own (not an http_*).
GRANT EXECUTE ON FUNCTION psk.metrics() TO psk_shim;
