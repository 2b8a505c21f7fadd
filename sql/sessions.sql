-- Sessions: psk_login, psk_session_user, psk_logout, and the brute-force
-- guard (psk.login_max_failures failures within psk.login_lockout).
\i test/fixtures/reset.sql
\set VERBOSITY terse

-- what a session table row may hold: never the token itself
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'psk.sessions'::regclass AND attnum > 0 ORDER BY attnum;

--
-- Login
--
SELECT * FROM psk_login('osv@example.com', 'Rdl@12345') \gset
-- 32 random bytes in base64url: 43 characters, no padding
SELECT length(:'access_token') AS token_length,
       :'access_token' ~ '^[A-Za-z0-9_-]{43}$' AS base64url,
       :'token_type' AS token_type, :'expires_in' AS expires_in;
-- only its SHA-256 is stored, for the right user, for psk.session_ttl (8h)
SELECT s.user_id, u.email, s.revoked_at IS NULL AS live,
       s.expires_at - s.created_at AS lifetime
  FROM psk.sessions s JOIN psk.users u ON u.id = s.user_id
 WHERE s.token_hash = sha256(convert_to(:'access_token', 'UTF8'));
SELECT count(*) AS rows_holding_the_token FROM psk.sessions
 WHERE position(convert_to(:'access_token', 'UTF8') IN token_hash) > 0;

-- the session resolves to its user, with the user's current data
SELECT * FROM psk_session_user(:'access_token');
-- it takes one probe of the sessions key and one of the users key
EXPLAIN (COSTS OFF)
SELECT u.id, u.user_name, u.team_name, u.email, u.is_admin, u.pool
  FROM psk.sessions s JOIN psk.users u ON u.id = s.user_id
 WHERE s.token_hash = '\x00'::bytea AND s.revoked_at IS NULL
   AND s.expires_at > statement_timestamp();

-- e-mail is case-insensitive; every login makes a new token
SELECT access_token AS second_token FROM psk_login('OSV@Example.COM', 'Rdl@12345') \gset
SELECT :'second_token' <> :'access_token' AS new_token,
       (SELECT count(*) FROM psk.sessions) AS sessions;
SELECT id, contact_email FROM psk_session_user(:'second_token');
-- an admin logs in too (the shim decides what it may call)
SELECT access_token AS admin_token FROM psk_login('admin@example.com', 'Rdl@12345') \gset
SELECT id, is_admin FROM psk_session_user(:'admin_token');

-- wrong e-mail and wrong password: one error, one message; bad input is
-- invalid_input; none of them starts a session or changes anything else
SELECT test.state() AS before \gset
SELECT count(*) AS sessions_before FROM psk.sessions \gset
SELECT test.err($$SELECT * FROM psk_login('osv@example.com', 'Rdl@12346')$$);
SELECT test.err($$SELECT * FROM psk_login('nobody@example.com', 'Rdl@12345')$$);
SELECT test.err($$SELECT * FROM psk_login('osv@example.com', 'rdl@12345')$$);
-- spaces around the e-mail are trimmed (as the old service did): this is
-- a wrong password for osv@example.com, counted as such
SELECT test.err($$SELECT * FROM psk_login(E' osv@example.com\t', 'Rdl@12346')$$);
SELECT test.err($$SELECT * FROM psk_login(NULL, 'Rdl@12345')$$);
SELECT test.err($$SELECT * FROM psk_login('osv@example.com', NULL)$$);
SELECT test.err($$SELECT * FROM psk_login('', 'Rdl@12345')$$);
SELECT test.err($$SELECT * FROM psk_login('osv@example.com', '   ')$$);
SELECT test.err($$SELECT * FROM psk_login(repeat('a', 250) || '@example.com', 'Rdl@12345')$$);
SELECT test.err($$SELECT * FROM psk_login('osv@example.com', repeat('x', 1001))$$);
-- (the guard's worker commits each failure in a transaction of its own: the
-- failures are all that changed)
SELECT test.changed(:'before') AS changed,
       (SELECT count(*) FROM psk.sessions) = :sessions_before AS no_new_session;
