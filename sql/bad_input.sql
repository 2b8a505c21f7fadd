-- Bad input to every psk_* function: NULLs, empty strings, 10 MB strings,
-- out-of-range numbers, invalid uuids, arrays with NULLs or two dimensions.
-- Each is a clear SQLSTATE error and changes nothing (one row per case);
-- the few values accepted on purpose follow, with what they do.
\i test/fixtures/reset.sql

SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['O1', 'O2'], ARRAY['UK']);
SELECT code FROM psk_reserve('osv@example.com', 'alice');
CREATE TABLE test.big AS SELECT repeat('x', 10000000) AS x;  -- 10 MB
CREATE FUNCTION test.big() RETURNS text LANGUAGE sql STABLE AS 'SELECT x FROM test.big';

SELECT test.state() AS before \gset
SELECT n, name, test.err(sql) AS result
  FROM (VALUES
    -- psk_reserve(user_email, tester_name, country, code_type, how_many)
    (1, 'reserve: email NULL', $$SELECT psk_reserve(NULL, 't')$$),
    (2, 'reserve: email empty', $$SELECT psk_reserve('', 't')$$),
    (3, 'reserve: email 10 MB', $$SELECT psk_reserve(test.big(), 't')$$),
    (4, 'reserve: tester NULL', $$SELECT psk_reserve('osv@example.com', NULL)$$),
    (5, 'reserve: tester blank', $$SELECT psk_reserve('osv@example.com', '  ')$$),
    (6, 'reserve: tester 10 MB', $$SELECT psk_reserve('osv@example.com', test.big())$$),
    (7, 'reserve: country 10 MB', $$SELECT psk_reserve('osv@example.com', 't', test.big())$$),
    (8, 'reserve: code_type 10 MB', $$SELECT psk_reserve('osv@example.com', 't', code_type => test.big())$$),
    (9, 'reserve: code_type unknown', $$SELECT psk_reserve('osv@example.com', 't', code_type => 'NOPE')$$),
    (10, 'reserve: how_many 0', $$SELECT psk_reserve('osv@example.com', 't', how_many => 0)$$),
    (11, 'reserve: how_many -1', $$SELECT psk_reserve('osv@example.com', 't', how_many => -1)$$),
    (12, 'reserve: how_many min int', $$SELECT psk_reserve('osv@example.com', 't', how_many => -2147483648)$$),
    (13, 'reserve: how_many max int', $$SELECT psk_reserve('osv@example.com', 't', how_many => 2147483647)$$),
    (15, 'reserve: how_many 101', $$SELECT psk_reserve('osv@example.com', 't', how_many => 101)$$),
    -- psk_confirm(user_email, code, reservation_token)
    (20, 'confirm: email NULL', $$SELECT psk_confirm(NULL, 'O1', gen_random_uuid())$$),
    (21, 'confirm: code NULL', $$SELECT psk_confirm('osv@example.com', NULL, gen_random_uuid())$$),
    (22, 'confirm: code empty', $$SELECT psk_confirm('osv@example.com', '', gen_random_uuid())$$),
    (23, 'confirm: code 10 MB', $$SELECT psk_confirm('osv@example.com', test.big(), gen_random_uuid())$$),
    (24, 'confirm: token NULL', $$SELECT psk_confirm('osv@example.com', 'O1', NULL)$$),
    (25, 'confirm: token not a uuid', $$SELECT psk_confirm('osv@example.com', 'O1', 'not-a-uuid')$$),
    (26, 'confirm: token wrong', $$SELECT psk_confirm('osv@example.com', 'O1', '00000000-0000-0000-0000-000000000000')$$),
    -- psk_release(user_email, code, clearance_id, note)
    (30, 'release: email NULL', $$SELECT psk_release(NULL, 'O1')$$),
    (31, 'release: code NULL', $$SELECT psk_release('osv@example.com', NULL)$$),
    (32, 'release: code 10 MB', $$SELECT psk_release('osv@example.com', test.big())$$),
    (33, 'release: clearance 10 MB', $$SELECT psk_release('osv@example.com', 'O1', test.big())$$),
    (34, 'release: note 10 MB', $$SELECT psk_release('osv@example.com', 'O1', NULL, test.big())$$),
    (35, 'release: SQL as code', $$SELECT psk_release('osv@example.com', $q$O1' OR '1'='1$q$)$$),
    -- psk_mark_non_usable, psk_comment (user_email, code, text)
    (40, 'mark: reason NULL', $$SELECT psk_mark_non_usable('osv@example.com', 'O1', NULL)$$),
    (41, 'mark: reason empty', $$SELECT psk_mark_non_usable('osv@example.com', 'O1', '')$$),
    (42, 'mark: reason 10 MB', $$SELECT psk_mark_non_usable('osv@example.com', 'O1', test.big())$$),
    (43, 'mark: code NULL', $$SELECT psk_mark_non_usable('osv@example.com', NULL, 'r')$$),
    (44, 'comment: comment NULL', $$SELECT psk_comment('osv@example.com', 'O1', NULL)$$),
    (45, 'comment: comment 10 MB', $$SELECT psk_comment('osv@example.com', 'O1', test.big())$$),
    (46, 'comment: code 10 MB', $$SELECT psk_comment('osv@example.com', test.big(), 'c')$$),
    (47, 'comment: email 10 MB', $$SELECT psk_comment(test.big(), 'O1', 'c')$$),
    -- admin actions on codes
    (50, 'disassociate: admin NULL', $$SELECT psk_disassociate(NULL, 'O1')$$),
    (51, 'disassociate: code NULL', $$SELECT psk_disassociate('admin@example.com', NULL)$$),
    (52, 'disassociate: note 10 MB', $$SELECT psk_disassociate('admin@example.com', 'O1', test.big())$$),
    (53, 'restore: code empty', $$SELECT psk_restore('admin@example.com', '')$$),
    (54, 'restore: code 10 MB', $$SELECT psk_restore('admin@example.com', test.big())$$),
    (55, 'delete code: code NULL', $$SELECT psk_delete_code('admin@example.com', NULL)$$),
    (56, 'delete code: code 10 MB', $$SELECT psk_delete_code('admin@example.com', test.big())$$),
    (57, 'delete code: admin 10 MB', $$SELECT psk_delete_code(test.big(), 'O2')$$),
    -- psk_add_codes(admin_email, code_type, codes, countries)
    (60, 'add codes: admin NULL', $$SELECT psk_add_codes(NULL, 'OSV', ARRAY['N1'])$$),
    (61, 'add codes: type NULL', $$SELECT psk_add_codes('admin@example.com', NULL, ARRAY['N1'])$$),
    (62, 'add codes: type empty', $$SELECT psk_add_codes('admin@example.com', '', ARRAY['N1'])$$),
    (63, 'add codes: type 10 MB', $$SELECT psk_add_codes('admin@example.com', test.big(), ARRAY['N1'])$$),
    (64, 'add codes: codes NULL', $$SELECT psk_add_codes('admin@example.com', 'OSV', NULL)$$),
    (65, 'add codes: codes two-dimensional', $$SELECT psk_add_codes('admin@example.com', 'OSV', ARRAY[['N1', 'N2'], ['N3', 'N4']])$$),
    (66, 'add codes: countries two-dimensional', $$SELECT psk_add_codes('admin@example.com', 'OSV', ARRAY['N1'], ARRAY[['UK'], ['DE']])$$),
    (68, 'add codes: countries 10 MB', $$SELECT psk_add_codes('admin@example.com', 'OSV', ARRAY['N1'], ARRAY[test.big()])$$),
    (69, 'add codes: codes empty array', $$SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', '{}')$$),
    -- places
    (75, 'add region: name NULL', $$SELECT psk_add_region('admin@example.com', NULL)$$),
    (76, 'add region: name 10 MB', $$SELECT psk_add_region('admin@example.com', test.big())$$),
    (77, 'add country: region NULL', $$SELECT psk_add_country('admin@example.com', 'FR', NULL)$$),
    (78, 'add country: name empty', $$SELECT psk_add_country('admin@example.com', '', 'Europe')$$),
    (79, 'add country: region 10 MB', $$SELECT psk_add_country('admin@example.com', 'FR', test.big())$$),
    -- accounts
    (80, 'create user: email NULL', $$SELECT psk_create_user('admin@example.com', 'T', 'u', NULL, 'Rdl@12345')$$),
    (81, 'create user: email 10 MB', $$SELECT psk_create_user('admin@example.com', 'T', 'u', test.big(), 'Rdl@12345')$$),
    (82, 'create user: password 10 MB', $$SELECT psk_create_user('admin@example.com', 'T', 'u', 'n@example.com', test.big())$$),
    (83, 'create user: password empty', $$SELECT psk_create_user('admin@example.com', 'T', 'u', 'n@example.com', '')$$),
    (84, 'create user: team 10 MB', $$SELECT psk_create_user('admin@example.com', test.big(), 'u', 'n@example.com', 'Rdl@12345')$$),
    (85, 'create user: name NULL', $$SELECT psk_create_user('admin@example.com', 'T', NULL, 'n@example.com', 'Rdl@12345')$$),
    (86, 'create user: pool unknown', $$SELECT psk_create_user('admin@example.com', 'T', 'u', 'n@example.com', 'Rdl@12345', pool => 'NOPE')$$),
    (88, 'update user: id NULL', $$SELECT psk_update_user('admin@example.com', NULL, 'T')$$),
    (89, 'update user: id -1', $$SELECT psk_update_user('admin@example.com', -1, 'T')$$),
    (90, 'update user: id max bigint', $$SELECT psk_update_user('admin@example.com', 9223372036854775807, 'T')$$),
    (91, 'update user: email 10 MB', $$SELECT psk_update_user('admin@example.com', 2, email => test.big())$$),
    (92, 'update user: password 10 MB', $$SELECT psk_update_user('admin@example.com', 2, password => test.big())$$),
    (93, 'update user: email empty', $$SELECT psk_update_user('admin@example.com', 2, email => '')$$),
    (94, 'delete user: id NULL', $$SELECT psk_delete_user('admin@example.com', NULL)$$),
    (95, 'delete user: id -1', $$SELECT psk_delete_user('admin@example.com', -1)$$),
    -- sessions
    (100, 'login: email NULL', $$SELECT psk_login(NULL, 'x')$$),
    (101, 'login: password NULL', $$SELECT psk_login('osv@example.com', NULL)$$),
    (102, 'login: email 10 MB', $$SELECT psk_login(test.big(), 'x')$$),
    (103, 'login: password 10 MB', $$SELECT psk_login('nobody@example.com', test.big())$$),
    (104, 'session: token NULL', $$SELECT psk_session_user(NULL)$$),
    (105, 'session: token empty', $$SELECT psk_session_user('')$$),
    (106, 'session: token 10 MB', $$SELECT psk_session_user(test.big())$$),
    (107, 'session: token SQL', $$SELECT psk_session_user($q$' OR 1=1 --$q$)$$),
    -- readers
    (110, 'my codes: email NULL', $$SELECT psk_my_codes(NULL)$$),
    (111, 'my codes: email 10 MB', $$SELECT psk_my_codes(test.big())$$),
    (113, 'recent releases: n 0', $$SELECT psk_recent_releases(0)$$),
    (114, 'recent releases: n -1', $$SELECT psk_recent_releases(-1)$$),
    (115, 'recent releases: n max int', $$SELECT psk_recent_releases(2147483647)$$),
    (116, 'recent releases: type 10 MB', $$SELECT psk_recent_releases(5, test.big())$$),
    (117, 'user log: n -1', $$SELECT psk_user_log('osv@example.com', -1)$$),
    (118, 'user log: n min int', $$SELECT psk_user_log('osv@example.com', -2147483648)$$),
    (119, 'user log: n max int', $$SELECT count(*) FROM psk_user_log('osv@example.com', 2147483647)$$),
    (120, 'log: page 0', $$SELECT psk_log(0)$$),
    (121, 'log: page -1', $$SELECT psk_log(-1)$$),
    (123, 'log: page max int', $$SELECT count(*) FROM psk_log(2147483647)$$),
    (124, 'log: page and size max int', $$SELECT count(*) FROM psk_log(2147483647, 2147483647)$$),
    (125, 'log: page_size 0', $$SELECT psk_log(1, 0)$$),
    (126, 'log: page_size -1', $$SELECT psk_log(1, -1)$$),
    (127, 'log: page_size min int', $$SELECT psk_log(1, -2147483648)$$),
    (128, 'log: code 10 MB', $$SELECT psk_log(code => test.big())$$),
    (129, 'log: user_name 10 MB', $$SELECT psk_log(user_name => test.big())$$),
    (130, 'log: action unknown', $$SELECT psk_log(action => 'NOPE')$$),
    (131, 'log: since after until', $$SELECT psk_log(since => '2030-01-01', until => '2020-01-01')$$),
    (140, 'codes: page_size 0', $$SELECT psk_codes(page_size => 0)$$),
    (141, 'codes: page_size -1', $$SELECT psk_codes(page_size => -1)$$),
    (142, 'codes: page_size max int', $$SELECT psk_codes(page_size => 2147483647)$$),
    (144, 'codes: status unknown', $$SELECT psk_codes(status => 'NOPE')$$),
    (145, 'codes: type 10 MB', $$SELECT psk_codes(test.big())$$),
    (146, 'codes: after 10 MB', $$SELECT psk_codes(after => test.big())$$)
  ) AS c(n, name, sql)
 ORDER BY n;
SELECT test.state() = :'before' AS unchanged;

-- Values that are accepted on purpose; what they do.
-- A NULL how_many, page, page_size or n is the default; the readers read.
SELECT count(*) FROM psk_recent_releases(NULL);
SELECT count(*) FROM psk_log(NULL, NULL);
SELECT count(*) FROM psk_codes(page_size => NULL);
-- since 'infinity' finds nothing; LIKE wildcards are plain characters
SELECT count(*) FROM psk_log(since => 'infinity');
SELECT count(*) FROM psk_log(code => '%', user_name => '_');
-- logging out an unknown token revokes nothing
SELECT * FROM psk_logout(NULL);
SELECT * FROM psk_logout(test.big());
-- per-code problems are outcomes, not errors, and add nothing
SELECT left(code, 8) AS code, length(code), outcome
  FROM psk_add_codes('admin@example.com', 'OSV', ARRAY[NULL, '', test.big()]);
SELECT test.state() = :'before' AS unchanged;
-- a NULL element of countries is skipped
SELECT * FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['N1'], ARRAY['UK', NULL]);
SELECT k.name FROM psk.code_countries cc JOIN psk.codes c ON c.id = cc.code_id
  JOIN psk.countries k ON k.id = cc.country_id WHERE c.code = 'N1';
-- how_many NULL reserves one; is_admin NULL makes a user
SELECT code FROM psk_reserve('osv@example.com', 't', how_many => NULL);
SELECT count(*) FROM psk_create_user('admin@example.com', 'T', 'u', 'n@example.com', 'Rdl@12345', NULL);
SELECT is_admin FROM psk.users WHERE email = 'n@example.com';
