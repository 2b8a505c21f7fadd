-- The lifecycle of a code (API.md, "Lifecycle of a code"):
--   CAN_BE_USED --reserve--> RESERVED --confirm--> IN_USE
--   RESERVED / IN_USE --release (holder) or disassociate (admin)--> CAN_BE_USED
--   RESERVED past its expiry --expire--> CAN_BE_USED
--   any state --mark non-usable--> NON_USABLE --restore (admin)--> CAN_BE_USED
--   CAN_BE_USED or NON_USABLE --delete (admin)--> gone
-- Every legal transition must leave the right state and fields; every illegal
-- one must raise its SQLSTATE and change nothing (t.refused: two tests each).
BEGIN;
\i test/fixtures/tap.sql
\i test/fixtures/tap_helpers.sql
SELECT plan(163);

-- Twelve OSV codes for the user osv@ and three COMMON codes (valid in UK)
-- that only admins touch here.  Given untrimmed and in lower case.
SELECT is((SELECT string_agg(code || ':' || outcome, ' ' ORDER BY code)
             FROM psk_add_codes('admin@example.com', 'OSV',
                                ARRAY[' sm-01', 'sm-02 ', 'sm-03', 'sm-04', 'sm-05', 'sm-06',
                                      'sm-07', 'sm-08', 'sm-09', 'sm-10', 'sm-11', 'sm-12'])),
          'SM-01:inserted SM-02:inserted SM-03:inserted SM-04:inserted SM-05:inserted SM-06:inserted '
          'SM-07:inserted SM-08:inserted SM-09:inserted SM-10:inserted SM-11:inserted SM-12:inserted',
          'add_codes: twelve OSV codes, stored trimmed and upper-cased');
SELECT is((SELECT string_agg(code || ':' || outcome, ' ' ORDER BY code)
             FROM psk_add_codes('admin@example.com', 'COMMON', ARRAY['smc-1', 'smc-2', 'smc-3'], ARRAY['UK'])),
          'SMC-1:inserted SMC-2:inserted SMC-3:inserted',
          'add_codes: three COMMON codes valid in UK');
SELECT is(t.fields('SM-01'), t.free(), 'a new code is CAN_BE_USED, with no holder, tester or token');
SELECT is((SELECT count(*) FROM psk.codes WHERE status <> 'CAN_BE_USED'), 0::bigint,
          'every new code is CAN_BE_USED');

------------------------------------------------------------------------
-- CAN_BE_USED --reserve--> RESERVED (psk.reservation_ttl = 0: no expiry)
------------------------------------------------------------------------
SET LOCAL psk.reservation_ttl = 0;
CREATE TEMP TABLE r1 AS SELECT * FROM psk_reserve('osv@example.com', 'tess');
SELECT is((SELECT count(*) FROM r1), 1::bigint, 'reserve: one row');
SELECT code AS c1, reservation_token AS t1 FROM r1 \gset
SELECT is(t.fields(:'c1'),
          'RESERVED holder=osv@example.com tester=tess token=set reserved_at=now expires_at=- confirmed_at=-',
          'reserve: CAN_BE_USED -> RESERVED, held by the caller for the tester, no expiry when the TTL is 0');
SELECT is((SELECT (c.code, c.pool, c.reservation_token, c.reserved_at, c.expires_at)::text
             FROM psk.codes c WHERE c.code = :'c1'),
          (SELECT r1::text FROM r1),
          'reserve returns the stored code, pool, token, reserved_at and expires_at');
SELECT is((SELECT code_type FROM r1), 'OSV', 'reserve: a code of the caller''s pool');

-- Refused reserves
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('admin@example.com', 'tess')$$,
                        'PK003', 'reserve by an admin');
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('nobody@example.com', 'tess')$$,
                        'PK003', 'reserve by an unknown user');
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', '')$$,
                        'PK007', 'reserve without a tester');
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'tess', 'Atlantis')$$,
                        'PK007', 'reserve for an unknown country');

------------------------------------------------------------------------
-- RESERVED: what may not happen to it
------------------------------------------------------------------------
SELECT * FROM t.refused(format('SELECT * FROM psk_confirm(%L, %L, %L)', 'hsv@example.com', :'c1', :'t1'),
                        'PK003', 'RESERVED: confirm by another user');
