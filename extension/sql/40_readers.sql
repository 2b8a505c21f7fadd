-- Reading codes, counts, countries and the audit trail (readers.c).
-- The readers of the log run without JIT: their statements stop after a
-- page of rows, but their plans over a big partitioned log cost more than
-- jit_above_cost, and compiling them took 130 ms of a 155 ms first page
-- (5M rows).
-- psk_my_codes and psk_user_log act for a user; the others have no acting
-- user and are governed by EXECUTE privileges (see README.md).

CREATE FUNCTION @extschema@.psk_my_codes(user_email text)
RETURNS TABLE (code text, code_type text, status text, tester_name text,
               reserved_at timestamptz, expires_at timestamptz,
               reservation_token uuid, note text, countries text[],
               regions text[])
AS 'MODULE_PATHNAME', 'psk_my_codes'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_recent_releases(n int DEFAULT 5,
                                                code_type text DEFAULT NULL)
RETURNS TABLE (code text, code_type text, released_at timestamptz,
               released_by text, note text)
AS 'MODULE_PATHNAME', 'psk_recent_releases'
LANGUAGE C STABLE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET jit = off;

CREATE FUNCTION @extschema@.psk_user_log(user_email text, n int DEFAULT 20)
RETURNS TABLE (id bigint, logged_at timestamptz, action text, code text,
               tester_name text, country text, region text, note text)
AS 'MODULE_PATHNAME', 'psk_user_log'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET jit = off;

CREATE FUNCTION @extschema@.psk_log(page int DEFAULT 1, page_size int DEFAULT 20,
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

CREATE FUNCTION @extschema@.psk_counts()
RETURNS TABLE (code_type text, status text, n bigint)
AS 'MODULE_PATHNAME', 'psk_counts'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_codes(code_type text DEFAULT NULL,
                                      status text DEFAULT NULL,
                                      after text DEFAULT NULL,
                                      page_size int DEFAULT 1000)
RETURNS TABLE (code text, code_type text, status text, holder text,
               tester_name text, reserved_at timestamptz,
               expires_at timestamptz, released_at timestamptz, note text,
               countries text[])
AS 'MODULE_PATHNAME', 'psk_codes'
LANGUAGE C STABLE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_countries()
RETURNS TABLE (id bigint, country text, region text)
AS 'MODULE_PATHNAME', 'psk_countries'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_overdue(older_than interval DEFAULT '7 days',
                                        code_type text DEFAULT NULL)
RETURNS TABLE (code text, code_type text, status text, holder text,
               tester_name text, reserved_at timestamptz,
               expires_at timestamptz, held_for interval)
AS 'MODULE_PATHNAME', 'psk_overdue'
LANGUAGE C STABLE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
