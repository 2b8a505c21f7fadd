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

CREATE FUNCTION @extschema@.psk_update_user(admin_email text, id bigint,
                                            team_name text DEFAULT NULL,
                                            user_name text DEFAULT NULL,
                                            email text DEFAULT NULL,
                                            password text DEFAULT NULL,
                                            is_admin bool DEFAULT NULL,
                                            pool text DEFAULT NULL)
RETURNS TABLE (id bigint)
AS 'MODULE_PATHNAME', 'psk_update_user'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_delete_user(admin_email text, id bigint)
RETURNS TABLE (id bigint)
AS 'MODULE_PATHNAME', 'psk_delete_user'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- A user who holds codes is not deleted, nor its id changed (holders.c):
-- what the holder_id foreign key of psk.codes checked on this side, in a
-- snapshot taken now, with its error (23503).  SECURITY DEFINER as the
-- key's check was: whoever may delete a user, the codes are looked at.
CREATE FUNCTION psk.users_keep_holders() RETURNS trigger
AS 'MODULE_PATHNAME', 'psk_users_keep_holders'
LANGUAGE C SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
CREATE TRIGGER users_keep_holders BEFORE DELETE OR UPDATE OF id ON psk.users
    FOR EACH ROW EXECUTE FUNCTION psk.users_keep_holders();

CREATE FUNCTION @extschema@.psk_users()
RETURNS TABLE (id bigint, user_name text, team_name text, contact_email text,
               is_admin bool, pool text, reserved_count int,
               reserved_codes text[])
AS 'MODULE_PATHNAME', 'psk_users'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- Sessions (sessions.c).  psk_login is VOLATILE and writes even when it
-- fails: a failed login is recorded by a background worker, in a
-- transaction of its own (login_guard.c).

CREATE FUNCTION @extschema@.psk_login(email text, password text)
RETURNS TABLE (access_token text, token_type text, expires_in int)
AS 'MODULE_PATHNAME', 'psk_login'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_session_user(access_token text)
RETURNS TABLE (id bigint, user_name text, team_name text, contact_email text,
               is_admin bool, pool text)
AS 'MODULE_PATHNAME', 'psk_session_user'
LANGUAGE C STABLE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.psk_logout(access_token text)
RETURNS TABLE (revoked bool)
AS 'MODULE_PATHNAME', 'psk_logout'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- The hash a login without an account is checked against (sessions.c),
-- for sql/passwords.sql.
CREATE FUNCTION psk.login_dummy_hash() RETURNS text
AS 'MODULE_PATHNAME', 'psk_login_dummy_hash'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION psk.login_dummy_hash() FROM PUBLIC;