-- the failures were counted, even though each call raised an error (and
-- test.err rolled its subtransaction back): against the account, or for an
-- e-mail without one a keyed hash of it (trimmed, lower-cased) ...
SELECT coalesce(u.email, '-') AS account, f.email_hmac IS NOT NULL AS keyed_hash, count(*)
  FROM psk.login_failures f LEFT JOIN psk.users u ON u.id = f.user_id
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT test.login_failures('osv@example.com') AS osv,
       test.login_failures('nobody@example.com') AS nobody,
       test.login_failures(' OSV@example.com ') AS osv_with_spaces;
-- ... so no row holds what was typed
SELECT count(*) AS rows_with_typed_text FROM psk.login_failures f
 WHERE f::text ~* 'example|6578616d706c65';

-- bcrypt reads 72 bytes only: a longer password never matches, even when
-- its first 72 bytes are the password
SELECT FROM psk_create_user('admin@example.com', 'Trillium', 'long', 'long@example.com', repeat('p', 72));
SELECT test.err($$SELECT * FROM psk_login('long@example.com', repeat('p', 73))$$);
SELECT token_type FROM psk_login('long@example.com', repeat('p', 72));

-- a failure survives the rollback of the transaction that made it
BEGIN;
SELECT test.login_failures('hsv@example.com') AS before;
SELECT * FROM psk_login('hsv@example.com', 'not the password');
ROLLBACK;
SELECT test.login_failures('hsv@example.com') AS after;

--
-- Session tokens that are not live: unauthorized, always the same error
--
SELECT test.err($$SELECT * FROM psk_session_user(NULL)$$);
SELECT test.err($$SELECT * FROM psk_session_user('')$$);
SELECT test.err($$SELECT * FROM psk_session_user('not a token')$$);
SELECT test.err($$SELECT * FROM psk_session_user(repeat('A', 42))$$);
SELECT test.err($$SELECT * FROM psk_session_user(repeat('A', 44))$$);
SELECT test.err($$SELECT * FROM psk_session_user(repeat('*', 43))$$);
SELECT test.err($$SELECT * FROM psk_session_user(repeat('A', 100000))$$);
-- well-formed but unknown
SELECT test.err($$SELECT * FROM psk_session_user(repeat('A', 43))$$);
-- the same token with one character changed
SELECT test.err(format('SELECT * FROM psk_session_user(%L)',
    overlay(:'access_token' placing CASE WHEN left(:'access_token', 1) = 'A' THEN 'B' ELSE 'A' END from 1)));

--
-- Logout: revoked at once; true only when a live session ended now
--
SELECT * FROM psk_logout(:'access_token');
SELECT test.err(format('SELECT * FROM psk_session_user(%L)', :'access_token'));
SELECT * FROM psk_logout(:'access_token');
SELECT revoked_at IS NOT NULL AS revoked FROM psk.sessions
 WHERE token_hash = sha256(convert_to(:'access_token', 'UTF8'));
-- the user's other session lives on
SELECT id, contact_email FROM psk_session_user(:'second_token');
SELECT * FROM psk_logout(NULL);
SELECT * FROM psk_logout('');
SELECT * FROM psk_logout('not a token');
SELECT * FROM psk_logout(repeat('A', 43));
-- logout in a transaction that rolls back ends nothing
BEGIN;
SELECT * FROM psk_logout(:'second_token');
ROLLBACK;
SELECT id FROM psk_session_user(:'second_token');

