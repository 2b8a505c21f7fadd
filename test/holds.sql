-- Holds that end, retries that do not reserve twice, quotas (API.md,
-- "Version 0.3.0 additions"): every new transition with the fields and the
-- audit row it leaves, every refusal with its SQLSTATE, changing and
-- writing nothing (t.refused).
BEGIN;
\i test/fixtures/tap.sql
\i test/fixtures/tap_helpers.sql
SELECT plan(80);

SELECT is((SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV',
                                              ARRAY['HL-1', 'HL-2', 'HL-3', 'HL-4', 'HL-5', 'HL-6'])),
          6::bigint, 'six OSV codes');

------------------------------------------------------------------------
-- Leases: confirm sets expires_at on an IN_USE code, renew starts it
-- again from now, the sweep returns a lapsed IN_USE code
------------------------------------------------------------------------
SET LOCAL psk.reservation_ttl = '5min';
SET LOCAL psk.in_use_ttl = '30min';
SELECT code AS c1, reservation_token AS t1 FROM psk_reserve('osv@example.com', 'tess') \gset
SELECT is(t.fields(:'c1'),
          'RESERVED holder=osv@example.com tester=tess token=set reserved_at=now expires_at=now+00:05:00 confirmed_at=-',
          'reserve: held psk.reservation_ttl');
SELECT t.mark();
SELECT is((SELECT status FROM psk_confirm('osv@example.com', :'c1', :'t1')), 'IN_USE', 'confirm');
SELECT is(t.fields(:'c1'),
          'IN_USE holder=osv@example.com tester=tess token=set reserved_at=now expires_at=now+00:30:00 confirmed_at=now',
          'confirm with psk.in_use_ttl: the code in use is held until now() + psk.in_use_ttl');
SELECT is((SELECT (code, status, expires_at - now())::text FROM psk_my_codes('osv@example.com')
            WHERE code = :'c1'),
          format('(%s,IN_USE,00:30:00)', :'c1'), 'psk_my_codes shows the expiry of a code in use');

SET LOCAL psk.in_use_ttl = '2h';
SELECT t.mark();
-- from the call: the statement's clock (in this one transaction, now() is
-- its start)
SELECT is((SELECT (code, status, expires_at - statement_timestamp())::text
             FROM psk_renew('osv@example.com', :'c1', :'t1')),
          format('(%s,IN_USE,02:00:00)', :'c1'), 'renew an IN_USE code: code, status and the new expiry');
SELECT is(regexp_replace(t.fields(:'c1'), 'expires_at=now\+02:00:00(\.\d+)? ', 'expires_at=now+02:00:00.* '),
          'IN_USE holder=osv@example.com tester=tess token=set reserved_at=now expires_at=now+02:00:00.* confirmed_at=now',
          'renew: expires_at = the call + psk.in_use_ttl; nothing else changes');
SELECT is(t.logged(), format('RENEWED %s OSV osv osv@example.com tess - - -', :'c1'),
          'renew: one RENEWED row, the holder as actor, with the tester');

SET LOCAL psk.in_use_ttl = 0;
SELECT is((SELECT expires_at FROM psk_renew('osv@example.com', :'c1', :'t1')), NULL,
          'renew with psk.in_use_ttl 0: no expiry');
SELECT is(t.fields(:'c1'),
          'IN_USE holder=osv@example.com tester=tess token=set reserved_at=now expires_at=- confirmed_at=now',
          'renew with psk.in_use_ttl 0: held until released');

-- a RESERVED code: by psk.reservation_ttl
SELECT code AS c2, reservation_token AS t2 FROM psk_reserve('osv@example.com', 'rex') \gset
SET LOCAL psk.reservation_ttl = '20min';
SELECT t.mark();
SELECT is((SELECT (status, expires_at - statement_timestamp())::text
             FROM psk_renew('osv@example.com', lower(:'c2'), :'t2')),
          '(RESERVED,00:20:00)', 'renew a reservation: psk.reservation_ttl from the call');
SELECT is(t.logged(), format('RENEWED %s OSV osv osv@example.com rex - - -', :'c2'),
          'renew a reservation: one RENEWED row');

-- who may, then the arguments, then the code
SELECT * FROM t.refused(format('SELECT * FROM psk_renew(%L, NULL, NULL)', 'admin@example.com'),
                        'PK003', 'renew by an admin, without arguments');
SELECT * FROM t.refused(format('SELECT * FROM psk_renew(%L, %L, %L)', 'nobody@example.com', :'c2', :'t2'),
                        'PK003', 'renew by an unknown user');
SELECT * FROM t.refused(format('SELECT * FROM psk_renew(%L, NULL, %L)', 'osv@example.com', :'t2'),
                        'PK007', 'renew without a code');
SELECT * FROM t.refused(format('SELECT * FROM psk_renew(%L, %L, NULL)', 'osv@example.com', :'c2'),
                        'PK007', 'renew without a token');
