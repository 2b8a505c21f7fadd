-- Accounts, regions and countries (users.c, places.c).

CREATE FUNCTION @extschema@.psk_create_user(admin_email text, team_name text,
                                            user_name text, email text,
                                            password text,
                                            is_admin bool DEFAULT false,
                                            pool text DEFAULT NULL)
RETURNS TABLE (id bigint)
AS 'MODULE_PATHNAME', 'psk_create_user'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_add_region(admin_email text, name text)
RETURNS TABLE (id bigint, name text)
AS 'MODULE_PATHNAME', 'psk_add_region'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_add_country(admin_email text, name text,
                                            region text)
RETURNS TABLE (id bigint, name text)
AS 'MODULE_PATHNAME', 'psk_add_country'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