--
-- Expiry: a session ends psk.session_ttl after login
--
SET psk.session_ttl = '1s';
SELECT access_token AS short_token, expires_in FROM psk_login('hsv@example.com', 'Rdl@12345') \gset
SELECT :expires_in AS expires_in;
SELECT id, contact_email FROM psk_session_user(:'short_token');
SELECT pg_sleep(1.2);
SELECT test.err(format('SELECT * FROM psk_session_user(%L)', :'short_token'));
-- an ended session cannot be revoked any more
SELECT * FROM psk_logout(:'short_token');
RESET psk.session_ttl;
-- the next login sweeps ended sessions
SELECT count(*) AS expired_before FROM psk.sessions WHERE expires_at <= now() \gset
SELECT :expired_before AS expired_before;
SELECT FROM psk_login('hsv@example.com', 'Rdl@12345');
SELECT count(*) AS expired_after FROM psk.sessions WHERE expires_at <= statement_timestamp();

-- a user's sessions go with the user, and see its changes at once
SELECT FROM psk_create_user('admin@example.com', 'Apollo', 'temp', 'temp@example.com', 'Temp@12345');
SELECT access_token AS temp_token FROM psk_login('temp@example.com', 'Temp@12345') \gset
SELECT user_name, team_name, is_admin, pool FROM psk_session_user(:'temp_token');
SELECT FROM psk_update_user('admin@example.com', (SELECT id FROM psk.users WHERE email = 'temp@example.com'),
                            team_name => 'Artemis', is_admin => true);
SELECT user_name, team_name, is_admin, pool FROM psk_session_user(:'temp_token');
SELECT FROM psk_delete_user('admin@example.com', (SELECT id FROM psk.users WHERE email = 'temp@example.com'));
SELECT test.err(format('SELECT * FROM psk_session_user(%L)', :'temp_token'));
SELECT count(*) AS temp_sessions FROM psk.sessions s
 WHERE NOT EXISTS (SELECT 1 FROM psk.users u WHERE u.id = s.user_id);

--
-- Lockout
--
SET psk.login_max_failures = 3;
SET psk.login_lockout = '3s';
DELETE FROM psk.login_failures;
-- two failures, then a good login resets the count ...
SELECT test.err($$SELECT * FROM psk_login('hsv@example.com', 'wrong 1')$$);
SELECT test.err($$SELECT * FROM psk_login('hsv@example.com', 'wrong 2')$$);
SELECT token_type FROM psk_login('hsv@example.com', 'Rdl@12345');
SELECT test.login_failures('hsv@example.com') AS failures_after_good_login;
-- ... so two more do not lock; the third does
SELECT test.err($$SELECT * FROM psk_login('hsv@example.com', 'wrong 3')$$);
SELECT test.err($$SELECT * FROM psk_login('HSV@example.com', 'wrong 4')$$);
SELECT test.err($$SELECT * FROM psk_login('hsv@example.com', 'wrong 5')$$);
-- locked out: its own error, right password or not (the seconds vary)
SELECT regexp_replace(test.err($$SELECT * FROM psk_login('hsv@example.com', 'Rdl@12345')$$),
                      '\d+ seconds', 'N seconds') AS locked;
SELECT regexp_replace(test.err($$SELECT * FROM psk_login('hsv@example.com', 'wrong 6')$$),
                      '\d+ seconds', 'N seconds') AS locked;
-- attempts while locked out are not counted (the lock lifts on time)
SELECT test.login_failures('hsv@example.com') AS failures;
-- the retry delay is within the window
SELECT substring(test.err($$SELECT * FROM psk_login('hsv@example.com', 'Rdl@12345')$$)
                 FROM 'in (\d+) seconds')::int BETWEEN 1 AND 3 AS retry_within_window;
-- other accounts are not affected
SELECT token_type FROM psk_login('osv@example.com', 'Rdl@12345');
-- an unknown e-mail locks out the same way (no account enumeration)
SELECT test.err($$SELECT * FROM psk_login('ghost@example.com', 'wrong')$$);
SELECT test.err($$SELECT * FROM psk_login('ghost@example.com', 'wrong')$$);
SELECT test.err($$SELECT * FROM psk_login('ghost@example.com', 'wrong')$$);
SELECT regexp_replace(test.err($$SELECT * FROM psk_login('ghost@example.com', 'wrong')$$),
                      '\d+ seconds', 'N seconds') AS locked;