SELECT * FROM t.refused(format('SELECT * FROM psk_renew(%L, %L, %L)', 'osv@example.com', 'NOPE', :'t2'),
                        'PK002', 'renew an unknown code');
SELECT * FROM t.refused(format('SELECT * FROM psk_renew(%L, %L, %L)', 'osv@example.com', 'HL-6', :'t2'),
                        'PK004', 'renew a free code');
SELECT * FROM t.refused(format('SELECT * FROM psk_renew(%L, %L, %L)', 'hsv@example.com', :'c2', :'t2'),
                        'PK003', 'renew another user''s code');
SELECT * FROM t.refused(format('SELECT * FROM psk_renew(%L, %L, %L)', 'osv@example.com', :'c2', :'t1'),
                        'PK005', 'renew with another token');

-- lapsed: not renewed, swept or not
SELECT t.backdate(:'c2', '1 hour');
SELECT * FROM t.refused(format('SELECT * FROM psk_renew(%L, %L, %L)', 'osv@example.com', :'c2', :'t2'),
                        'PK006', 'renew a lapsed reservation');
SET LOCAL psk.in_use_ttl = '10min';
SELECT code AS c3, reservation_token AS t3 FROM psk_reserve('osv@example.com', 'ivy') \gset
SELECT is((SELECT status FROM psk_confirm('osv@example.com', :'c3', :'t3')), 'IN_USE', 'confirm a third code');
UPDATE psk.codes SET reserved_at = reserved_at - interval '1 hour',
                     confirmed_at = confirmed_at - interval '1 hour',
                     expires_at = expires_at - interval '1 hour'
 WHERE code = :'c3';
SELECT * FROM t.refused(format('SELECT * FROM psk_renew(%L, %L, %L)', 'osv@example.com', :'c3', :'t3'),
                        'PK006', 'renew a lapsed code in use');
SELECT t.mark();
SELECT is((SELECT array_agg(c ORDER BY c) FROM psk_expire_reservations() c),
          ARRAY[:'c2', :'c3'], 'the sweep returns the lapsed reservation and the lapsed code in use');
SELECT is(t.fields(:'c3'), t.free(), 'a swept code in use is free');
SELECT is(t.logged(true),
          format('EXPIRED %s OSV osv osv@example.com rex - - - ; EXPIRED %s OSV osv osv@example.com ivy - - -',
                 :'c2', :'c3'),
          'one EXPIRED row each, the holder as actor, with the tester');
SELECT * FROM t.refused(format('SELECT * FROM psk_renew(%L, %L, %L)', 'osv@example.com', :'c3', :'t3'),
                        'PK006', 'renew a swept code in use');
SELECT * FROM t.refused(format('SELECT * FROM psk_renew(%L, %L, %L)', 'hsv@example.com', :'c3', :'t3'),
                        'PK004', 'a swept code is not another user''s to renew');
SELECT is(t.fields(:'c1'),
          'IN_USE holder=osv@example.com tester=tess token=set reserved_at=now expires_at=- confirmed_at=now',
          'a code in use without expiry is not swept');

------------------------------------------------------------------------
-- Retries that do not reserve twice: request_id
------------------------------------------------------------------------
RESET psk.reservation_ttl;
CREATE TEMP TABLE first AS SELECT * FROM psk_reserve('osv@example.com', 'kim', how_many => 2, request_id => 'tap-1');
SELECT is((SELECT count(*) FROM first), 2::bigint, 'a reserve with a request_id');
SELECT t.writes() AS w \gset
SELECT t.mark();
SELECT results_eq('SELECT * FROM psk_reserve(''osv@example.com'', ''kim'', how_many => 2, request_id => ''tap-1'')',
                  'SELECT * FROM first', 'the same request_id: the same rows, in order');
SELECT is(t.wrote(:'w'), '', 'the repeat writes no row of psk');
SELECT is(t.logged(), '(nothing)', 'the repeat writes no audit row');
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'kim', request_id => 'tap-1')$$,
                        'PK009', 'the same request_id with another how_many');
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'kim', how_many => 2, code_type => 'HSV', request_id => 'tap-1')$$,
                        'PK009', 'the same request_id with another pool');
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'kim', how_many => 2, request_id => '')$$,
                        'PK007', 'an empty request_id');
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('admin@example.com', 'kim', request_id => '')$$,
                        'PK003', 'an admin with an empty request_id');
-- a failed call: not remembered (it reserved first, then ran short)
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'kim', how_many => 20, request_id => 'tap-2')$$,
                        'PK001', 'a request_id whose reserve fails', writes_first => true);
SELECT is((SELECT count(*) FROM psk.reserve_requests WHERE request_id = 'tap-2'), 0::bigint,
          'a failed call is not remembered');
SELECT is((SELECT count(*) FROM psk_reserve('osv@example.com', 'kim', request_id => 'tap-2')), 1::bigint,
          'the same request_id then reserves');

