-- The holder's cycle and expiry (reserve.c, confirm.c, renew.c, release.c,
-- expiry.c).
--
-- Every psk_* function runs as the extension's owner with a pinned
-- search_path (SECURITY DEFINER, as PostgreSQL's docs advise), so callers
-- need EXECUTE on the function and no privilege on the tables.  The four
-- of the holder's cycle pin it in C (search_path.c: pg_catalog alone, for
-- the call) rather than with a SET clause, whose save and restore of the
-- settings cost more than the rest of the call's bookkeeping.

CREATE FUNCTION @extschema@.psk_reserve(user_email text, tester_name text,
                                        country text DEFAULT NULL,
                                        code_type text DEFAULT NULL,
                                        how_many int DEFAULT 1,
                                        request_id text DEFAULT NULL)
RETURNS TABLE (code text, code_type text, reservation_token uuid,
               reserved_at timestamptz, expires_at timestamptz)
AS 'MODULE_PATHNAME', 'psk_reserve'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

CREATE FUNCTION @extschema@.psk_confirm(user_email text, code text,
                                        reservation_token uuid)
RETURNS TABLE (code text, status text, confirmed_at timestamptz)
AS 'MODULE_PATHNAME', 'psk_confirm'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

CREATE FUNCTION @extschema@.psk_renew(user_email text, code text,
                                      reservation_token uuid)
RETURNS TABLE (code text, status text, expires_at timestamptz)
AS 'MODULE_PATHNAME', 'psk_renew'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

CREATE FUNCTION @extschema@.psk_release(user_email text, code text,
                                        clearance_id text DEFAULT NULL,
                                        note text DEFAULT NULL)
RETURNS TABLE (code text, released_at timestamptz)
AS 'MODULE_PATHNAME', 'psk_release'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

CREATE FUNCTION @extschema@.psk_expire_reservations()
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'psk_expire_reservations'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