SELECT * FROM t.refused(format('SELECT * FROM psk_confirm(%L, %L, %L)', 'admin@example.com', :'c1', :'t1'),
                        'PK003', 'RESERVED: confirm by an admin');
SELECT * FROM t.refused(format('SELECT * FROM psk_confirm(%L, %L, %L)', 'nobody@example.com', :'c1', :'t1'),
                        'PK003', 'RESERVED: confirm by an unknown user');
SELECT * FROM t.refused(format('SELECT * FROM psk_confirm(%L, %L, gen_random_uuid())', 'osv@example.com', :'c1'),
                        'PK005', 'RESERVED: confirm with another token');
SELECT * FROM t.refused(format('SELECT * FROM psk_confirm(%L, %L, NULL)', 'osv@example.com', :'c1'),
                        'PK007', 'RESERVED: confirm without a token');
SELECT * FROM t.refused(format('SELECT * FROM psk_release(%L, %L)', 'hsv@example.com', :'c1'),
                        'PK003', 'RESERVED: release by another user');
SELECT * FROM t.refused(format('SELECT * FROM psk_release(%L, %L)', 'admin@example.com', :'c1'),
                        'PK003', 'RESERVED: release by an admin');
SELECT * FROM t.refused(format('SELECT * FROM psk_mark_non_usable(%L, %L, %L)', 'hsv@example.com', :'c1', 'broken'),
                        'PK003', 'RESERVED: mark non-usable by another user');
SELECT * FROM t.refused(format('SELECT * FROM psk_disassociate(%L, %L)', 'osv@example.com', :'c1'),
                        'PK003', 'RESERVED: disassociate by a user, even the holder');
SELECT * FROM t.refused(format('SELECT * FROM psk_restore(%L, %L)', 'admin@example.com', :'c1'),
                        'PK004', 'RESERVED: restore');
SELECT * FROM t.refused(format('SELECT * FROM psk_delete_code(%L, %L)', 'admin@example.com', :'c1'),
                        'PK004', 'RESERVED: delete');
SELECT is(array(SELECT psk_expire_reservations()), '{}'::text[], 'RESERVED without expiry: the sweep leaves it');
SELECT is(t.fields(:'c1'),
          'RESERVED holder=osv@example.com tester=tess token=set reserved_at=now expires_at=- confirmed_at=-',
          'RESERVED: still held after all the refused calls');

------------------------------------------------------------------------
-- RESERVED --confirm--> IN_USE (the code given in lower case)
------------------------------------------------------------------------
CREATE TEMP TABLE f1 AS SELECT * FROM psk_confirm('OSV@example.com', lower(:'c1'), :'t1');
SELECT is((SELECT f1::text FROM f1), format('(%s,IN_USE,"%s")', :'c1', now()),
          'confirm returns the code, IN_USE and confirmed_at');
SELECT is(t.fields(:'c1'),
          'IN_USE holder=osv@example.com tester=tess token=set reserved_at=now expires_at=- confirmed_at=now',
          'confirm: RESERVED -> IN_USE, same holder and tester');
SELECT is(t.token(:'c1'), :'t1'::uuid, 'confirm keeps the reservation token');

------------------------------------------------------------------------
-- IN_USE: what may not happen to it
------------------------------------------------------------------------
SELECT * FROM t.refused(format('SELECT * FROM psk_confirm(%L, %L, %L)', 'osv@example.com', :'c1', :'t1'),
                        'PK004', 'IN_USE: confirm again');
SELECT * FROM t.refused(format('SELECT * FROM psk_confirm(%L, %L, %L)', 'hsv@example.com', :'c1', :'t1'),
                        'PK003', 'IN_USE: confirm by another user');
SELECT * FROM t.refused(format('SELECT * FROM psk_release(%L, %L)', 'hsv@example.com', :'c1'),
                        'PK003', 'IN_USE: release by another user');
SELECT * FROM t.refused(format('SELECT * FROM psk_mark_non_usable(%L, %L, %L)', 'hsv@example.com', :'c1', 'broken'),
                        'PK003', 'IN_USE: mark non-usable by another user');
SELECT * FROM t.refused(format('SELECT * FROM psk_restore(%L, %L)', 'admin@example.com', :'c1'),
                        'PK004', 'IN_USE: restore');
