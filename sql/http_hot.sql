-- The hot HTTP routes (http_routes.c): psk.http_reserve, http_release,
-- http_confirm, http_me and http_my_codes, called as the shim calls them.
-- Every branch: the token, the caller's role, the body, the fields' types,
-- then the rules of the psk_* functions; exact replies and SQLSTATEs, and a
-- refused call changes nothing.
\i test/fixtures/reset.sql
\set VERBOSITY terse

SELECT FROM psk_add_codes('admin@example.com', 'OSV',
                          ARRAY['OSV-1', 'OSV-2', 'OSV-3', 'OSV-4'], ARRAY['UK', 'DE']);
SELECT FROM psk_add_codes('admin@example.com', 'HSV', ARRAY['HSV-1', 'HSV-2'], ARRAY['IN']);
SELECT FROM psk_add_codes('admin@example.com', 'COMMON', ARRAY['COM-1', 'COM-2', 'COM-3']);

SELECT access_token AS osv FROM psk_login('osv@example.com', 'Rdl@12345') \gset
SELECT access_token AS hsv FROM psk_login('hsv@example.com', 'Rdl@12345') \gset
SELECT access_token AS admin FROM psk_login('admin@example.com', 'Rdl@12345') \gset
SELECT access_token AS gone FROM psk_login('osv@example.com', 'Rdl@12345') \gset
SELECT revoked FROM psk_logout(:'gone');

