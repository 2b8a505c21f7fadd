-- Who may call comes first (API.md, 0.3.0, "Rules that hold for every
-- function"): a caller who may not call a function at all (an unknown
-- e-mail, a user on an admin function, an admin on a user function) gets
-- PK003 not_allowed whatever else is wrong with the arguments; then the
-- arguments (PK007 invalid_input); then the state (not_found, wrong_state,
-- ...).  A NULL or empty acting e-mail is itself a bad argument
-- (invalid_input, the contract's "NULL or empty required argument").
\i test/fixtures/reset.sql

SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV',
                                   ARRAY['W1', 'W2', 'W3']);
SELECT FROM psk_mark_non_usable('admin@example.com', 'W3', 'broken');
SELECT code, reservation_token AS tok FROM psk_reserve('osv@example.com', 'alice') \gset

-- Each call: who, then what is wrong with its arguments, then the error.
CREATE TABLE test.calls (n int, fn text, who text, bad text, sql text);
INSERT INTO test.calls VALUES
-- user functions: an unknown e-mail, an admin
 (1, 'reserve', 'unknown', 'how_many 0', $$SELECT * FROM psk_reserve('nobody@example.com', 'alice', how_many => 0)$$),
 (2, 'reserve', 'admin', 'pool GOLD', $$SELECT * FROM psk_reserve('admin@example.com', 'alice', code_type => 'GOLD')$$),
 (3, 'confirm', 'unknown', 'code NULL', $$SELECT * FROM psk_confirm('nobody@example.com', NULL, gen_random_uuid())$$),
 (4, 'confirm', 'admin', 'token NULL', $$SELECT * FROM psk_confirm('admin@example.com', 'W1', NULL)$$),
 (5, 'confirm', 'admin', 'code too long', $$SELECT * FROM psk_confirm('admin@example.com', repeat('X', 100000), gen_random_uuid())$$),
 (6, 'renew', 'unknown', 'token NULL', $$SELECT * FROM psk_renew('nobody@example.com', 'W1', NULL)$$),
 (7, 'renew', 'admin', 'code empty', $$SELECT * FROM psk_renew('admin@example.com', ' ', gen_random_uuid())$$),
 (8, 'release', 'unknown', 'code NULL', $$SELECT * FROM psk_release('nobody@example.com', NULL)$$),
 (9, 'release', 'admin', 'clearance too long', $$SELECT * FROM psk_release('admin@example.com', 'W1', repeat('c', 1000))$$),
 (10, 'release', 'admin', 'note too long', $$SELECT * FROM psk_release('admin@example.com', 'W1', NULL, repeat('n', 100000))$$),
 (11, 'comment', 'unknown', 'comment NULL', $$SELECT * FROM psk_comment('nobody@example.com', 'W1', NULL)$$),
 (12, 'comment', 'admin', 'code empty', $$SELECT * FROM psk_comment('admin@example.com', '', 'hello')$$),
 (13, 'my_codes', 'unknown', '-', $$SELECT * FROM psk_my_codes('nobody@example.com')$$),
 (14, 'my_codes', 'admin', '-', $$SELECT * FROM psk_my_codes('admin@example.com')$$),
 (15, 'user_log', 'unknown', 'n 0', $$SELECT * FROM psk_user_log('nobody@example.com', 0)$$),
 (16, 'user_log', 'admin', 'n 101', $$SELECT * FROM psk_user_log('admin@example.com', 101)$$),
-- the holder's or an admin's: an unknown e-mail
 (17, 'mark_non_usable', 'unknown', 'reason NULL', $$SELECT * FROM psk_mark_non_usable('nobody@example.com', 'W1', NULL)$$),
 (18, 'mark_non_usable', 'unknown', 'code NULL', $$SELECT * FROM psk_mark_non_usable('nobody@example.com', NULL, 'r')$$),
