-- Filling the pools and changing single codes (codes.c).

CREATE FUNCTION @extschema@.psk_add_codes(admin_email text, code_type text,
                                          codes text[],
                                          countries text[] DEFAULT NULL)
RETURNS TABLE (code text, outcome text)
AS 'MODULE_PATHNAME', 'psk_add_codes'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_mark_non_usable(user_email text, code text,
                                                reason text)
RETURNS TABLE (code text, status text)
AS 'MODULE_PATHNAME', 'psk_mark_non_usable'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_disassociate(admin_email text, code text,
                                             note text DEFAULT NULL)
RETURNS TABLE (code text, previous_holder text)
AS 'MODULE_PATHNAME', 'psk_disassociate'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_restore(admin_email text, code text)
RETURNS TABLE (code text, status text)
AS 'MODULE_PATHNAME', 'psk_restore'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_comment(user_email text, code text,
                                        comment text)
RETURNS TABLE (code text, note text)
AS 'MODULE_PATHNAME', 'psk_comment'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_delete_code(admin_email text, code text)
RETURNS TABLE (code text)
AS 'MODULE_PATHNAME', 'psk_delete_code'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
