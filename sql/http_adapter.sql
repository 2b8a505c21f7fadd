-- The HTTP adapter (http.c, http_routes.c): the rules every route shares,
-- written once.  The order of the checks (token, role, body, fields), each
-- field type refused with its message, a field given in the body and the
-- query string, and the compact JSON of the replies (escaping, times).
\i test/fixtures/reset.sql
\set VERBOSITY terse

SELECT FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['OSV-1', 'OSV-2'], ARRAY['UK']);
SELECT access_token AS osv FROM psk_login('osv@example.com', 'Rdl@12345') \gset
SELECT access_token AS admin FROM psk_login('admin@example.com', 'Rdl@12345') \gset

-- A route's reply with its times and tokens masked, or its error as
-- 'SQLSTATE: message'; a refused call must leave test.state() as it was.
CREATE FUNCTION test.call(route text, token text, body text, query jsonb DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    before text := test.state();
    reply text;
BEGIN
    EXECUTE format('SELECT psk.%I($1, $2, $3)::text', 'http_' || route)
       INTO reply USING token, body, query;
    RETURN regexp_replace(regexp_replace(reply,
               '"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d(:\d\d)?"', '"<time>"', 'g'),
               '"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"', '"<uuid>"', 'g');
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM ||
           CASE WHEN test.state() <> before THEN ' [STATE CHANGED]' ELSE '' END;
END
$$;

-- Every route is the one C entry point; the PL/pgSQL helpers are gone.
SELECT l.lanname, p.prosrc, p.prosecdef, p.proconfig, count(*) AS routes
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'psk'::regnamespace AND p.proname LIKE 'http\_%'
 GROUP BY 1, 2, 3, 4;
SELECT to_regtype('psk.http_caller') AS http_caller,
       to_regprocedure('psk.http_body(text)') AS http_body;

--
-- Who-may first: the token, then the role, whatever the body or query
--
SELECT test.call('restore', 'nope', '{nope', '{"code": "x"}');
SELECT test.call('restore', :'osv', '{nope');
SELECT test.call('restore', :'osv', '[1]');
SELECT test.call('restore', :'osv', '{"code": 1}', '{"code": "x"}');
SELECT test.call('update_user', :'osv', '{"id": "x"}');
SELECT test.call('codes', :'osv', NULL, '{"page_size": "many"}');
SELECT test.call('logs', :'osv', NULL, '{"start_date": "yesterday"}');
SELECT test.call('add_codes', :'osv', '{"codes": "OSV-3"}');
SELECT test.call('comment', :'admin', '{"code": 1}');
SELECT test.call('recent_releases', :'admin', NULL, '{"n": "x"}');
SELECT test.call('user_logs', :'admin', '{nope');
-- a route without body fields does not read the body
SELECT test.call('count', :'admin', '{nope', '{"x": "y"}');
SELECT test.call('healthz', NULL, '{nope');

--
-- The body: JSON (22P02), an object (PK007); none, blank and {} are empty
--
SELECT test.call('restore', :'admin', '{nope');
SELECT test.call('restore', :'admin', '[1]');
SELECT test.call('restore', :'admin', '"x"');
SELECT test.call('restore', :'admin', E' \n');
SELECT test.call('restore', :'admin', '{}');

--
-- Each type, refused with its message
--
-- text: a JSON string
SELECT test.call('comment', :'osv', '{"code": 1, "comment": "c"}');
SELECT test.call('comment', :'osv', '{"code": "OSV-1", "comment": ["c"]}');
SELECT test.call('login', NULL, '{"username": {}, "password": "p"}');
-- integers: a JSON number without fraction, or digits in the query string,
-- within the field's range
SELECT test.call('update_user', :'admin', '{"id": "2"}');
SELECT test.call('update_user', :'admin', '{"id": 2.5}');
SELECT test.call('update_user', :'admin', '{"id": 0}');
SELECT test.call('update_user', :'admin', '{"id": 1e30}');
SELECT test.call('delete_user', :'admin', NULL, '{"id": "two"}');
SELECT test.call('delete_user', :'admin', NULL, '{"id": "-1"}');
SELECT test.call('delete_user', :'admin', NULL, '{"id": " 2"}');
SELECT test.call('codes', :'admin', NULL, '{"page_size": "3000000000"}');
SELECT test.call('logs', :'admin', NULL, '{"page": "1.0"}');
-- booleans: true or false, in the body as JSON, in the query string as text
SELECT test.call('update_user', :'admin', '{"id": 2, "is_admin": "true"}');
SELECT test.call('update_user', :'admin', '{"id": 2, "is_admin": 1}');
SELECT test.call('update_user', :'admin', '{"id": 2}', '{"is_admin": "yes"}');
SELECT test.call('update_user', :'admin', '{"id": 2}', '{"is_admin": "TRUE"}');
-- UUIDs
SELECT test.call('confirm', :'osv', '{"code": "OSV-1", "reservation_token": 7}');
SELECT test.call('confirm', :'osv', '{"code": "OSV-1", "reservation_token": "not-a-uuid"}');
-- ISO 8601 dates and timestamps
SELECT test.call('logs', :'admin', NULL, '{"start_date": "yesterday"}');
SELECT test.call('logs', :'admin', NULL, '{"start_date": "2026-13-01"}');
SELECT test.call('logs', :'admin', NULL, '{"start_date": "2026-02-30T10:00"}');
SELECT test.call('logs', :'admin', NULL, '{"start_date": "0000-01-01"}');
SELECT test.call('logs', :'admin', NULL, '{"end_date": "2026-01-01T25:00Z"}');
SELECT test.call('logs', :'admin', NULL, '{"end_date": "2026-01-01 10:00+99"}');
SELECT test.call('logs', :'admin', NULL, '{"start_date": "2026-01-02", "end_date": "2026-01-01"}');
SELECT test.call('logs', :'admin', NULL, '{"start_date": "2026-01-01T10:00:00.5+05:30", "end_date": "2026-01-01"}');
-- text arrays: only in the body, every element a string
SELECT test.call('add_codes', :'admin', '{"code_type": "OSV", "codes": "OSV-3"}');
SELECT test.call('add_codes', :'admin', '{"code_type": "OSV", "codes": ["OSV-3", 4]}');
SELECT test.call('add_codes', :'admin', '{"code_type": "OSV", "codes": ["OSV-3"], "countries": [null]}');
SELECT test.call('add_codes', :'admin', '{"code_type": "OSV", "codes": []}', '{"codes": "ignored"}');
-- the first bad field in the route's order is the one named
SELECT test.call('create_user', :'admin', '{"pool": 1, "is_admin": "no", "team_name": 5}');

--
-- A field in both the body and the query string (null and "" count too);
-- an empty query value is absent
--
SELECT test.call('restore', :'admin', '{"code": "OSV-1"}', '{"code": "OSV-2"}');
SELECT test.call('restore', :'admin', '{"code": null}', '{"code": "OSV-2"}');
SELECT test.call('restore', :'admin', '{"code": "OSV-1"}', '{"code": ""}');
SELECT test.call('delete_user', :'admin', '{}', '{"id": ""}');
SELECT test.call('login', NULL, '{"username": "osv@example.com"}');
-- user routes take the body only
SELECT test.call('comment', :'osv', '{"code": "OSV-1", "comment": "c"}', '{"code": "OSV-2"}');

--
-- Replies: compact JSON, strings escaped as JSON wants (quote, backslash,
-- control characters), non-ASCII as UTF-8; NULL as null
--
SELECT test.call('create_user', :'admin',
                 json_build_object('team_name', 'Zeus', 'user_name', E'q"b\\s\u0001\b\f\n\r\t/é€😀',
                                   'contact_email', 'esc@example.com',
                                   'password', 'Rdl@12345')::text);
SELECT psk.http_users(:'admin', NULL, NULL)::json -> 3 ->> 'user_name'
       = E'q"b\\s\u0001\b\f\n\r\t/é€😀' AS round_trip;
SELECT reservation_token AS tok FROM psk_reserve('osv@example.com', E'tab\there') \gset
SELECT test.call('comment', :'osv', json_build_object('code', 'OSV-1', 'comment', E'a "quoted"\nline\u001f')::text);
SELECT test.call('my_codes', :'osv', NULL);
SELECT test.call('count', :'admin', NULL);
SELECT test.call('users', :'admin', NULL);
-- times with the session's offset, as json_build_object writes them
SET timezone = 'Asia/Kolkata';
SELECT psk.http_my_codes(:'osv', NULL, NULL)::json -> 0 ->> 'requested_at' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+05:30$'
       AS local_time;
SELECT psk.http_my_codes(:'osv', NULL, NULL)::json -> 0 ->> 'requested_at'
       = to_json(reserved_at) #>> '{}' AS as_json_writes_it
  FROM psk.codes WHERE code = 'OSV-1';
RESET timezone;

--
-- The C symbols of 0.1.0 to 0.2.1 stay, for sessions of before an update
--
CREATE FUNCTION test.old(sym text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($f$CREATE FUNCTION test.%I(text, text, jsonb) RETURNS json
                      AS '$libdir/psk', %L LANGUAGE C$f$, sym, sym);
END
$$;
SELECT test.old(s) FROM unnest(ARRAY['psk_http_me', 'psk_http_reserve', 'psk_http_confirm',
                                     'psk_http_release', 'psk_http_my_codes']) s;
SELECT test.psk_http_me(:'osv', NULL, NULL);
SELECT test.psk_http_reserve(:'admin', '{"tester_name": "t"}', NULL);
SELECT test.psk_http_reserve(:'osv', '{"tester_name": "old"}', NULL)::json ->> 'code' AS reserved;
SELECT test.psk_http_confirm(:'osv', format('{"code": "OSV-1", "reservation_token": "%s"}', :'tok'), NULL);
SELECT test.psk_http_release(:'osv', '{"code": "OSV-2"}', NULL);
SELECT json_array_length(test.psk_http_my_codes(:'osv', NULL, NULL)) AS held;