-- admin functions: an unknown e-mail, a user
 (19, 'add_codes', 'unknown', 'pool GOLD', $$SELECT * FROM psk_add_codes('nobody@example.com', 'GOLD', ARRAY['Z1'])$$),
 (20, 'add_codes', 'user', 'codes NULL', $$SELECT * FROM psk_add_codes('osv@example.com', 'OSV', NULL)$$),
 (21, 'add_codes', 'user', 'countries 2-D', $$SELECT * FROM psk_add_codes('osv@example.com', 'OSV', ARRAY['Z1'], ARRAY[['UK'], ['DE']])$$),
 (22, 'disassociate', 'unknown', 'code NULL', $$SELECT * FROM psk_disassociate('nobody@example.com', NULL)$$),
 (23, 'disassociate', 'user', 'note too long', $$SELECT * FROM psk_disassociate('osv@example.com', 'W1', repeat('n', 100000))$$),
 (24, 'restore', 'unknown', 'code NULL', $$SELECT * FROM psk_restore('nobody@example.com', NULL)$$),
 (25, 'restore', 'user', 'code empty', $$SELECT * FROM psk_restore('osv@example.com', '')$$),
 (26, 'delete_code', 'unknown', 'code NULL', $$SELECT * FROM psk_delete_code('nobody@example.com', NULL)$$),
 (27, 'delete_code', 'user', 'code too long', $$SELECT * FROM psk_delete_code('osv@example.com', repeat('X', 200))$$),
 (28, 'create_user', 'unknown', 'e-mail malformed', $$SELECT * FROM psk_create_user('nobody@example.com', 'T', 'u', 'not-an-email', 'Rdl@12345')$$),
 (29, 'create_user', 'user', 'password weak', $$SELECT * FROM psk_create_user('osv@example.com', 'T', 'u', 'u@example.com', 'x')$$),
 (30, 'create_user', 'none, an admin exists', 'team NULL', $$SELECT * FROM psk_create_user(NULL, NULL, 'u', 'u@example.com', 'Rdl@12345', true)$$),
 (31, 'update_user', 'unknown', 'id NULL', $$SELECT * FROM psk_update_user('nobody@example.com', NULL)$$),
 (32, 'update_user', 'user', 'pool GOLD', $$SELECT * FROM psk_update_user('osv@example.com', 2, pool => 'GOLD')$$),
 (33, 'delete_user', 'unknown', 'id NULL', $$SELECT * FROM psk_delete_user('nobody@example.com', NULL)$$),
 (34, 'delete_user', 'user', 'id NULL', $$SELECT * FROM psk_delete_user('osv@example.com', NULL)$$),
 (35, 'add_region', 'unknown', 'name NULL', $$SELECT * FROM psk_add_region('nobody@example.com', NULL)$$),
 (36, 'add_region', 'user', 'name empty', $$SELECT * FROM psk_add_region('osv@example.com', '')$$),
 (37, 'add_country', 'unknown', 'region NULL', $$SELECT * FROM psk_add_country('nobody@example.com', 'FR', NULL)$$),
 (38, 'add_country', 'user', 'name too long', $$SELECT * FROM psk_add_country('osv@example.com', repeat('F', 1000), 'Europe')$$);

-- every one not_allowed, and nothing changed (looked at from outside the
-- calls' rolled-back subtransactions)
SELECT test.state() AS before \gset
SELECT n, fn, who, bad, test.err(sql) AS error FROM test.calls ORDER BY n;
SELECT coalesce(nullif(test.changed(:'before'), ''), 'nothing') AS changed;

-- The same bad arguments from a caller who may call: invalid_input (so the
-- refusals above were about the caller, not the arguments).
SELECT n, fn, bad, test.err(replace(replace(sql, 'nobody@example.com', CASE WHEN fn IN ('reserve', 'confirm', 'renew', 'release', 'comment', 'my_codes', 'user_log') THEN 'osv@example.com' ELSE 'admin@example.com' END), CASE who WHEN 'admin' THEN 'admin@example.com' ELSE 'osv@example.com' END, CASE WHEN fn IN ('reserve', 'confirm', 'renew', 'release', 'comment', 'my_codes', 'user_log', 'mark_non_usable') THEN 'osv@example.com' ELSE 'admin@example.com' END)) AS error
  FROM test.calls WHERE bad <> '-' AND who <> 'none, an admin exists' ORDER BY n;
SELECT coalesce(nullif(test.changed(:'before'), ''), 'nothing') AS changed;

-- Then the state: a caller who may call, good arguments, a bad code.
SELECT test.err($$SELECT * FROM psk_confirm('osv@example.com', 'NOPE', gen_random_uuid())$$);
SELECT test.err($$SELECT * FROM psk_release('hsv@example.com', 'W1')$$);
SELECT test.err($$SELECT * FROM psk_comment('osv@example.com', 'W2', 'hi')$$);
SELECT test.err($$SELECT * FROM psk_restore('admin@example.com', 'W1')$$);
SELECT test.err($$SELECT * FROM psk_mark_non_usable('admin@example.com', 'W3', 'again')$$);

-- The acting e-mail itself NULL or empty: a bad argument (invalid_input),
-- checked before anything else.
SELECT test.err($$SELECT * FROM psk_confirm(NULL, NULL, NULL)$$);
SELECT test.err($$SELECT * FROM psk_release('', NULL)$$);
SELECT test.err($$SELECT * FROM psk_add_region(NULL, NULL)$$);
-- without admin_email, is_admin false is the bootstrap's bad argument
SELECT test.err($$SELECT * FROM psk_create_user(NULL, 'T', 'u', 'u@example.com', 'Rdl@12345')$$);

-- At top level too: refused, nothing changed.
SELECT test.state() AS before \gset
SELECT * FROM psk_release('admin@example.com', :'code', repeat('c', 1000));
:refused
SELECT * FROM psk_confirm('admin@example.com', :'code', NULL);
:refused
SELECT * FROM psk_delete_user('osv@example.com', NULL);
:refused
-- and the holder's good call goes through
SELECT code, status FROM psk_confirm('osv@example.com', :'code', :'tok');
SELECT code FROM psk_release('osv@example.com', :'code', 'CLR-1');