SELECT * FROM t.refused(format('SELECT * FROM psk_delete_code(%L, %L)', 'admin@example.com', :'c1'),
                        'PK004', 'IN_USE: delete');

------------------------------------------------------------------------
-- IN_USE --release (holder)--> CAN_BE_USED
------------------------------------------------------------------------
CREATE TEMP TABLE l1 AS SELECT * FROM psk_release('osv@example.com', ' ' || lower(:'c1') || ' ', 'CLR-1', 'done');
SELECT is((SELECT l1::text FROM l1), format('(%s,"%s")', :'c1', now()),
          'release returns the code and released_at');
SELECT is(t.fields(:'c1'), t.free(), 'release: IN_USE -> CAN_BE_USED, holder, tester and token gone');
SELECT is((SELECT t.ts(released_at) FROM psk.codes WHERE code = :'c1'), 'now', 'release sets released_at');

-- CAN_BE_USED: what may not happen to it
SELECT * FROM t.refused(format('SELECT * FROM psk_confirm(%L, %L, %L)', 'osv@example.com', :'c1', :'t1'),
                        'PK004', 'CAN_BE_USED: confirm with the old token');
SELECT * FROM t.refused(format('SELECT * FROM psk_release(%L, %L)', 'osv@example.com', :'c1'),
                        'PK004', 'CAN_BE_USED: release again');
SELECT * FROM t.refused(format('SELECT * FROM psk_disassociate(%L, %L)', 'admin@example.com', :'c1'),
                        'PK004', 'CAN_BE_USED: disassociate');
SELECT * FROM t.refused(format('SELECT * FROM psk_restore(%L, %L)', 'admin@example.com', :'c1'),
                        'PK004', 'CAN_BE_USED: restore');
SELECT * FROM t.refused(format('SELECT * FROM psk_mark_non_usable(%L, %L, %L)', 'osv@example.com', :'c1', 'broken'),
                        'PK003', 'CAN_BE_USED: mark non-usable by a user who does not hold it');
SELECT * FROM t.refused(format('SELECT * FROM psk_comment(%L, %L, %L)', 'osv@example.com', :'c1', 'hello'),
                        'PK004', 'CAN_BE_USED: comment by a user');

------------------------------------------------------------------------
-- RESERVED --release (holder)--> CAN_BE_USED, and a fresh token each time
------------------------------------------------------------------------
SELECT code AS c2, reservation_token AS t2 FROM psk_reserve('osv@example.com', 'tom') \gset
SELECT isnt(:'t2'::uuid, :'t1'::uuid, 'each reservation gets a new token');
SELECT is(t.fields(:'c2'),
          'RESERVED holder=osv@example.com tester=tom token=set reserved_at=now expires_at=- confirmed_at=-',
          'reserve: a second code');
SELECT is((SELECT code FROM psk_release('osv@example.com', :'c2', NULL, 'not needed')), :'c2',
          'release of a RESERVED code');
SELECT is(t.fields(:'c2'), t.free(), 'release: RESERVED -> CAN_BE_USED');
SELECT * FROM t.refused(format('SELECT * FROM psk_confirm(%L, %L, %L)', 'osv@example.com', :'c2', :'t2'),
                        'PK004', 'confirm after release');

------------------------------------------------------------------------
-- RESERVED / IN_USE --disassociate (admin)--> CAN_BE_USED
------------------------------------------------------------------------
SELECT code AS c3 FROM psk_reserve('osv@example.com', 'tess') \gset
SELECT is((SELECT d::text FROM psk_disassociate('admin@example.com', lower(:'c3'), 'left the team') d),
          format('(%s,osv@example.com)', :'c3'),
          'disassociate returns the code and the previous holder''s e-mail');
SELECT is(t.fields(:'c3'), t.free(), 'disassociate: RESERVED -> CAN_BE_USED');

SELECT code AS c4, reservation_token AS t4 FROM psk_reserve('osv@example.com', 'tess') \gset
SELECT is((SELECT status FROM psk_confirm('osv@example.com', :'c4', :'t4')), 'IN_USE', 'confirm c4');
SELECT is((SELECT previous_holder FROM psk_disassociate('admin@example.com', :'c4')),
          'osv@example.com', 'disassociate of an IN_USE code, no note');
