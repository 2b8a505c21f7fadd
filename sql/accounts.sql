-- Accounts: psk_create_user, psk_update_user, psk_delete_user, psk_users,
-- and their audit rows.
\i test/fixtures/reset.sql
\set VERBOSITY terse

-- a few codes, two of them held by osv (one confirmed), one by hsv
INSERT INTO psk.codes (code, pool) VALUES ('OSV-1', 'OSV'), ('OSV-2', 'OSV'), ('HSV-1', 'HSV');
SELECT FROM psk_reserve('osv@example.com', 'tester', how_many => 2);
SELECT FROM psk_confirm('osv@example.com', 'OSV-1',
                        (SELECT reservation_token FROM psk.codes WHERE code = 'OSV-1'));
SELECT FROM psk_reserve('hsv@example.com', 'tester');

--
-- psk_users
--
SELECT * FROM psk_users();

--
-- psk_create_user
--
SELECT test.state() AS before \gset
SELECT test.err($$SELECT * FROM psk_create_user(NULL, 'Admin', 'second', 'second@example.com', 'Rdl@12345', true)$$);
SELECT test.err($$SELECT * FROM psk_create_user(NULL, 'Team', 'u', 'u@example.com', 'Rdl@12345')$$);
SELECT test.err($$SELECT * FROM psk_create_user('osv@example.com', 'Team', 'u', 'u@example.com', 'Rdl@12345')$$);
SELECT test.err($$SELECT * FROM psk_create_user('ghost@example.com', 'Team', 'u', 'u@example.com', 'Rdl@12345')$$);
SELECT test.err($$SELECT * FROM psk_create_user('admin@example.com', 'Team', 'u', 'OSV@example.com', 'Rdl@12345')$$);
SELECT test.err($$SELECT * FROM psk_create_user('admin@example.com', 'Team', 'u', 'not-an-email', 'Rdl@12345')$$);
SELECT test.err($$SELECT * FROM psk_create_user('admin@example.com', 'Team', 'u', 'u @example.com', 'Rdl@12345')$$);
SELECT test.err($$SELECT * FROM psk_create_user('admin@example.com', 'Team', 'u', 'u@example.com', 'short')$$);
SELECT test.err($$SELECT * FROM psk_create_user('admin@example.com', 'Team', 'u', 'u@example.com', repeat('x', 73))$$);
SELECT test.err($$SELECT * FROM psk_create_user('admin@example.com', 'Team', 'u', 'u@example.com', 'Rdl@12345', pool => 'NOPE')$$);
SELECT test.err($$SELECT * FROM psk_create_user('admin@example.com', '', 'u', 'u@example.com', 'Rdl@12345')$$);
SELECT test.err($$SELECT * FROM psk_create_user('admin@example.com', 'Team', NULL, 'u@example.com', 'Rdl@12345')$$);
SELECT test.err($$SELECT * FROM psk_create_user('admin@example.com', repeat('t', 129), 'u', 'u@example.com', 'Rdl@12345')$$);
SELECT test.state() = :'before' AS unchanged;

-- the pool: given, else derived once from the team name
SELECT id AS cobra_id FROM psk_create_user('admin@example.com', 'Cobra HSV team', 'cobra', 'Cobra@Example.com', 'Rdl@12345') \gset
SELECT id AS nova_id FROM psk_create_user('admin@example.com', 'Nova', 'nova', 'nova@example.com', 'Rdl@12345', pool => 'osv') \gset
SELECT id, user_name, team_name, email, is_admin, pool, password_hash ~ '^\$2a\$10\$' AS bcrypt_cost_10
  FROM psk.users WHERE id IN (:cobra_id, :nova_id) ORDER BY id;
SELECT action, user_name, contact_email, subject_user_id = :cobra_id AS subject, note
  FROM psk.audit_log WHERE action = 'USER_CREATED' ORDER BY id DESC LIMIT 1 OFFSET 1;

