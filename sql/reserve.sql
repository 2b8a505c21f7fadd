-- The hot path: psk_reserve, psk_confirm, psk_release, psk_expire_reservations.
\i test/fixtures/reset.sql

-- OSV: O1, O2 (UK), O3 (DE), O4 (no country); HSV: H1, H2; COMMON: C1..C3
SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['o1', 'O2'], ARRAY['UK']);
SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['O3'], ARRAY['DE']);
SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['O4']);
SELECT count(*) FROM psk_add_codes('admin@example.com', 'HSV', ARRAY['H1', 'H2']);
SELECT count(*) FROM psk_add_codes('admin@example.com', 'COMMON', ARRAY['C1', 'C2', 'C3']);

-- A view of the codes without the values that change from run to run.
CREATE VIEW test.codes AS
SELECT c.code, c.pool, c.status, u.email AS holder, c.tester_name,
       c.reserved_at IS NOT NULL AS reserved, c.expires_at IS NOT NULL AS expires,
       c.confirmed_at IS NOT NULL AS confirmed, c.reservation_token IS NOT NULL AS token,
       c.freed_at IS NOT NULL AS freed, c.note
  FROM psk.codes c LEFT JOIN psk.users u ON u.id = c.holder_id ORDER BY c.id;
CREATE VIEW test.log AS
SELECT action, code, code_type, user_name, contact_email, tester_name, country, region,
       note, clearance_id
  FROM psk.audit_log WHERE code IS NOT NULL AND action <> 'ADDED' ORDER BY id;

-- never-used codes first, in insertion order; the user's own pool
SELECT code, code_type, reservation_token IS NOT NULL AS token, expires_at
  FROM psk_reserve('OSV@Example.com', 'alice');
-- a country restricts OSV and HSV codes to those valid there
SELECT code, code_type FROM psk_reserve('osv@example.com', 'alice', 'uk');
SELECT code, code_type FROM psk_reserve('osv@example.com', 'bob', 'DE');
-- nothing left in OSV for UK: COMMON, ignoring the country
SELECT code, code_type FROM psk_reserve('osv@example.com', 'bob', 'UK');
-- how_many: pool codes first, then COMMON
SELECT code, code_type FROM psk_reserve('hsv@example.com', 'carol', how_many => 3);
SELECT * FROM test.codes;

-- all or none: 2 free codes (O4, C3) cannot make 3
SELECT test.state() AS before \gset
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'dave', how_many => 3)$$);
SELECT test.state() = :'before' AS unchanged;
-- code_type picks another pool; HSV is empty, so COMMON
SELECT code, code_type FROM psk_reserve('osv@example.com', 'dave', code_type => 'hsv');
SELECT code, code_type FROM psk_reserve('osv@example.com', 'dave', code_type => 'OSV');
-- everything is held now
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'dave')$$);
SELECT test.err($$SELECT * FROM psk_reserve('hsv@example.com', 'dave', 'UK')$$);

-- bad input: the error, and nothing changed
SELECT test.state() AS before \gset
SELECT test.err($$SELECT * FROM psk_reserve(NULL, 'x')$$);
SELECT test.err($$SELECT * FROM psk_reserve('', 'x')$$);
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', NULL)$$);
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', '   ')$$);
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', repeat('x', 129))$$);
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', repeat('x', 10000000))$$);
SELECT test.err($$SELECT * FROM psk_reserve('nobody@example.com', 'x')$$);
SELECT test.err($$SELECT * FROM psk_reserve('admin@example.com', 'x')$$);
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'x', code_type => 'GOLD')$$);
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'x', 'Atlantis')$$);
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'x', how_many => 0)$$);
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'x', how_many => -5)$$);
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'x', how_many => 101)$$);
SELECT test.state() = :'before' AS unchanged;

-- confirm: RESERVED -> IN_USE, with the reservation's token only
SELECT reservation_token AS o1_token FROM psk.codes WHERE code = 'O1' \gset
SELECT reservation_token AS h1_token FROM psk.codes WHERE code = 'H1' \gset
SELECT test.state() AS before \gset
SELECT test.err($$SELECT * FROM psk_confirm('osv@example.com', 'O1', gen_random_uuid())$$);
SELECT test.err(format('SELECT * FROM psk_confirm(%L, %L, %L)', 'osv@example.com', 'O1', :'h1_token'));
SELECT test.err(format('SELECT * FROM psk_confirm(%L, %L, %L)', 'hsv@example.com', 'O1', :'o1_token'));
SELECT test.err(format('SELECT * FROM psk_confirm(%L, %L, %L)', 'admin@example.com', 'O1', :'o1_token'));
SELECT test.err(format('SELECT * FROM psk_confirm(%L, %L, %L)', 'osv@example.com', 'NOPE', :'o1_token'));
SELECT test.err($$SELECT * FROM psk_confirm('osv@example.com', 'O1', NULL)$$);
SELECT test.err($$SELECT * FROM psk_confirm('osv@example.com', NULL, gen_random_uuid())$$);
SELECT test.err($$SELECT * FROM psk_confirm('osv@example.com', 'O1', 'not-a-uuid')$$);
SELECT test.state() = :'before' AS unchanged;
SELECT code, status, confirmed_at IS NOT NULL AS confirmed
  FROM psk_confirm('osv@example.com', ' o1 ', :'o1_token');
