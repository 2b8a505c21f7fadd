-- pgTAP: the session lifecycle and the brute-force guard.
BEGIN;
\i test/fixtures/tap.sql
\i test/fixtures/tap_helpers.sql
\set QUIET on
SELECT plan(23);

-- Failed logins are committed by the guard's worker and outlive this
-- transaction's ROLLBACK: use e-mails no other run uses.
SELECT 'tap-' || md5(random()::text || clock_timestamp()) || '@example.com' AS email,
       'tap-nobody-' || md5(random()::text || clock_timestamp()) || '@example.com' AS nobody \gset
SELECT FROM psk_create_user('admin@example.com', 'Tap', 'tap', upper(:'email'), 'Tap@12345');

-- login
CREATE TEMP TABLE login ON COMMIT DROP AS SELECT * FROM psk_login(:'email', 'Tap@12345');
SELECT access_token AS token FROM login \gset
SELECT is((SELECT token_type FROM login), 'bearer', 'token_type is bearer');
SELECT is((SELECT expires_in FROM login), 8 * 3600, 'expires_in is psk.session_ttl (8h by default)');
SELECT matches(:'token'::text, '^[A-Za-z0-9_-]{43}$', 'the token is 32 bytes in base64url');
SELECT is((SELECT count(*)::int FROM psk.sessions
            WHERE token_hash = sha256(convert_to(:'token', 'UTF8'))), 1,
          'the session is stored under the SHA-256 of its token');
SELECT isnt(:'token'::text, (SELECT access_token FROM psk_login(:'email', 'Tap@12345')),
            'every login makes a new token');

-- resolving
SELECT results_eq(format('SELECT user_name, team_name, contact_email, is_admin, pool FROM psk_session_user(%L)', :'token'),
                  format('VALUES (%L, %L, %L, false, %L)', 'tap', 'Tap', :'email', 'COMMON'),
                  'psk_session_user returns the user of a live session');
SELECT throws_ok(format('SELECT * FROM psk_session_user(%L)', repeat('A', 43)),
                 'PK008', 'invalid or expired session token', 'an unknown token is unauthorized');
SELECT throws_ok($$SELECT * FROM psk_session_user('not a token')$$,
                 'PK008', 'invalid or expired session token', 'a malformed token is unauthorized');
SELECT throws_ok($$SELECT * FROM psk_session_user(NULL)$$,
                 'PK008', 'invalid or expired session token', 'a NULL token is unauthorized');

-- logout
SELECT is((SELECT revoked FROM psk_logout(:'token')), true, 'logout revokes a live session');
SELECT throws_ok(format('SELECT * FROM psk_session_user(%L)', :'token'),
                 'PK008', 'invalid or expired session token', 'a revoked token is unauthorized at once');
SELECT is((SELECT revoked FROM psk_logout(:'token')), false, 'a second logout revokes nothing');

-- expiry
SET LOCAL psk.session_ttl = '1s';
SELECT access_token AS short FROM psk_login(:'email', 'Tap@12345') \gset
SELECT lives_ok(format('SELECT * FROM psk_session_user(%L)', :'short'), 'a fresh session works');
SELECT pg_sleep(1.2);
SELECT throws_ok(format('SELECT * FROM psk_session_user(%L)', :'short'),
                 'PK008', 'invalid or expired session token', 'an expired token is unauthorized');
SELECT is((SELECT revoked FROM psk_logout(:'short')), false, 'an expired session cannot be revoked');
SET LOCAL psk.session_ttl = DEFAULT;

-- lockout: 2 failures within 2 s
SET LOCAL psk.login_max_failures = 2;
SET LOCAL psk.login_lockout = '2s';
SELECT throws_ok(format('SELECT * FROM psk_login(%L, %L)', :'email', 'wrong'),
                 'PK008', 'invalid e-mail or password', 'a wrong password is unauthorized');
SELECT throws_ok(format('SELECT * FROM psk_login(%L, %L)', :'nobody', 'Tap@12345'),
                 'PK008', 'invalid e-mail or password', 'a wrong e-mail raises the same error');
SELECT is(t.login_failures(:'email') + t.login_failures(:'nobody'), 2::bigint,
          'each failure was counted although its call was rolled back');
SELECT throws_ok(format('SELECT * FROM psk_login(%L, %L)', upper(:'email'), 'wrong again'),
                 'PK008', 'invalid e-mail or password', 'the second failure, e-mail in another case');
SELECT throws_ok(format('SELECT * FROM psk_login(%L, %L)', :'email', 'Tap@12345'),
                 'PK010', NULL, 'then the right password is locked out');
SELECT throws_ok(format('SELECT * FROM psk_login(%L, %L)', :'email', 'wrong'),
                 'PK010', NULL, 'and so is a wrong one');
SELECT pg_sleep(2.1);
SELECT lives_ok(format('SELECT * FROM psk_login(%L, %L)', :'email', 'Tap@12345'),
                'after the window the right password works');
SELECT is(t.login_failures(:'email'), 0::bigint,
          'a good login resets the count');

SELECT * FROM finish();
ROLLBACK;
