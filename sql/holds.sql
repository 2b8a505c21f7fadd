-- Holds that end: psk.in_use_ttl (confirm sets expires_at on IN_USE codes),
-- psk_renew (the holder's heartbeat, RENEWED), the sweep of lapsed
-- RESERVED and IN_USE codes, and psk_overdue with the index it reads.
\i test/fixtures/reset.sql

SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['O1', 'O2', 'O3', 'O4', 'O5']);
SELECT count(*) FROM psk_add_codes('admin@example.com', 'HSV', ARRAY['H1']);
-- the codes as they stand: whether a hold ends, and when, after the
-- transaction that set it (confirm: confirmed_at, the others' now())
CREATE VIEW test.holds AS
SELECT c.code, c.status, u.email AS holder, c.expires_at IS NOT NULL AS ends,
       c.expires_at - c.confirmed_at AS after_confirm
  FROM psk.codes c LEFT JOIN psk.users u ON u.id = c.holder_id ORDER BY c.code;
CREATE VIEW test.log AS
SELECT action, code, contact_email, tester_name FROM psk.audit_log
 WHERE code IS NOT NULL AND action <> 'ADDED' ORDER BY id;

-- the settings and their defaults
SHOW psk.in_use_ttl;
SHOW psk.max_held_per_user;

--
-- Confirm: with psk.in_use_ttl 0 (the default) an IN_USE code has no
-- expiry; above 0 it is held until now() + psk.in_use_ttl
--
SELECT code, reservation_token AS o1 FROM psk_reserve('osv@example.com', 'alice') \gset
SELECT code, reservation_token AS o2 FROM psk_reserve('osv@example.com', 'bob') \gset
SELECT code, status FROM psk_confirm('osv@example.com', 'O1', :'o1');
SET psk.in_use_ttl = '1h';
SHOW psk.in_use_ttl;
SELECT code, status FROM psk_confirm('osv@example.com', 'O2', :'o2');
SELECT * FROM test.holds;
-- psk_my_codes shows it
SELECT code, status, expires_at - now() < interval '1h' AND expires_at > now() AS in_the_hour
  FROM psk_my_codes('osv@example.com') ORDER BY code;

--
-- Renew: from now, by the setting of the hold's status; the same token
--
SET psk.reservation_ttl = '10min';
SELECT code, reservation_token AS o3 FROM psk_reserve('osv@example.com', 'carol') \gset
SET psk.in_use_ttl = '2h';
SELECT code, status, expires_at - now() AS held_for FROM psk_renew('osv@example.com', 'O2', :'o2');
SELECT code, status, expires_at - now() AS held_for FROM psk_renew('osv@example.com', ' o3 ', :'o3');
-- an IN_USE code held until released can be renewed into a hold that ends
SELECT code, status, expires_at - now() AS held_for FROM psk_renew('osv@example.com', 'O1', :'o1');
-- with its setting at 0: no expiry, and still done and logged
SET psk.in_use_ttl = 0;
SELECT code, status, expires_at FROM psk_renew('osv@example.com', 'O1', :'o1');
SET psk.reservation_ttl = 0;
SELECT code, status, expires_at FROM psk_renew('osv@example.com', 'O3', :'o3');
SELECT code, status, holder, ends FROM test.holds;
-- one RENEWED row each, the holder as actor, with the tester
SELECT * FROM test.log;

--
-- Who may first, then the arguments, then the code (holder, status, token,
-- expiry); each refusal changes nothing
--
SET psk.reservation_ttl = '10min';
SELECT code, reservation_token AS o4 FROM psk_reserve('osv@example.com', 'dave') \gset
SELECT code, reservation_token AS h1 FROM psk_reserve('hsv@example.com', 'erin') \gset
SELECT test.state() AS before \gset
-- an admin or an unknown caller: not_allowed, whatever else is wrong
SELECT * FROM psk_renew('admin@example.com', NULL, NULL);
:refused
SELECT * FROM psk_renew('nobody@example.com', repeat('x', 200), NULL);
:refused
SELECT * FROM psk_renew('admin@example.com', 'O4', :'o4');
:refused
-- the caller's own e-mail missing: invalid_input, as for every function
SELECT * FROM psk_renew(NULL, 'O4', :'o4');
:refused
-- a user: the arguments
SELECT * FROM psk_renew('osv@example.com', NULL, :'o4');
:refused
SELECT * FROM psk_renew('osv@example.com', '  ', :'o4');
:refused
SELECT * FROM psk_renew('osv@example.com', repeat('x', 129), :'o4');
:refused
SELECT * FROM psk_renew('osv@example.com', repeat('x', 10000000), :'o4');
:refused
SELECT * FROM psk_renew('osv@example.com', 'O4', NULL);
:refused
-- then the code
SELECT * FROM psk_renew('osv@example.com', 'NOPE', :'o4');
:refused
SELECT * FROM psk_renew('osv@example.com', 'O5', :'o4');
:refused
SELECT * FROM psk_renew('osv@example.com', 'H1', :'h1');
:refused
SELECT * FROM psk_renew('hsv@example.com', 'O4', :'o4');
:refused
SELECT * FROM psk_renew('osv@example.com', 'O4', :'h1');
:refused
-- the messages, in that order
SELECT test.err($$SELECT * FROM psk_renew('admin@example.com', NULL, NULL)$$);
SELECT test.err($$SELECT * FROM psk_renew('osv@example.com', NULL, NULL)$$);
SELECT test.err($$SELECT * FROM psk_renew('osv@example.com', 'O4', NULL)$$);
SELECT test.err($$SELECT * FROM psk_renew('osv@example.com', 'NOPE', gen_random_uuid())$$);
SELECT test.err($$SELECT * FROM psk_renew('osv@example.com', 'O5', gen_random_uuid())$$);
SELECT test.err($$SELECT * FROM psk_renew('osv@example.com', 'H1', gen_random_uuid())$$);
SELECT test.err($$SELECT * FROM psk_renew('osv@example.com', 'O4', gen_random_uuid())$$);

--
-- A hold past its expiry: not renewed (reservation_expired), swept or not
--
UPDATE psk.codes SET reserved_at = reserved_at - interval '1 day',
                     confirmed_at = confirmed_at - interval '1 day',
                     expires_at = now() - interval '1 second'
 WHERE code IN ('O2', 'O4');
SELECT test.state() AS before \gset
SELECT * FROM psk_renew('osv@example.com', 'O4', :'o4');
:refused
SELECT * FROM psk_renew('osv@example.com', 'O2', :'o2');
:refused
-- the wrong token still says so first
SELECT * FROM psk_renew('osv@example.com', 'O4', :'o2');
:refused
SELECT test.err(format('SELECT * FROM psk_renew(%L, %L, %L)', 'osv@example.com', 'O2', :'o2'));
-- its holder may still release it (O4 stays for the sweep)
SELECT code FROM psk_release('osv@example.com', 'O2');

--
-- The sweep returns lapsed holds, RESERVED and IN_USE, to the pool:
-- EXPIRED, the holder as actor; holds not lapsed stay
--
SET psk.in_use_ttl = '1h';
SELECT code, reservation_token AS o5 FROM psk_reserve('osv@example.com', 'frank') \gset
SELECT code, status FROM psk_confirm('osv@example.com', 'O5', :'o5');
UPDATE psk.codes SET reserved_at = reserved_at - interval '2 hours',
                     confirmed_at = confirmed_at - interval '2 hours',
                     expires_at = expires_at - interval '2 hours'
 WHERE code = 'O5';
SELECT code, status, expires_at < now() AS lapsed FROM psk.codes WHERE expires_at IS NOT NULL ORDER BY code;
SELECT * FROM psk_expire_reservations();
SELECT code, status, holder, ends FROM test.holds;
SELECT action, code, contact_email, tester_name FROM psk.audit_log WHERE action = 'EXPIRED' ORDER BY id;
-- swept: still reservation_expired to the holder whose hold it was
SELECT test.state() AS before \gset
SELECT * FROM psk_renew('osv@example.com', 'O5', :'o5');
:refused
SELECT * FROM psk_renew('osv@example.com', 'O4', gen_random_uuid());
:refused
-- not to anyone else: not held
SELECT * FROM psk_renew('hsv@example.com', 'O5', :'o5');
:refused
-- once the code has moved on, the old hold is just gone: wrong_state for a
-- free code, not_allowed for a code someone else holds
SELECT code FROM psk_reserve('hsv@example.com', 'gina', code_type => 'OSV', how_many => 2);
SELECT test.err(format('SELECT * FROM psk_renew(%L, %L, %L)', 'osv@example.com', 'O4', :'o4'));
SELECT code FROM psk_release('hsv@example.com', 'O4');
SELECT test.err(format('SELECT * FROM psk_renew(%L, %L, %L)', 'osv@example.com', 'O4', :'o4'));
SELECT test.err(format('SELECT * FROM psk_renew(%L, %L, %L)', 'osv@example.com', 'O5', :'o5'));
-- a renewed hold is not swept
SELECT code, reservation_token AS o4b FROM psk_reserve('osv@example.com', 'hank', code_type => 'OSV') \gset
UPDATE psk.codes SET expires_at = now() - interval '1 second', reserved_at = now() - interval '1 hour'
 WHERE code = :'code';
SELECT test.err(format('SELECT * FROM psk_renew(%L, %L, %L)', 'osv@example.com', :'code', :'o4b'));
UPDATE psk.codes SET expires_at = now() + interval '1 minute' WHERE code = :'code';
SELECT code, status, expires_at - now() AS held_for FROM psk_renew('osv@example.com', :'code', :'o4b');
SELECT count(*) AS swept FROM psk_expire_reservations();
SELECT code, status FROM psk.codes WHERE code = :'code';
RESET psk.in_use_ttl;
RESET psk.reservation_ttl;

--
-- psk_overdue: held codes reserved at least older_than ago, longest held
-- first, with the holder's e-mail and how long
--
SELECT code, status, holder FROM psk_codes() WHERE holder IS NOT NULL ORDER BY code;
UPDATE psk.codes SET reserved_at = now() - interval '9 days' WHERE code = 'O1';
UPDATE psk.codes SET reserved_at = now() - interval '8 days' WHERE code = 'H1';
UPDATE psk.codes SET reserved_at = now() - interval '2 days' WHERE code = 'O3';
SELECT code, code_type, status, holder, tester_name, held_for >= interval '8 days' AS week_plus,
       held_for = now() - reserved_at AS held_since_reserved
  FROM psk_overdue();
SELECT code FROM psk_overdue('1 day');
SELECT code FROM psk_overdue(older_than => '36 hours', code_type => 'osv');
SELECT code FROM psk_overdue(code_type => 'HSV');
SELECT count(*) FROM psk_overdue('0');
SELECT count(*) FROM psk_overdue('1 year');
SELECT test.err($$SELECT * FROM psk_overdue(NULL)$$);
SELECT test.err($$SELECT * FROM psk_overdue('-1 day')$$);
SELECT test.err($$SELECT * FROM psk_overdue('200000 years')$$);
SELECT test.err($$SELECT * FROM psk_overdue('1 day', 'GOLD')$$);

-- served by the partial index of held codes by reserved_at: on 20,000 free
-- codes and a few held, the plan of psk_overdue's statement, and the scans
-- of psk.codes the function makes (none sequential)
SELECT count(*) FROM psk_add_codes('admin@example.com', 'COMMON',
                                   ARRAY(SELECT 'BULK-' || g FROM generate_series(1, 20000) g));
ANALYZE psk.codes;
PREPARE overdue(timestamptz, text) AS
SELECT c.code, c.pool, c.status, u.email, c.tester_name, c.reserved_at,
       c.expires_at, now() - c.reserved_at
  FROM psk.codes c JOIN psk.users u ON u.id = c.holder_id
 WHERE c.status IN ('RESERVED', 'IN_USE') AND c.reserved_at <= $1
   AND ($2::text IS NULL OR c.pool = $2)
 ORDER BY c.reserved_at, c.id;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE overdue(now() - interval '7 days', NULL);
RESET plan_cache_mode;
-- (the counters of this backend grow until they are reported, at the end
-- of a transaction at the earliest: what two calls add, within one)
BEGIN;
SELECT seq_scan AS seq_before, idx_scan AS idx_before
  FROM pg_stat_xact_user_tables WHERE relid = 'psk.codes'::regclass \gset
SELECT count(*) FROM psk_overdue('7 days');
SELECT count(*) FROM psk_overdue('1 day', 'OSV');
SELECT seq_scan - :seq_before AS seq_scans, idx_scan - :idx_before AS index_scans
  FROM pg_stat_xact_user_tables WHERE relid = 'psk.codes'::regclass;
COMMIT;