------------------------------------------------------------------------
-- Quotas: psk.max_held_per_user
------------------------------------------------------------------------
SELECT is((SELECT count(*) FROM psk.codes c JOIN psk.users u ON u.id = c.holder_id
            WHERE u.email = 'osv@example.com'), 4::bigint, 'osv holds four codes (one in use)');
SET LOCAL psk.max_held_per_user = 4;
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'lou')$$,
                        'PK011', 'a fifth code over a quota of four');
SET LOCAL psk.max_held_per_user = 5;
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'lou', how_many => 2)$$,
                        'PK011', 'two more over a quota of five');
SELECT is((SELECT count(*) FROM psk_reserve('osv@example.com', 'lou')), 1::bigint,
          'one more, up to the quota of five');
SELECT is((SELECT count(*) FROM psk_reserve('hsv@example.com', 'max', code_type => 'OSV')), 1::bigint,
          'another user''s reserve is not held back by osv''s codes');
SELECT results_eq('SELECT * FROM psk_reserve(''osv@example.com'', ''kim'', how_many => 2, request_id => ''tap-1'')',
                  'SELECT * FROM first', 'a remembered request_id is answered at the quota');
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'lou', request_id => 'tap-3')$$,
                        'PK011', 'a new request_id at the quota');
SELECT is((SELECT count(*) FROM psk.reserve_requests WHERE request_id = 'tap-3'), 0::bigint,
          'a refused request_id is not remembered');
SET LOCAL psk.max_held_per_user = 0;

------------------------------------------------------------------------
-- psk_overdue
------------------------------------------------------------------------
UPDATE psk.codes SET reserved_at = now() - interval '10 days' WHERE code = :'c1';
SELECT results_eq($$SELECT code, status, holder, tester_name, held_for FROM psk_overdue()$$,
                  format($$VALUES (%L, 'IN_USE', 'osv@example.com', 'tess', interval '10 days')$$, :'c1'),
                  'psk_overdue: the code held for ten days, with its holder and how long');
SELECT is((SELECT count(*) FROM psk_overdue('0')),
          (SELECT count(*) FROM psk.codes WHERE status IN ('RESERVED', 'IN_USE')),
          'psk_overdue(0): every held code');
SELECT is((SELECT array_agg(status ORDER BY status) FROM (SELECT DISTINCT status FROM psk_overdue('0')) s),
          ARRAY['IN_USE', 'RESERVED'], 'only RESERVED and IN_USE codes');
SELECT ok((SELECT bool_and(reserved_at <= lead) FROM (
               SELECT reserved_at, lead(reserved_at, 1, reserved_at) OVER () FROM psk_overdue('0')) s),
          'longest held first');
SELECT is((SELECT count(*) FROM psk_overdue('0', 'HSV')), 0::bigint, 'code_type filters by pool');
SELECT throws_ok($$SELECT * FROM psk_overdue(NULL)$$, 'PK007', NULL, 'psk_overdue without older_than');
SELECT throws_ok($$SELECT * FROM psk_overdue('-1 minute')$$, 'PK007', NULL, 'psk_overdue with a negative interval');

------------------------------------------------------------------------
-- The sweep in batches: psk_expire_reservations() returns at most
-- psk.expiry_batch holds per call, the longest overdue first
------------------------------------------------------------------------
SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['HB-1', 'HB-2', 'HB-3']);
SELECT count(*) FROM psk_expire_reservations();
SET LOCAL psk.reservation_ttl = '5min';
SELECT array_agg(code ORDER BY code) AS hb FROM psk_reserve('osv@example.com', 'bat', code_type => 'OSV', how_many => 3) \gset
SELECT t.backdate((:'hb'::text[])[1], '1 hour'), t.backdate((:'hb'::text[])[2], '3 hours'),
       t.backdate((:'hb'::text[])[3], '2 hours');
SET LOCAL psk.expiry_batch = 2;
SELECT is((SELECT array_agg(c ORDER BY c) FROM psk_expire_reservations() c),
          (:'hb'::text[])[2:3], 'a batch of psk.expiry_batch holds, the longest overdue first');
SELECT is((SELECT array_agg(c ORDER BY c) FROM psk_expire_reservations() c),
          (:'hb'::text[])[1:1], 'the next call sweeps the rest');
SELECT is((SELECT count(*) FROM psk_expire_reservations()), 0::bigint, 'then nothing is left');
SELECT is((SELECT count(*) FROM psk.audit_log WHERE action = 'EXPIRED' AND code = ANY (:'hb'::text[])), 3::bigint,
          'one EXPIRED row per swept hold');
RESET psk.expiry_batch;

-- the log replays through the lifecycle, RENEWED and EXPIRED of codes in use included
SELECT is((SELECT count(*) FROM t.replay() WHERE r_status LIKE 'ILLEGAL%'), 0::bigint,
          'every audited transition is legal');

SELECT * FROM finish();
ROLLBACK;