-- A reply with its times and reservation tokens masked.
CREATE FUNCTION test.mask(reply text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(regexp_replace(reply,
               '"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d(:\d\d)?"', '"<time>"', 'g'),
               '"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"', '"<uuid>"', 'g')
$$;

-- A route's reply, masked.  A refused call is made at top level instead,
-- followed by :refused (reset.sql): its SQLSTATE, and what it changed as
-- seen from outside its rolled-back transaction.
CREATE FUNCTION test.call(route text, token text, body text, query jsonb DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    reply text;
BEGIN
    EXECUTE format('SELECT psk.%I($1, $2, $3)::text', 'http_' || route)
       INTO reply USING token, body, query;
    RETURN test.mask(reply);
END
$$;

-- json_build_object's text without the spaces between tokens: the replies
-- are compact JSON, the same bytes otherwise.
CREATE FUNCTION test.compact(j json) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(j::text, '("(?:[^"\\]|\\.)*")|\s+', '\1', 'g')
$$;

-- What json_build_object makes of a code's row: the reply must be exactly it.
CREATE FUNCTION test.reserved_json(c psk.codes) RETURNS text LANGUAGE sql AS $$
    SELECT test.compact(json_build_object('code', c.code, 'code_type', c.pool,
                             'reservation_token', c.reservation_token,
                             'reserved_at', c.reserved_at, 'expires_at', c.expires_at))
$$;

-- The routes: C, SECURITY DEFINER, search_path pinned in C (search_path.c,
-- so no SET clause), not for PUBLIC
SELECT p.proname, l.lanname, p.prosecdef, p.provolatile, p.proconfig,
       pg_get_function_identity_arguments(p.oid) AS args, p.prorettype::regtype,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_may
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'psk'::regnamespace
   AND p.proname IN ('http_reserve', 'http_release', 'http_confirm', 'http_me', 'http_my_codes')
 ORDER BY p.proname;

--
-- The token comes first: unknown, malformed, revoked or missing is
-- unauthorized, whatever the body
--
SELECT test.state() AS before \gset
SELECT psk.http_reserve(NULL, '{nope', NULL);
:refused
SELECT psk.http_reserve('x', '[1]', NULL);
:refused
SELECT psk.http_reserve(repeat('A', 43), '{"tester_name": 5}', NULL);
:refused
SELECT psk.http_reserve(:'gone', '{"code": "OSV-1"}', NULL);
:refused
SELECT psk.http_release(NULL, '{nope', NULL);
:refused
SELECT psk.http_release('x', '[1]', NULL);
:refused
SELECT psk.http_release(repeat('A', 43), '{"tester_name": 5}', NULL);
:refused
SELECT psk.http_release(:'gone', '{"code": "OSV-1"}', NULL);
:refused
SELECT psk.http_confirm(NULL, '{nope', NULL);
:refused
SELECT psk.http_confirm('x', '[1]', NULL);
:refused
SELECT psk.http_confirm(repeat('A', 43), '{"tester_name": 5}', NULL);
:refused
SELECT psk.http_confirm(:'gone', '{"code": "OSV-1"}', NULL);
:refused
SELECT psk.http_me(NULL, '{nope', NULL);
:refused
SELECT psk.http_me('x', '[1]', NULL);
:refused
SELECT psk.http_me(repeat('A', 43), '{"tester_name": 5}', NULL);
:refused
SELECT psk.http_me(:'gone', '{"code": "OSV-1"}', NULL);
:refused
SELECT psk.http_my_codes(NULL, '{nope', NULL);
:refused
SELECT psk.http_my_codes('x', '[1]', NULL);
:refused
SELECT psk.http_my_codes(repeat('A', 43), '{"tester_name": 5}', NULL);
:refused
SELECT psk.http_my_codes(:'gone', '{"code": "OSV-1"}', NULL);
:refused

--
-- GET /auth/me: any live session, admins too; body and query are ignored
--
SELECT test.call('me', :'osv', NULL);
SELECT test.call('me', :'admin', '{nope', '{"x": "y"}');
SELECT psk.http_me(:'hsv', '[1]', NULL)::text = test.compact(json_build_object(
           'id', u.id, 'user_name', u.user_name, 'team_name', u.team_name,
           'contact_email', u.email, 'is_admin', u.is_admin, 'pool', u.pool)) AS me_exact
  FROM psk.users u WHERE u.email = 'hsv@example.com';

--
-- POST /users/reserve
--
SELECT test.state() AS before \gset
-- the body: JSON (22P02), an object (PK007); none, blank and {} are empty
SELECT psk.http_reserve(:'osv', '{nope', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "x"', NULL);
:refused
SELECT psk.http_reserve(:'osv', '[1]', NULL);
:refused
SELECT psk.http_reserve(:'osv', '"tester"', NULL);
:refused
SELECT psk.http_reserve(:'osv', 'null', NULL);
:refused
SELECT psk.http_reserve(:'osv', '42', NULL);
:refused
SELECT psk.http_reserve(:'osv', NULL, NULL);
:refused
SELECT psk.http_reserve(:'osv', '', NULL);
:refused
SELECT psk.http_reserve(:'osv', E' \t\r\n', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{}', NULL);
:refused
-- the query string is not read by this route
SELECT psk.http_reserve(:'osv', '{}', '{"tester_name": "q"}');
:refused
-- field types; null is absent
SELECT psk.http_reserve(:'osv', '{"tester_name": 5}', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": null}', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": ["t"]}', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "t", "country": 1}', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "t", "code_type": true}', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "t", "code_type": {}}', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "t", "how_many": "2"}', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "t", "how_many": 1.5}', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "t", "how_many": 1.0}', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "t", "how_many": 3000000000}', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "t", "how_many": 1e30}', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "t", "how_many": -2147483649}', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "t", "how_many": false}', NULL);
:refused
-- the first bad field is the one named
SELECT psk.http_reserve(:'osv', '{"how_many": "x", "tester_name": 5, "country": 1}', NULL);
:refused
-- an admin: "Users only", whatever the body
SELECT psk.http_reserve(:'admin', '{"tester_name": 5}', NULL);
:refused
SELECT psk.http_reserve(:'admin', '{nope', NULL);
:refused
SELECT psk.http_reserve(:'admin', '{"tester_name": "t"}', NULL);
:refused
SELECT psk.http_reserve(:'admin', '{}', NULL);
:refused
-- then the rules of psk_reserve, with its argument names
SELECT psk.http_reserve(:'osv', '{"tester_name": "  "}', NULL);
:refused
SELECT psk.http_reserve(:'osv', format('{"tester_name": "%s"}', repeat('t', 129)), NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "t", "country": "Mars"}', NULL);
:refused
SELECT psk.http_reserve(:'osv', format('{"tester_name": "t", "country": "%s"}', repeat('c', 129)), NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "t", "code_type": "GOLD"}', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "t", "how_many": 0}', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "t", "how_many": -1}', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "t", "how_many": 101}', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "t", "how_many": 2147483647}', NULL);
:refused
SELECT psk.http_reserve(:'osv', '{"tester_name": "t", "how_many": 10}', NULL);
:refused
SELECT test.state() = :'before' AS nothing_changed,
       (SELECT count(*) FROM psk.audit_log WHERE action = 'RESERVED') AS reserved_rows;

-- one code: a single object, as json_build_object renders it
SELECT test.call('reserve', :'osv', '{"tester_name": "alice"}');
SELECT psk.http_reserve(:'osv', '{"tester_name": "alice"}', NULL)::text AS reply \gset
SELECT :'reply' = test.reserved_json(c) AS reply_exact, c.status, c.tester_name
  FROM psk.codes c WHERE c.code = (:'reply'::json ->> 'code');