--
-- psk_update_user
--
-- every refusal changes nothing
SELECT test.state() AS before \gset
SELECT test.err($$SELECT * FROM psk_update_user('osv@example.com', 3, team_name => 'X')$$);
SELECT test.err($$SELECT * FROM psk_update_user('ghost@example.com', 3, team_name => 'X')$$);
SELECT test.err($$SELECT * FROM psk_update_user(NULL, 3, team_name => 'X')$$);
SELECT test.err($$SELECT * FROM psk_update_user('admin@example.com', NULL, team_name => 'X')$$);
SELECT test.err($$SELECT * FROM psk_update_user('admin@example.com', 999, team_name => 'X')$$);
SELECT test.err($$SELECT * FROM psk_update_user('admin@example.com', 3, email => 'OSV@example.com')$$);
SELECT test.err($$SELECT * FROM psk_update_user('admin@example.com', 3, email => 'no-at-sign')$$);
SELECT test.err($$SELECT * FROM psk_update_user('admin@example.com', 3, email => 'a@b@c')$$);
SELECT test.err($$SELECT * FROM psk_update_user('admin@example.com', 3, password => 'short')$$);
SELECT test.err($$SELECT * FROM psk_update_user('admin@example.com', 3, password => repeat('é', 40))$$);
SELECT test.err($$SELECT * FROM psk_update_user('admin@example.com', 3, pool => 'NOPE')$$);
SELECT test.err($$SELECT * FROM psk_update_user('admin@example.com', 3, team_name => '')$$);
SELECT test.err($$SELECT * FROM psk_update_user('admin@example.com', 3, user_name => '  ')$$);
SELECT test.err($$SELECT * FROM psk_update_user('admin@example.com', 3, user_name => repeat('u', 129))$$);
-- the last admin cannot be demoted, not even by itself
SELECT test.err($$SELECT * FROM psk_update_user('admin@example.com', 1, is_admin => false)$$);
-- a user holding codes cannot become an admin (an admin cannot release)
SELECT test.err($$SELECT * FROM psk_update_user('admin@example.com', 2, is_admin => true)$$);
SELECT test.state() = :'before' AS unchanged;

-- NULL means unchanged: nothing given, or the same values, writes nothing
SELECT * FROM psk_update_user('admin@example.com', 3);
SELECT * FROM psk_update_user('admin@example.com', 3, team_name => 'Zeus', pool => 'HSV', email => 'HSV@example.com');
SELECT test.state() = :'before' AS unchanged;

-- a change of team keeps the pool; the e-mail is stored lower-case
SELECT * FROM psk_update_user('admin@example.com', 3, team_name => 'Trillium OSV', email => 'Hera@Example.com');
SELECT id, team_name, user_name, email, pool, updated_at > created_at AS updated
  FROM psk.users WHERE id = 3;
-- the pool changes only when given
SELECT * FROM psk_update_user('admin@example.com', 3, pool => 'common', user_name => 'hera');
SELECT id, team_name, user_name, email, pool FROM psk.users WHERE id = 3;
-- one audit row per change: the actor, the subject, what changed
SELECT action, user_id, user_name, contact_email, subject_user_id, note
  FROM psk.audit_log WHERE action = 'USER_UPDATED' ORDER BY id;

-- a password change rehashes (bcrypt, cost 10) and ends the user's sessions;
-- the audit note says so and never shows the password
SELECT access_token AS hera_token FROM psk_login('hera@example.com', 'Rdl@12345') \gset
SELECT password_hash AS old_hash FROM psk.users WHERE id = 3 \gset
SELECT * FROM psk_update_user('admin@example.com', 3, password => 'Olymp0s!x');
SELECT password_hash <> :'old_hash' AS rehashed, password_hash ~ '^\$2a\$10\$' AS bcrypt_cost_10,
       password_hash = crypt('Olymp0s!x', password_hash) AS matches
  FROM psk.users WHERE id = 3;
SELECT test.err(format('SELECT * FROM psk_session_user(%L)', :'hera_token'));
SELECT test.err($$SELECT * FROM psk_login('hera@example.com', 'Rdl@12345')$$);
SELECT token_type FROM psk_login('hera@example.com', 'Olymp0s!x');
SELECT note, note LIKE '%Olymp0s%' AS shows_password FROM psk.audit_log
 WHERE action = 'USER_UPDATED' ORDER BY id DESC LIMIT 1;
-- the same password again is still a change (a rehash)
SELECT * FROM psk_update_user('admin@example.com', 3, password => 'Olymp0s!x');
SELECT count(*) AS password_changes FROM psk.audit_log
 WHERE action = 'USER_UPDATED' AND subject_user_id = 3 AND note = 'password changed';