SELECT is(t.fields(:'c4'), t.free(), 'disassociate: IN_USE -> CAN_BE_USED');
SELECT * FROM t.refused(format('SELECT * FROM psk_disassociate(%L, %L)', 'admin@example.com', :'c4'),
                        'PK004', 'disassociate a code that is free again');
SELECT * FROM t.refused(format('SELECT * FROM psk_release(%L, %L)', 'osv@example.com', :'c4'),
                        'PK004', 'the old holder releases a disassociated code');

------------------------------------------------------------------------
-- RESERVED past its expiry --expire--> CAN_BE_USED
------------------------------------------------------------------------
SET LOCAL psk.reservation_ttl = '1h';
SELECT code AS c5, reservation_token AS t5 FROM psk_reserve('osv@example.com', 'eve') \gset
SELECT is(t.fields(:'c5'),
          'RESERVED holder=osv@example.com tester=eve token=set reserved_at=now expires_at=now+01:00:00 confirmed_at=-',
          'reserve with psk.reservation_ttl = 1h: expires_at = reserved_at + 1h');
SELECT code AS c6, reservation_token AS t6 FROM psk_reserve('osv@example.com', 'eve') \gset
SELECT code AS c7, reservation_token AS t7 FROM psk_reserve('osv@example.com', 'eve') \gset
SELECT is((SELECT t.ts(confirmed_at) FROM psk_confirm('osv@example.com', :'c7', :'t7')), 'now',
          'confirm within the TTL');
SELECT is(t.fields(:'c7'),
          'IN_USE holder=osv@example.com tester=eve token=set reserved_at=now expires_at=- confirmed_at=now',
          'confirm clears expires_at: an IN_USE code does not expire');
SET LOCAL psk.reservation_ttl = 0;

-- two hours pass for c5 and c7; c6 was reserved just now
SELECT FROM t.backdate(:'c5', '2h');
SELECT FROM t.backdate(:'c7', '2h');
SELECT is(t.fields(:'c5'),
          'RESERVED holder=osv@example.com tester=eve token=set reserved_at=now-02:00:00 expires_at=now-01:00:00 confirmed_at=-',
          'c5 is overdue but not yet swept');
SELECT * FROM t.refused(format('SELECT * FROM psk_confirm(%L, %L, %L)', 'osv@example.com', :'c5', :'t5'),
                        'PK006', 'RESERVED past expires_at: confirm');
SELECT is(array(SELECT psk_expire_reservations()), ARRAY[:'c5'],
          'the sweep expires the overdue reservation only (not the fresh one, not the IN_USE one)');
SELECT is(t.fields(:'c5'), t.free(), 'expire: RESERVED -> CAN_BE_USED');
SELECT is(t.fields(:'c6'),
          'RESERVED holder=osv@example.com tester=eve token=set reserved_at=now expires_at=now+01:00:00 confirmed_at=-',
          'a reservation within its TTL stays');
SELECT is(t.fields(:'c7'),
          'IN_USE holder=osv@example.com tester=eve token=set reserved_at=now-02:00:00 expires_at=- confirmed_at=now',
          'an IN_USE code stays');
SELECT is(array(SELECT psk_expire_reservations()), '{}'::text[], 'a second sweep finds nothing');
SELECT * FROM t.refused(format('SELECT * FROM psk_confirm(%L, %L, %L)', 'osv@example.com', :'c5', :'t5'),
                        'PK004', 'confirm after the sweep');
SELECT * FROM t.refused(format('SELECT * FROM psk_release(%L, %L)', 'osv@example.com', :'c5'),
                        'PK004', 'release after the sweep');

-- the holder may still release an overdue reservation before the sweep
SELECT FROM t.backdate(:'c6', '2h');
SELECT is((SELECT code FROM psk_release('osv@example.com', :'c6')), :'c6',
          'the holder releases an overdue reservation');
SELECT is(t.fields(:'c6'), t.free(), 'release of an overdue reservation: CAN_BE_USED');
SELECT is(array(SELECT psk_expire_reservations()), '{}'::text[], 'nothing left to expire');

------------------------------------------------------------------------
-- any state --mark non-usable--> NON_USABLE --restore (admin)--> CAN_BE_USED
------------------------------------------------------------------------
-- CAN_BE_USED, by an admin
SELECT is((SELECT m::text FROM psk_mark_non_usable('admin@example.com', 'smc-1', 'scratched') m),
          '(SMC-1,NON_USABLE)', 'mark non-usable returns the code and NON_USABLE');