-- with an expiry, and times in a zone with a half-hour offset
SET psk.reservation_ttl = 3600;
SET timezone = 'Asia/Kolkata';
SELECT psk.http_reserve(:'hsv', '{"tester_name": "hari", "country": " in "}', NULL)::text AS reply \gset
SELECT :'reply' = test.reserved_json(c) AS reply_exact, :'reply' ~ '\+05:30"' AS local_time,
       c.expires_at - c.reserved_at AS ttl
  FROM psk.codes c WHERE c.code = (:'reply'::json ->> 'code');
RESET timezone;
RESET psk.reservation_ttl;
-- "" is absent for country and code_type; null how_many is one code
SELECT test.call('reserve', :'osv', '{"tester_name": "t", "country": "", "code_type": "", "how_many": null}');
-- duplicate keys: the last one counts, as in jsonb; escapes are decoded
SELECT test.call('reserve', :'osv', '{"tester_name": 5, "tester_name": "b\u00f6b \"q\"", "code_type": "osv"}');
SELECT tester_name FROM psk.codes WHERE code = 'OSV-4';
-- how_many given, even 1: {"codes": [...]}, in psk_reserve's order
SELECT test.call('reserve', :'hsv', '{"tester_name": "t", "how_many": 1}');
SELECT psk.http_reserve(:'hsv', '{"tester_name": "t", "how_many": 2e0, "code_type": "COMMON"}', NULL)::text
       AS reply \gset
SELECT test.mask(:'reply');
SELECT :'reply' = test.compact(json_build_object('codes', json_agg(test.reserved_json(c)::json ORDER BY c.code)))
       AS reply_exact
  FROM psk.codes c WHERE c.code IN ('COM-1', 'COM-2');
-- HSV is empty and COMMON has one code left: two are all or none
SELECT test.state() AS before \gset
SELECT psk.http_reserve(:'hsv', '{"tester_name": "t", "how_many": 2}', NULL);
:refused
SELECT test.state() = :'before' AS nothing_changed;
SELECT test.call('reserve', :'hsv', '{"tester_name": "t", "how_many": 1}');
SELECT code, holder_id, tester_name FROM psk.codes WHERE code = 'COM-3';
SELECT test.state() AS before \gset
SELECT psk.http_reserve(:'hsv', '{"tester_name": "t"}', NULL);
:refused
SELECT test.state() = :'before' AS nothing_changed;

--
-- POST /users/confirm
--
SELECT reservation_token AS tok1 FROM psk.codes WHERE code = 'OSV-1' \gset
SELECT test.state() AS before \gset
SELECT psk.http_confirm(:'osv', '{nope', NULL);
:refused
SELECT psk.http_confirm(:'osv', '[]', NULL);
:refused
SELECT psk.http_confirm(:'osv', '{}', NULL);
:refused
SELECT psk.http_confirm(:'osv', '{"code": 1, "reservation_token": 2}', NULL);
:refused
SELECT psk.http_confirm(:'osv', '{"code": "OSV-1", "reservation_token": 2}', NULL);
:refused
SELECT psk.http_confirm(:'osv', '{"code": "OSV-1", "reservation_token": "zz"}', NULL);
:refused
SELECT psk.http_confirm(:'osv', '{"code": "OSV-1", "reservation_token": "{00000000-0000-0000-0000-000000000000"}', NULL);
:refused
SELECT psk.http_confirm(:'osv', '{"code": "OSV-1", "reservation_token": "00000000-0000-0000-0000-000000000000}"}', NULL);
:refused
SELECT psk.http_confirm(:'osv', '{"code": "OSV-1", "reservation_token": "00000000-0000-0000-0000-000000000000\n"}', NULL);
:refused
SELECT psk.http_confirm(:'osv', '{"code": "OSV-1", "reservation_token": ""}', NULL);
:refused
SELECT psk.http_confirm(:'osv', '{"code": "OSV-1"}', NULL);
:refused
SELECT psk.http_confirm(:'osv', '{"code": "OSV-1", "reservation_token": null}', NULL);
:refused
SELECT psk.http_confirm(:'osv', format('{"reservation_token": "%s"}', :'tok1'), NULL);
:refused
SELECT psk.http_confirm(:'osv', format('{"code": " ", "reservation_token": "%s"}', :'tok1'), NULL);
:refused
SELECT psk.http_confirm(:'admin', '{"code": 1}', NULL);
:refused
SELECT psk.http_confirm(:'admin', format('{"code": "OSV-1", "reservation_token": "%s"}', :'tok1'), NULL);
:refused
SELECT psk.http_confirm(:'osv', format('{"code": "NOPE", "reservation_token": "%s"}', :'tok1'), NULL);
:refused
SELECT psk.http_confirm(:'osv', format('{"code": "OSV-3", "reservation_token": "%s"}', :'tok1'), NULL);
:refused
SELECT psk.http_confirm(:'hsv', format('{"code": "OSV-1", "reservation_token": "%s"}', :'tok1'), NULL);
:refused
SELECT psk.http_confirm(:'osv', '{"code": "OSV-1", "reservation_token": "00000000000000000000000000000000"}', NULL);
:refused
SELECT test.state() = :'before' AS nothing_changed;
-- braces, no hyphens, upper case, a code in lower case: all fine
SELECT test.call('confirm', :'osv', format('{"code": " osv-1 ", "reservation_token": "{%s}"}',
                                           upper(replace(:'tok1', '-', ''))));
