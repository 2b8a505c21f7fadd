-- The HTTP API (psk-shim, shim/): one function per route.
--
-- The shim calls exactly one of these per request,
--     SELECT psk.http_<route>(token, body, query)
-- with the bearer token, the request body as text (JSON; the shim turns the
-- login form into JSON) and the query string as a JSON object of strings
-- (plus a path parameter such as {code}); each returns the reply body,
-- compact JSON.  Errors are the psk_* SQLSTATEs, which the shim maps to
-- HTTP statuses; a body that is not JSON raises 22P02, which the shim
-- answers as invalid_input.
--
-- Every route is one row of the HTTP adapter's table (http_routes.c): the
-- role it needs, the fields it takes and its handler.  All of them are the
-- one C function psk_http, which finds its row by the name it is called by
-- (http_<route>) and checks, in the contract's order, the token
-- (unauthorized), the role (not_allowed), the body and the fields
-- (invalid_input), before the handler calls the engine (http.c).  They are
-- SECURITY DEFINER without a SET clause: psk_http pins the search_path in C
-- for the call (search_path.c), as the holder's cycle does.

-- POST /auth/login {username, password}, from JSON or the OAuth2 form
CREATE FUNCTION psk.http_login(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- GET or POST /auth/me
CREATE FUNCTION psk.http_me(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- POST /auth/logout
CREATE FUNCTION psk.http_logout(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- POST /users/reserve {tester_name, country?, code_type?, how_many?}, and the
-- header Idempotency-Key (in query, under that name)
CREATE FUNCTION psk.http_reserve(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- POST /users/confirm {code, reservation_token}
CREATE FUNCTION psk.http_confirm(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- POST /users/renew {code, reservation_token}
CREATE FUNCTION psk.http_renew(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- POST /users/release {code, clearance_id?, note?}
CREATE FUNCTION psk.http_release(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- POST /users/mark-non-usable {code, reason}
CREATE FUNCTION psk.http_mark_non_usable(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- POST /users/comment {code, comment}
CREATE FUNCTION psk.http_comment(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- GET /users/my
CREATE FUNCTION psk.http_my_codes(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- GET /users/logs
CREATE FUNCTION psk.http_user_logs(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- GET /users/recent-releases ?n=5&code_type=
CREATE FUNCTION psk.http_recent_releases(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- GET /users/countries
CREATE FUNCTION psk.http_user_countries(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- GET /admin/countries
CREATE FUNCTION psk.http_admin_countries(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- GET /admin/count
CREATE FUNCTION psk.http_count(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- POST /admin/users/create {team_name, user_name, contact_email, password, is_admin?, pool?}
CREATE FUNCTION psk.http_create_user(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- GET /admin/users/get-users
CREATE FUNCTION psk.http_users(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- PATCH /admin/users/update {id, ...}
CREATE FUNCTION psk.http_update_user(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- DELETE /admin/users/delete {id} or ?id=
CREATE FUNCTION psk.http_delete_user(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- POST /admin/codes/add {code_type, countries?, codes}
CREATE FUNCTION psk.http_add_codes(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- GET /admin/codes/all
CREATE FUNCTION psk.http_codes_all(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- GET /admin/codes ?code_type&status&after&page_size
CREATE FUNCTION psk.http_codes(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- GET /admin/codes/overdue ?older_than&code_type
CREATE FUNCTION psk.http_overdue(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- DELETE /admin/codes/{code}
CREATE FUNCTION psk.http_delete_code(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- POST /admin/codes/disassociate {code, note?}
CREATE FUNCTION psk.http_disassociate(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- POST /admin/codes/mark-non-usable {code, reason}
CREATE FUNCTION psk.http_admin_mark_non_usable(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- POST /admin/codes/restore {code}
CREATE FUNCTION psk.http_restore(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- GET /admin/logs ?page&page_size&code&user_name&action&start_date&end_date
CREATE FUNCTION psk.http_logs(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;

-- GET /healthz
CREATE FUNCTION psk.http_healthz(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;
