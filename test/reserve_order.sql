-- Which codes reserve hands out (API.md, "Pools and reserve order"):
-- never-used codes first, in insertion order; then by the time the code last
-- became free (release, disassociate, expire, restore), oldest first, ties in
-- insertion order; OSV/HSV restricted to codes valid in the country asked
-- for, COMMON not; what the pool cannot supply comes from COMMON, ignoring
-- the country; how_many all or none, pool codes before COMMON codes;
-- code_type overrides the caller's pool.
-- (That concurrent callers never get the same code and never wait on each
-- other needs two sessions; it is tested outside pgTAP.)
BEGIN;
\i test/fixtures/tap.sql
\i test/fixtures/tap_helpers.sql
SELECT plan(56);
SET LOCAL psk.reservation_ttl = 0;

-- The codes one reserve hands out, in the order of its result.
CREATE FUNCTION t.take(email text, how_many int DEFAULT 1, country text DEFAULT NULL,
                       code_type text DEFAULT NULL)
RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(r.code, ' ' ORDER BY r.n)
      FROM psk_reserve(email, 'tess', country, code_type, how_many) WITH ORDINALITY AS r(code, code_type, reservation_token, reserved_at, expires_at, n)
$$;

-- Start a section with empty pools: every free code is marked non-usable
-- (and NON_USABLE codes are never handed out).
CREATE FUNCTION t.retire() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM psk.codes c,
           LATERAL psk_mark_non_usable('admin@example.com', c.code, 'retired') m
     WHERE c.status = 'CAN_BE_USED'
$$;

-- Give back everything osv@ and hsv@ hold.
CREATE FUNCTION t.release_all() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM psk.codes c JOIN psk.users u ON u.id = c.holder_id,
           LATERAL psk_release(u.email, c.code) r
$$;

SELECT FROM psk_create_user('admin@example.com', 'Gamma', 'common', 'common@example.com', 'Rdl@12345');

------------------------------------------------------------------------
-- never-used codes first, in insertion order (not code order)
------------------------------------------------------------------------
SELECT FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['O-C', 'O-A', 'O-B']);
SELECT FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['O-0']);
SELECT is(t.take('osv@example.com'), 'O-C', 'never used: first inserted first');
SELECT is(t.take('osv@example.com'), 'O-A', 'never used: second inserted');
SELECT is(t.take('osv@example.com'), 'O-B', 'never used: third inserted');
SELECT is(t.take('osv@example.com'), 'O-0', 'never used: the later batch after the earlier one');

------------------------------------------------------------------------
-- a never-used code before any freed one; freed at the same time: ties in
-- insertion order
------------------------------------------------------------------------
SELECT FROM unnest(ARRAY['O-0', 'O-B', 'O-A', 'O-C']) c, LATERAL psk_release('osv@example.com', c) r;
SELECT FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['O-N']);
SELECT is(t.take('osv@example.com'), 'O-N', 'a never-used code comes before freed ones, however new');
SELECT is(t.take('osv@example.com'), 'O-C', 'freed at the same time: insertion order (1)');
SELECT is(t.take('osv@example.com'), 'O-A', 'freed at the same time: insertion order (2)');
SELECT is(t.take('osv@example.com'), 'O-B', 'freed at the same time: insertion order (3)');
SELECT is(t.take('osv@example.com'), 'O-0', 'freed at the same time: insertion order (4)');
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('common@example.com', 'tess')$$,
                        'PK001', 'all OSV codes held and COMMON empty: no_codes_available');

------------------------------------------------------------------------
-- least recently freed first, whatever freed it: restore (oldest), expire,
-- disassociate, release (newest).  Insertion order is the other way round.
------------------------------------------------------------------------
SELECT is(t.release_all(), 5::bigint, 'give back the five O- codes');
SELECT is(t.retire(), 5::bigint, 'retire them: the pools are empty');
SELECT FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['F1', 'F2', 'F3', 'F4']);
SET LOCAL psk.reservation_ttl = '1h';
SELECT is(t.take('osv@example.com', 4), 'F1 F2 F3 F4', 'reserve all four, with a TTL');
SET LOCAL psk.reservation_ttl = 0;

SELECT FROM psk_mark_non_usable('admin@example.com', 'F4', 'check');
SELECT FROM psk_restore('admin@example.com', 'F4');
SELECT FROM t.age_free('1h');
SELECT FROM t.backdate('F3', '2h');
SELECT is(array(SELECT psk_expire_reservations()), '{F3}'::text[], 'F3 expires');
SELECT FROM t.age_free('1h');
SELECT FROM psk_disassociate('admin@example.com', 'F2');
SELECT FROM t.age_free('1h');
SELECT FROM psk_release('osv@example.com', 'F1');
SELECT FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['F5']);

SELECT is(t.take('osv@example.com'), 'F5', 'the never-used code first');
SELECT is(t.take('osv@example.com'), 'F4', 'then the code freed longest ago (restored 3h ago)');
SELECT is(t.take('osv@example.com'), 'F3', 'then expired 2h ago');
SELECT is(t.take('osv@example.com'), 'F2', 'then disassociated 1h ago');
SELECT is(t.take('osv@example.com'), 'F1', 'then released just now');