SELECT is(t.fields('SMC-1'),
          'NON_USABLE holder=- tester=- token=- reserved_at=- expires_at=- confirmed_at=-',
          'mark non-usable (admin): CAN_BE_USED -> NON_USABLE');

-- NON_USABLE: what may not happen to it
SELECT * FROM t.refused($$SELECT * FROM psk_confirm('osv@example.com', 'SMC-1', gen_random_uuid())$$,
                        'PK004', 'NON_USABLE: confirm');
SELECT * FROM t.refused($$SELECT * FROM psk_release('osv@example.com', 'SMC-1')$$,
                        'PK004', 'NON_USABLE: release');
SELECT * FROM t.refused($$SELECT * FROM psk_disassociate('admin@example.com', 'SMC-1')$$,
                        'PK004', 'NON_USABLE: disassociate');
SELECT * FROM t.refused($$SELECT * FROM psk_restore('osv@example.com', 'SMC-1')$$,
                        'PK003', 'NON_USABLE: restore by a user');
SELECT * FROM t.refused($$SELECT * FROM psk_mark_non_usable('osv@example.com', 'SMC-1', 'again')$$,
                        'PK004', 'NON_USABLE: mark non-usable again, by a user');
SELECT * FROM t.refused($$SELECT * FROM psk_mark_non_usable('admin@example.com', 'SMC-1', 'again')$$,
                        'PK004', 'NON_USABLE: mark non-usable again, by an admin');

SELECT is((SELECT r::text FROM psk_restore('admin@example.com', ' smc-1') r), '(SMC-1,CAN_BE_USED)',
          'restore returns the code and CAN_BE_USED');
SELECT is(t.fields('SMC-1'), t.free(), 'restore: NON_USABLE -> CAN_BE_USED');
SELECT * FROM t.refused($$SELECT * FROM psk_restore('admin@example.com', 'SMC-1')$$,
                        'PK004', 'restore a code that is free');

-- RESERVED, by its holder
SELECT code AS c8 FROM psk_reserve('osv@example.com', 'tess') \gset
SELECT is((SELECT status FROM psk_mark_non_usable('osv@example.com', :'c8', 'scratched')), 'NON_USABLE',
          'the holder marks a RESERVED code non-usable');
SELECT is(t.fields(:'c8'),
          'NON_USABLE holder=- tester=- token=- reserved_at=- expires_at=- confirmed_at=-',
          'mark non-usable (holder): RESERVED -> NON_USABLE, no longer held');
SELECT * FROM t.refused(format('SELECT * FROM psk_release(%L, %L)', 'osv@example.com', :'c8'),
                        'PK004', 'the old holder releases a non-usable code');

-- IN_USE, by its holder
SELECT code AS c9, reservation_token AS t9 FROM psk_reserve('osv@example.com', 'tess') \gset
SELECT is((SELECT status FROM psk_confirm('osv@example.com', :'c9', :'t9')), 'IN_USE', 'confirm c9');
SELECT is((SELECT status FROM psk_mark_non_usable('osv@example.com', :'c9', 'scratched')), 'NON_USABLE',
          'the holder marks an IN_USE code non-usable');
SELECT is(t.fields(:'c9'),
          'NON_USABLE holder=- tester=- token=- reserved_at=- expires_at=- confirmed_at=-',
          'mark non-usable (holder): IN_USE -> NON_USABLE');

-- RESERVED and IN_USE, by an admin
SELECT code AS c10 FROM psk_reserve('osv@example.com', 'tess') \gset
SELECT is((SELECT status FROM psk_mark_non_usable('admin@example.com', :'c10', 'recalled')), 'NON_USABLE',
          'an admin marks someone''s RESERVED code non-usable');
SELECT is(t.fields(:'c10'),
          'NON_USABLE holder=- tester=- token=- reserved_at=- expires_at=- confirmed_at=-',
          'mark non-usable (admin): RESERVED -> NON_USABLE');
