-- Filling the pools and changing single codes (codes.c).

CREATE FUNCTION @extschema@.psk_add_codes(admin_email text, code_type text,
                                          codes text[],
                                          countries text[] DEFAULT NULL)
RETURNS TABLE (code text, outcome text)
AS 'MODULE_PATHNAME', 'psk_add_codes'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