-- the time a code LAST became free counts: F4, freed long ago, is freed
-- again after F2
SELECT FROM psk_release('osv@example.com', 'F2');
SELECT FROM t.age_free('1h');
SELECT FROM psk_release('osv@example.com', 'F4');
SELECT is(t.take('osv@example.com'), 'F2', 'freed 1h ago');
SELECT is(t.take('osv@example.com'), 'F4', 'freed just now, although it was also freed hours ago');

------------------------------------------------------------------------
-- the country filter (OSV and HSV only) and the fallback to COMMON
------------------------------------------------------------------------
SELECT is(t.release_all(), 5::bigint, 'give back the F codes');
SELECT is(t.retire(), 5::bigint, 'retire them');
SELECT FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['K-UK'], ARRAY['UK']);
SELECT FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['K-DE'], ARRAY['DE']);
SELECT FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['K-BOTH'], ARRAY['UK', 'DE']);
SELECT FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['K-NONE']);
SELECT FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['K-IN'], ARRAY['IN']);
SELECT FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['K-DE2'], ARRAY['DE']);
SELECT FROM psk_add_codes('admin@example.com', 'HSV', ARRAY['H-UK'], ARRAY['UK']);
SELECT FROM psk_add_codes('admin@example.com', 'HSV', ARRAY['H-DE'], ARRAY['DE']);
SELECT FROM psk_add_codes('admin@example.com', 'COMMON', ARRAY['C-1']);
SELECT FROM psk_add_codes('admin@example.com', 'COMMON', ARRAY['C-UK'], ARRAY['UK']);
SELECT FROM psk_add_codes('admin@example.com', 'COMMON', ARRAY['C-2']);

SELECT is(t.take('osv@example.com', country => 'DE'), 'K-DE', 'OSV in DE: the first code valid in DE');
SELECT is(t.take('osv@example.com', country => 'de'), 'K-BOTH', 'OSV in DE (any case): the next one');
SELECT is(t.take('osv@example.com', country => 'DE'), 'K-DE2', 'OSV in DE: the last one');
SELECT is(t.take('osv@example.com', country => 'DE'), 'C-1',
          'OSV in DE, none left: a COMMON code, whatever its countries');
SELECT is(t.take('hsv@example.com', country => 'DE'), 'H-DE', 'HSV in DE: skips the HSV code valid in UK only');
SELECT is(t.take('osv@example.com', country => 'UK', code_type => 'HSV'), 'H-UK',
          'code_type HSV overrides the user''s pool, with the country filter');
SELECT is(t.take('common@example.com', country => 'IN'), 'C-UK',
          'COMMON ignores the country: a code valid in UK only, for IN');
SELECT is(t.take('hsv@example.com', code_type => 'OSV', country => 'IN'), 'K-IN',
          'code_type OSV for an HSV user, in IN');
SELECT is(t.take('osv@example.com', code_type => 'COMMON', country => 'UK'), 'C-2',
          'code_type COMMON for an OSV user: COMMON, the country ignored');
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'tess', 'IN')$$,
                        'PK001', 'OSV in IN: none left in the pool or in COMMON');
SELECT is(t.take('osv@example.com', country => 'UK'), 'K-UK', 'OSV in UK');
SELECT is(t.take('osv@example.com'), 'K-NONE', 'OSV without a country: the code valid nowhere is fine');
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'tess')$$,
                        'PK001', 'every pool empty (retired codes are never handed out)');

------------------------------------------------------------------------
-- how_many: all or none; pool codes before COMMON codes
------------------------------------------------------------------------
SELECT is(t.release_all(), 11::bigint, 'give back the country codes');
SELECT is(t.retire(), 11::bigint, 'retire them');
SELECT FROM psk_add_codes('admin@example.com', 'COMMON', ARRAY['M-C1', 'M-C2']);
SELECT FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['M-1'], ARRAY['DE']);
SELECT FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['M-2'], ARRAY['UK']);

SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'tess', 'DE', how_many => 4)$$,
                        'PK001', 'four in DE: only three to be had (one OSV, two COMMON), so none',
                        writes_first => true);
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'tess', code_type => 'COMMON', how_many => 3)$$,
                        'PK001', 'three COMMON codes: only two, and COMMON has no fallback',
                        writes_first => true);
SELECT is((SELECT string_agg(code || ':' || code_type, ' ' ORDER BY n)
             FROM psk_reserve('osv@example.com', 'tess', 'DE', how_many => 3) WITH ORDINALITY
                  AS r(code, code_type, reservation_token, reserved_at, expires_at, n)),
          'M-1:OSV M-C1:COMMON M-C2:COMMON',
          'three in DE: the OSV code first, then COMMON codes in order');
SELECT is((SELECT string_agg(code || '=' || status, ' ' ORDER BY code) FROM psk.codes WHERE code LIKE 'M-%'),
          'M-1=RESERVED M-2=CAN_BE_USED M-C1=RESERVED M-C2=RESERVED',
          'exactly those three are reserved');
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'tess', 'DE')$$,
                        'PK001', 'one in DE: the OSV code left is valid in UK only, COMMON is empty');
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'tess', how_many => 0)$$,
                        'PK007', 'how_many 0');
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'tess', how_many => 101)$$,
                        'PK007', 'how_many 101');
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'tess', code_type => 'GOLD')$$,
                        'PK007', 'unknown code_type');
SELECT is(t.take('osv@example.com', how_many => 1), 'M-2', 'the last OSV code');

SELECT * FROM finish();
ROLLBACK;