SELECT code AS c11, reservation_token AS t11 FROM psk_reserve('osv@example.com', 'tess') \gset
SELECT is((SELECT status FROM psk_confirm('osv@example.com', :'c11', :'t11')), 'IN_USE', 'confirm c11');
SELECT is((SELECT status FROM psk_mark_non_usable('admin@example.com', :'c11', 'recalled')), 'NON_USABLE',
          'an admin marks someone''s IN_USE code non-usable');
SELECT is(t.fields(:'c11'),
          'NON_USABLE holder=- tester=- token=- reserved_at=- expires_at=- confirmed_at=-',
          'mark non-usable (admin): IN_USE -> NON_USABLE');

-- a restored code is handed out again
SELECT is((SELECT code FROM psk_restore('admin@example.com', :'c11')), :'c11', 'restore c11');
SELECT is(t.fields(:'c11'), t.free(), 'restore: NON_USABLE -> CAN_BE_USED (once held)');

------------------------------------------------------------------------
-- CAN_BE_USED or NON_USABLE --delete (admin)--> gone
------------------------------------------------------------------------
SELECT * FROM t.refused($$SELECT * FROM psk_delete_code('osv@example.com', 'SMC-2')$$,
                        'PK003', 'delete by a user');
SELECT is((SELECT code FROM psk_delete_code('admin@example.com', 'smc-2 ')), 'SMC-2',
          'delete returns the code');
SELECT is(t.fields('SMC-2'), 'GONE', 'delete: CAN_BE_USED -> gone');
SELECT is((SELECT count(*) FROM psk.code_countries cc
             WHERE NOT EXISTS (SELECT 1 FROM psk.codes c WHERE c.id = cc.code_id)), 0::bigint,
          'delete leaves no country of the code behind');
SELECT is((SELECT code FROM psk_delete_code('admin@example.com', :'c8')), :'c8', 'delete a NON_USABLE code');
SELECT is(t.fields(:'c8'), 'GONE', 'delete: NON_USABLE -> gone');

-- gone, and never known: not_found whatever is asked
SELECT * FROM t.refused($$SELECT * FROM psk_confirm('osv@example.com', 'SMC-2', gen_random_uuid())$$,
                        'PK002', 'gone: confirm');
SELECT * FROM t.refused($$SELECT * FROM psk_release('osv@example.com', 'SMC-2')$$,
                        'PK002', 'gone: release');
SELECT * FROM t.refused($$SELECT * FROM psk_comment('osv@example.com', 'SMC-2', 'hello')$$,
                        'PK002', 'gone: comment');
SELECT * FROM t.refused($$SELECT * FROM psk_mark_non_usable('admin@example.com', 'SMC-2', 'x')$$,
                        'PK002', 'gone: mark non-usable');
SELECT * FROM t.refused($$SELECT * FROM psk_disassociate('admin@example.com', 'SMC-2')$$,
                        'PK002', 'gone: disassociate');
SELECT * FROM t.refused($$SELECT * FROM psk_restore('admin@example.com', 'SMC-2')$$,
                        'PK002', 'gone: restore');
SELECT * FROM t.refused($$SELECT * FROM psk_delete_code('admin@example.com', 'SMC-2')$$,
                        'PK002', 'gone: delete again');
SELECT * FROM t.refused($$SELECT * FROM psk_confirm('osv@example.com', 'NO-SUCH', gen_random_uuid())$$,
                        'PK002', 'unknown code: confirm');
SELECT * FROM t.refused($$SELECT * FROM psk_release('osv@example.com', 'NO-SUCH')$$,
                        'PK002', 'unknown code: release');

-- a deleted code may be added again, and starts afresh
SELECT is((SELECT outcome FROM psk_add_codes('admin@example.com', 'COMMON', ARRAY['SMC-2'])), 'inserted',
          'a deleted code can be added again');
SELECT is(t.fields('SMC-2'), t.free(), 'the re-added code is CAN_BE_USED');

-- what is left: every state at once, consistent
SELECT is((SELECT string_agg(status || '=' || n, ' ' ORDER BY status)
             FROM (SELECT status, count(*) AS n FROM psk.codes GROUP BY status) s),
          'CAN_BE_USED=11 IN_USE=1 NON_USABLE=2',
          'at the end: c7 IN_USE, c9 and c10 NON_USABLE, c8 gone, the 11 others free');

SELECT * FROM finish();
ROLLBACK;