SELECT status, confirmed_at IS NOT NULL AS confirmed FROM psk.codes WHERE code = 'OSV-1';
SELECT test.state() AS before \gset
SELECT psk.http_confirm(:'osv', format('{"code": "OSV-1", "reservation_token": "%s"}', :'tok1'), NULL);
:refused

--
-- GET /users/my
--
SELECT psk.http_my_codes(:'admin', NULL, NULL);
:refused
SELECT test.call('my_codes', :'osv', '{nope', '{"a": "b"}');
SELECT psk.http_my_codes(:'hsv', NULL, NULL)::text = test.compact(coalesce(json_agg(json_build_object(
           'code', m.code, 'code_type', m.code_type, 'status', m.status,
           'tester_name', m.tester_name, 'requested_at', m.reserved_at,
           'expires_at', m.expires_at, 'reservation_token', m.reservation_token,
           'note', m.note, 'countries', m.countries, 'regions', m.regions)
           ORDER BY m.ordinality), '[]')) AS my_exact,
       count(*) AS held
  FROM psk_my_codes('hsv@example.com') WITH ORDINALITY AS m;

--
-- POST /users/release
--
SELECT test.state() AS before \gset
SELECT psk.http_release(:'osv', '{nope', NULL);
:refused
SELECT psk.http_release(:'osv', 'true', NULL);
:refused
SELECT psk.http_release(:'osv', '{}', NULL);
:refused
SELECT psk.http_release(:'osv', '{"code": null}', NULL);
:refused
SELECT psk.http_release(:'osv', '{"code": 7}', NULL);
:refused
SELECT psk.http_release(:'osv', '{"code": "OSV-2", "clearance_id": 7}', NULL);
:refused
SELECT psk.http_release(:'osv', '{"code": "OSV-2", "note": []}', NULL);
:refused
SELECT psk.http_release(:'admin', '{"code": 7}', NULL);
:refused
SELECT psk.http_release(:'admin', '{"code": "OSV-2"}', NULL);
:refused
SELECT psk.http_release(:'osv', '{"code": ""}', NULL);
:refused
SELECT psk.http_release(:'osv', format('{"code": "%s"}', repeat('X', 129)), NULL);
:refused
SELECT psk.http_release(:'osv', format('{"code": "OSV-2", "clearance_id": "%s"}', repeat('c', 129)), NULL);
:refused
SELECT psk.http_release(:'osv', format('{"code": "OSV-2", "note": "%s"}', repeat('n', 1001)), NULL);
:refused
-- psk_release's order: code first, then clearance_id, then note
SELECT psk.http_release(:'osv', format('{"note": "%s", "clearance_id": "%s"}', repeat('n', 1001), repeat('c', 129)), NULL);
:refused
SELECT psk.http_release(:'osv', format('{"code": "OSV-2", "note": "%s", "clearance_id": "%s"}', repeat('n', 1001), repeat('c', 129)), NULL);
:refused
SELECT psk.http_release(:'osv', '{"code": "NOPE"}', NULL);
:refused
-- someone else's code
SELECT psk.http_release(:'osv', '{"code": "HSV-1"}', NULL);
:refused
SELECT test.state() = :'before' AS nothing_changed;
-- the reply echoes the code and the clearance id as sent
SELECT test.call('release', :'osv', '{"code": " osv-2 ", "clearance_id": "CL-7", "note": "done"}');
SELECT test.call('release', :'osv', '{"code": "OSV-1", "clearance_id": "", "note": "n"}');
SELECT test.call('release', :'osv', '{"code": "OSV-4", "clearance_id": null}');
SELECT code, status, holder_id, note FROM psk.codes WHERE code IN ('OSV-1', 'OSV-2', 'OSV-4') ORDER BY code;
SELECT action, code, tester_name, note, clearance_id FROM psk.audit_log
 WHERE action = 'RELEASED' ORDER BY id;
SELECT test.state() AS before \gset
SELECT psk.http_release(:'osv', '{"code": "OSV-2"}', NULL);
:refused
SELECT test.call('my_codes', :'osv', NULL);
