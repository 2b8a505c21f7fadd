-- pgTAP: psk_users, psk_update_user, psk_delete_user.
BEGIN;
\i test/fixtures/tap.sql
\set QUIET on
SELECT plan(16);

SELECT id AS osv_id FROM psk.users WHERE email = 'osv@example.com' \gset
SELECT id AS hsv_id FROM psk.users WHERE email = 'hsv@example.com' \gset
SELECT id AS admin_id FROM psk.users WHERE email = 'admin@example.com' \gset
INSERT INTO psk.codes (code, pool) VALUES ('TAP-OSV-2', 'OSV'), ('TAP-OSV-1', 'OSV');
SELECT FROM psk_reserve('osv@example.com', 'tester', how_many => 2);

SELECT results_eq('SELECT user_name, is_admin, pool, reserved_count, reserved_codes FROM psk_users()',
                  $$VALUES ('admin', true, 'COMMON', 0, '{}'::text[]),
                           ('osv', false, 'OSV', 2, '{TAP-OSV-1,TAP-OSV-2}'),
                           ('hsv', false, 'HSV', 0, '{}')$$,
                  'psk_users: every user by id, held codes sorted');

-- update
SELECT is((SELECT id FROM psk_update_user('admin@example.com', :hsv_id, team_name => 'Hera', email => 'Hera@Example.com')),
          :hsv_id::bigint, 'psk_update_user returns the id');
SELECT results_eq(format('SELECT team_name, email, pool FROM psk.users WHERE id = %s', :hsv_id),
                  $$VALUES ('Hera', 'hera@example.com', 'HSV')$$,
                  'given fields change, the e-mail lower-cased, the pool stays');
SELECT results_eq('SELECT user_id, subject_user_id, note FROM psk.audit_log WHERE action = ''USER_UPDATED''',
                  format('VALUES (%s::bigint, %s::bigint, %L)', :admin_id, :hsv_id,
                         'team_name Zeus -> Hera, email hsv@example.com -> hera@example.com'),
                  'one USER_UPDATED row: who changed whom, and what');
SELECT lives_ok(format('SELECT * FROM psk_update_user(%L, %s, password => %L)', 'admin@example.com', :hsv_id, 'Brand-new-1'),
                'a password change');
SELECT lives_ok($$SELECT * FROM psk_login('hera@example.com', 'Brand-new-1')$$, 'the new password works');
SELECT is((SELECT note FROM psk.audit_log WHERE action = 'USER_UPDATED' ORDER BY id DESC LIMIT 1),
          'password changed', 'the audit row names the change, not the password');
SELECT throws_ok(format('SELECT * FROM psk_update_user(%L, %s, email => %L)', 'admin@example.com', :hsv_id, 'OSV@example.com'),
                 'PK009', NULL, 'a taken e-mail is a conflict');
SELECT throws_ok($$SELECT * FROM psk_update_user('admin@example.com', -1, team_name => 'X')$$,
                 'PK002', NULL, 'an unknown id is not found');
SELECT throws_ok(format('SELECT * FROM psk_update_user(%L, %s, team_name => %L)', 'osv@example.com', :hsv_id, 'X'),
                 'PK003', NULL, 'a user is not an admin');
SELECT throws_ok(format('SELECT * FROM psk_update_user(%L, %s, is_admin => false)', 'admin@example.com', :admin_id),
                 'PK009', NULL, 'the last admin stays an admin');

-- delete
SELECT throws_ok(format('SELECT * FROM psk_delete_user(%L, %s)', 'admin@example.com', :osv_id),
                 'PK009', NULL, 'a user holding codes cannot be deleted');
SELECT throws_ok(format('SELECT * FROM psk_delete_user(%L, %s)', 'admin@example.com', :admin_id),
                 'PK009', NULL, 'the last admin cannot be deleted');
SELECT is((SELECT id FROM psk_delete_user('admin@example.com', :hsv_id)), :hsv_id::bigint,
          'psk_delete_user returns the id');
SELECT is((SELECT count(*)::int FROM psk.users WHERE id = :hsv_id), 0, 'the user is gone');
SELECT results_eq('SELECT user_id, subject_user_id, note FROM psk.audit_log WHERE action = ''USER_DELETED''',
                  format('VALUES (%s::bigint, %s::bigint, %L)', :admin_id, :hsv_id,
                         'deleted hera@example.com (team Hera, pool HSV)'),
                  'one USER_DELETED row');

SELECT * FROM finish();
ROLLBACK;