-- promote and demote: allowed while another admin remains
SELECT * FROM psk_update_user('admin@example.com', :nova_id, is_admin => true);
SELECT * FROM psk_update_user('nova@example.com', 1, is_admin => false);
SELECT id, is_admin FROM psk.users WHERE is_admin OR id = 1 ORDER BY id;
-- now nova is the last admin, and the old admin is a user
SELECT test.err(format('SELECT * FROM psk_update_user(%L, %s, is_admin => false)', 'nova@example.com', :nova_id));
SELECT test.err($$SELECT * FROM psk_update_user('admin@example.com', 3, team_name => 'X')$$);
SELECT * FROM psk_update_user('nova@example.com', 1, is_admin => true);
SELECT action, user_name, subject_user_id, note FROM psk.audit_log
 WHERE action = 'USER_UPDATED' ORDER BY id DESC LIMIT 3;

--
-- psk_delete_user
--
SELECT FROM psk_release('osv@example.com', 'OSV-2');
SELECT code, status, holder_id FROM psk.codes WHERE holder_id IS NOT NULL ORDER BY code;
SELECT test.state() AS before \gset
SELECT test.err($$SELECT * FROM psk_delete_user('osv@example.com', 3)$$);
SELECT test.err($$SELECT * FROM psk_delete_user('ghost@example.com', 3)$$);
SELECT test.err($$SELECT * FROM psk_delete_user(NULL, 3)$$);
SELECT test.err($$SELECT * FROM psk_delete_user('admin@example.com', NULL)$$);
SELECT test.err($$SELECT * FROM psk_delete_user('admin@example.com', 999)$$);
-- holds codes: reserved ...
SELECT test.err($$SELECT * FROM psk_delete_user('admin@example.com', 3)$$);
-- ... or in use
SELECT test.err($$SELECT * FROM psk_delete_user('admin@example.com', 2)$$);
SELECT test.state() = :'before' AS unchanged;

-- a user who holds nothing goes, with its sessions; its audit rows stay
SELECT FROM psk_release('hera@example.com', 'HSV-1');
SELECT access_token AS hera_token FROM psk_login('hera@example.com', 'Olymp0s!x') \gset
SELECT count(*) AS hera_audit_rows FROM psk.audit_log WHERE user_id = 3 OR subject_user_id = 3 \gset
SELECT * FROM psk_delete_user('admin@example.com', 3);
SELECT count(*) AS users_left FROM psk.users WHERE id = 3;
SELECT count(*) AS sessions_left FROM psk.sessions WHERE user_id = 3;
SELECT test.err(format('SELECT * FROM psk_session_user(%L)', :'hera_token'));
SELECT count(*) = :hera_audit_rows + 1 AS audit_rows_kept FROM psk.audit_log
 WHERE user_id = 3 OR subject_user_id = 3;
SELECT action, user_id, user_name, contact_email, subject_user_id, note
  FROM psk.audit_log ORDER BY id DESC LIMIT 1;
-- deleted is unknown
SELECT test.err($$SELECT * FROM psk_delete_user('admin@example.com', 3)$$);
SELECT test.err($$SELECT * FROM psk_update_user('admin@example.com', 3, team_name => 'X')$$);
SELECT test.err($$SELECT * FROM psk_reserve('hera@example.com', 'tester')$$);

-- admins: another admin may go, even the caller itself, never the last one
SELECT * FROM psk_delete_user('admin@example.com', :nova_id);
SELECT test.state() AS before \gset
SELECT test.err($$SELECT * FROM psk_delete_user('admin@example.com', 1)$$);
SELECT test.state() = :'before' AS unchanged;
SELECT id AS zed_id FROM psk_create_user('admin@example.com', 'Admin', 'zed', 'zed@example.com', 'Rdl@12345', true) \gset
SELECT * FROM psk_delete_user('admin@example.com', 1);
SELECT test.err(format('SELECT * FROM psk_delete_user(%L, %s)', 'zed@example.com', :zed_id));
SELECT action, user_name, contact_email, subject_user_id = 1 AS subject_admin, note
  FROM psk.audit_log ORDER BY id DESC LIMIT 1;

SELECT * FROM psk_users();
