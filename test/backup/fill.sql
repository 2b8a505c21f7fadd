-- A PSK database with rows in every table and an audit log of every action:
-- held (RESERVED), confirmed (IN_USE), non-usable and free codes, countries,
-- a user created, updated and deleted.  Sessions and login failures are made
-- by run.sh, which keeps their tokens.
\set ON_ERROR_STOP 1
-- the demo accounts and places (admin@, osv@, hsv@example.com)
\ir ../fixtures/tap.sql
\set QUIET on
SET client_min_messages = warning;
SELECT FROM psk_add_codes('admin@example.com', 'OSV',
    ARRAY(SELECT 'B-OSV-' || i FROM generate_series(1, 40) i), ARRAY['UK', 'DE']);
SELECT FROM psk_add_codes('admin@example.com', 'HSV',
    ARRAY(SELECT 'B-HSV-' || i FROM generate_series(1, 20) i), ARRAY['DE']);
SELECT FROM psk_add_codes('admin@example.com', 'COMMON',
    ARRAY(SELECT 'B-COM-' || i FROM generate_series(1, 20) i));

-- RESERVED, CONFIRMED, RELEASED, COMMENTED
SELECT FROM psk_reserve('osv@example.com', 'rig-1', country => 'UK', how_many => 3);
SELECT count(*) FROM psk.codes c,
       LATERAL psk_confirm('osv@example.com', c.code, c.reservation_token)
 WHERE c.code IN ('B-OSV-1', 'B-OSV-2');
SELECT FROM psk_comment('osv@example.com', 'B-OSV-2', 'flashed on rig 1');
SELECT FROM psk_release('osv@example.com', 'B-OSV-1', clearance_id => 'CLR-1', note => 'passed');
-- EXPIRED: a reservation with a TTL that has run out
SET psk.reservation_ttl = '1ms';
SELECT FROM psk_reserve('hsv@example.com', 'rig-2', country => 'DE');
RESET psk.reservation_ttl;
SELECT pg_sleep(0.01);
SELECT FROM psk_expire_reservations();
-- held with a TTL still to run
SET psk.reservation_ttl = '1d';
SELECT FROM psk_reserve('hsv@example.com', 'rig-3', how_many => 2);
RESET psk.reservation_ttl;
-- DISASSOCIATED, MARKED_NON_USABLE, RESTORED, DELETED
SELECT FROM psk_reserve('osv@example.com', 'rig-4', code_type => 'COMMON');
SELECT FROM psk_disassociate('admin@example.com', 'B-COM-1', 'tester left');
SELECT FROM psk_mark_non_usable('admin@example.com', 'B-OSV-40', 'damaged');
SELECT FROM psk_mark_non_usable('admin@example.com', 'B-OSV-39', 'damaged');
SELECT FROM psk_restore('admin@example.com', 'B-OSV-39');
SELECT FROM psk_delete_code('admin@example.com', 'B-OSV-38');
-- USER_CREATED, USER_UPDATED, USER_DELETED
SELECT FROM psk_create_user('admin@example.com', 'Zeus HSV', 'carol', 'carol@example.com', 'S3cret-pass');
SELECT FROM psk_update_user('admin@example.com', (SELECT id FROM psk.users WHERE email = 'carol@example.com'), user_name => 'Carol');
SELECT FROM psk_delete_user('admin@example.com', (SELECT id FROM psk.users WHERE email = 'carol@example.com'));