SELECT test.err(format('SELECT * FROM psk_confirm(%L, %L, %L)', 'osv@example.com', 'O1', :'o1_token'));

-- release: the holder only; the audit note is the clearance id, else the note
SELECT test.state() AS before \gset
SELECT test.err($$SELECT * FROM psk_release('hsv@example.com', 'O1')$$);
SELECT test.err($$SELECT * FROM psk_release('admin@example.com', 'O1')$$);
SELECT test.err($$SELECT * FROM psk_release('osv@example.com', 'NOPE')$$);
SELECT test.err($$SELECT * FROM psk_release('osv@example.com', NULL)$$);
SELECT test.err($$SELECT * FROM psk_release('osv@example.com', 'O1', note => repeat('n', 1001))$$);
SELECT test.state() = :'before' AS unchanged;
SELECT code FROM psk_release('osv@example.com', 'O2', note => 'fine');
SELECT code, released_at IS NOT NULL AS released
  FROM psk_release('osv@example.com', 'o1', 'CLR-1', 'used in test run 7');
SELECT code FROM psk_release('hsv@example.com', 'H1');
-- a free code is in the wrong state
SELECT test.err($$SELECT * FROM psk_release('osv@example.com', 'O1')$$);
SELECT test.err($$SELECT * FROM psk_confirm('osv@example.com', 'O1', gen_random_uuid())$$);
SELECT * FROM test.codes WHERE code IN ('O1', 'O2', 'H1');

-- freed codes go to the back of their pool: least recently used first
-- (O2 was freed before O1, O3 after both)
SELECT code FROM psk_release('osv@example.com', 'O3');
SELECT code FROM psk_release('osv@example.com', 'C1');
SELECT code FROM psk_reserve('osv@example.com', 'erin', how_many => 3);

-- expiry: reservations made while psk.reservation_ttl is set
SET psk.reservation_ttl = '5min';
SELECT code, expires_at - reserved_at AS ttl FROM psk_reserve('hsv@example.com', 'frank');
RESET psk.reservation_ttl;
SELECT reservation_token AS h1_token FROM psk.codes WHERE code = 'H1' \gset
SELECT psk_expire_reservations() AS nothing_due;
-- make it overdue (as if 10 minutes had passed)
UPDATE psk.codes SET reserved_at = reserved_at - interval '10 min',
                     expires_at = expires_at - interval '10 min' WHERE code = 'H1';
SELECT test.err(format('SELECT * FROM psk_confirm(%L, %L, %L)', 'hsv@example.com', 'H1', :'h1_token'));
SELECT * FROM psk_expire_reservations();
SELECT * FROM psk_expire_reservations();
SELECT * FROM test.codes WHERE code = 'H1';
-- an overdue reservation may still be released by its holder before the sweep
SET psk.reservation_ttl = 60;
SELECT code FROM psk_reserve('hsv@example.com', 'frank', code_type => 'HSV');
RESET psk.reservation_ttl;
UPDATE psk.codes SET reserved_at = reserved_at - interval '10 min',
                     expires_at = expires_at - interval '10 min' WHERE code = 'H1';
SELECT code FROM psk_release('hsv@example.com', 'H1');
SELECT * FROM psk_expire_reservations();

-- lapsed by the statement's clock: a transaction begun before the
-- reservation lapsed cannot confirm it after (by now(), it still could)
SET psk.reservation_ttl = '1s';
SELECT code AS h_code, reservation_token AS h_token
  FROM psk_reserve('hsv@example.com', 'gina', code_type => 'HSV') \gset
RESET psk.reservation_ttl;
BEGIN;
SELECT now() < expires_at AS not_lapsed_by_now FROM psk.codes WHERE code = :'h_code';
SELECT pg_sleep(1.2);
SELECT now() < expires_at AS still_not_lapsed_by_now FROM psk.codes WHERE code = :'h_code';
SELECT test.err(format('SELECT * FROM psk_confirm(%L, %L, %L)', 'hsv@example.com', :'h_code', :'h_token'));
ROLLBACK;
SELECT code FROM psk_release('hsv@example.com', :'h_code');

-- only a superuser sets the TTL
CREATE ROLE psk_regress_nobody;
GRANT USAGE ON SCHEMA test TO psk_regress_nobody;
SET ROLE psk_regress_nobody;
SELECT test.err($$SET psk.reservation_ttl = '1h'$$);
RESET ROLE;
REVOKE USAGE ON SCHEMA test FROM psk_regress_nobody;
DROP ROLE psk_regress_nobody;

-- one audit row per change, in order
SELECT * FROM test.log;