-- the count is read as committed now, whatever the isolation level: a
-- REPEATABLE READ snapshot taken before the failures does not hide them
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT test.login_failures('osv@example.com') AS visible_to_snapshot;
SELECT test.err($$SELECT * FROM psk_login('osv@example.com', 'wrong 1')$$);
SELECT test.err($$SELECT * FROM psk_login('osv@example.com', 'wrong 2')$$);
SELECT test.err($$SELECT * FROM psk_login('osv@example.com', 'wrong 3')$$);
SELECT regexp_replace(test.err($$SELECT * FROM psk_login('osv@example.com', 'Rdl@12345')$$),
                      '\d+ seconds', 'N seconds') AS locked;
SELECT test.login_failures('osv@example.com') AS visible_to_snapshot;
ROLLBACK;
-- the window passes: the right password works again and resets the count
SELECT pg_sleep(3.1);
SELECT token_type FROM psk_login('hsv@example.com', 'Rdl@12345');
SELECT test.login_failures('hsv@example.com') AS failures;
-- the next failure sweeps the rows that left the window
SELECT count(*) AS old_rows FROM psk.login_failures
 WHERE failed_at <= statement_timestamp() - interval '3s';
SELECT test.err($$SELECT * FROM psk_login('someone@example.com', 'wrong')$$);
SELECT count(*) AS old_rows FROM psk.login_failures
 WHERE failed_at <= statement_timestamp() - interval '3s';
-- an admin's password reset unlocks at once
SELECT test.err($$SELECT * FROM psk_login('osv@example.com', 'wrong 4')$$);
SELECT test.err($$SELECT * FROM psk_login('osv@example.com', 'wrong 5')$$);
SELECT test.err($$SELECT * FROM psk_login('osv@example.com', 'wrong 6')$$);
SELECT regexp_replace(test.err($$SELECT * FROM psk_login('osv@example.com', 'Rdl@12345')$$),
                      '\d+ seconds', 'N seconds') AS locked;
SELECT FROM psk_update_user('admin@example.com', 2, password => 'New@12345');
SELECT test.login_failures('osv@example.com') AS failures;
SELECT token_type FROM psk_login('osv@example.com', 'New@12345');
RESET psk.login_max_failures;
RESET psk.login_lockout;

-- the settings are a superuser's: an ordinary caller cannot loosen them
CREATE ROLE regress_psk_settings;
SET ROLE regress_psk_settings;
SET psk.login_max_failures = 1000000;
SET psk.login_lockout = '1s';
SET psk.session_ttl = '1000h';
RESET ROLE;
DROP ROLE regress_psk_settings;

-- a wrong e-mail takes about as long as a wrong password (both run bcrypt
-- at cost 10), and a locked-out answer does not run it at all
DELETE FROM psk.login_failures;
CREATE FUNCTION test.login_ms(email text, password text) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz := clock_timestamp();
BEGIN
    PERFORM test.err(format('SELECT * FROM psk_login(%L, %L)', email, password));
    RETURN extract(epoch FROM clock_timestamp() - t) * 1000;
END
$$;
SELECT ratio BETWEEN 0.5 AND 2 AS same_time
  FROM (SELECT sum(test.login_ms('admin@example.com', 'wrong' || i))
             / sum(test.login_ms('nobody' || i || '@example.com', 'wrong')) AS ratio
          FROM generate_series(1, 4) i) t;
DELETE FROM psk.login_failures;
SET psk.login_max_failures = 1;
SELECT test.err($$SELECT * FROM psk_login('locked@example.com', 'wrong')$$);
SELECT test.login_ms('locked@example.com', 'wrong') * 4
       < test.login_ms('hsv@example.com', 'wrong') AS locked_is_fast;
RESET psk.login_max_failures;
DELETE FROM psk.login_failures;
