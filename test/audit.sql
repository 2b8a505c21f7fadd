-- The audit trail is complete: every transition writes exactly one row (in
-- the same transaction) with the right action, code, pool, actor, tester,
-- place and note; refused calls write none; per code, ids follow the order of
-- the transitions, so replaying the log gives every code's current status.
--
-- t.logged() shows the rows written since t.mark(), one per line:
--   action code pool user_name contact_email tester country region note
BEGIN;
\i test/fixtures/tap.sql
\i test/fixtures/tap_helpers.sql
SELECT plan(55);
SET LOCAL psk.reservation_ttl = 0;

------------------------------------------------------------------------
-- ADDED: one row per inserted code, by the admin; none for the rest
------------------------------------------------------------------------
SELECT FROM t.mark();
SELECT FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['au-1', 'au-2', 'au-3', 'au-4', 'AU-1', '']);
SELECT is(t.logged(),
          'ADDED AU-1 OSV admin admin@example.com - - - - ; '
          'ADDED AU-2 OSV admin admin@example.com - - - - ; '
          'ADDED AU-3 OSV admin admin@example.com - - - - ; '
          'ADDED AU-4 OSV admin admin@example.com - - - -',
          'add_codes: one ADDED row per inserted code, none for a duplicate or an invalid code');
SELECT FROM t.mark();
SELECT FROM psk_add_codes('admin@example.com', 'COMMON', ARRAY['AU-C1']);
SELECT FROM psk_add_codes('admin@example.com', 'HSV', ARRAY['AU-H1']);
SELECT is(t.logged(),
          'ADDED AU-C1 COMMON admin admin@example.com - - - - ; '
          'ADDED AU-H1 HSV admin admin@example.com - - - -',
          'add_codes: COMMON and HSV');
SELECT FROM t.mark();
SELECT FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['AU-UK'], ARRAY['UK', 'Atlantis']);
SELECT is((SELECT string_agg(concat_ws(' ', action, code, code_type, user_name, contact_email), ' ; ')
             FROM psk.audit_log WHERE id > current_setting('t.audit_mark')::bigint),
          'ADDED AU-UK OSV admin admin@example.com',
          'add_codes with countries: one ADDED row, none for the unknown country');
SELECT FROM t.mark();
SELECT FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['AU-1', 'au-2']);
SELECT is(t.logged(), '(nothing)', 'add_codes of codes that exist already: no row');

------------------------------------------------------------------------
-- RESERVED, CONFIRMED, COMMENTED, RELEASED
------------------------------------------------------------------------
SELECT FROM t.mark();
SELECT code AS uk FROM psk_reserve('osv@example.com', 'tess', 'uk') \gset
SELECT is(:'uk'::text, 'AU-UK', 'reserve in UK: the only OSV code valid there');
SELECT is(t.logged(), 'RESERVED AU-UK OSV osv osv@example.com tess UK Europe -',
          'reserve with a country: RESERVED row with the country and its region');

SELECT FROM t.mark();
SELECT code AS c1, reservation_token AS t1 FROM psk_reserve('osv@example.com', 'tess') \gset
SELECT is(t.logged(), format('RESERVED %s OSV osv osv@example.com tess - - -', :'c1'),
          'reserve without a country: no place');

SELECT FROM t.mark();
SELECT FROM psk_confirm('osv@example.com', :'c1', :'t1');
SELECT is(t.logged(), format('CONFIRMED %s OSV osv osv@example.com tess - - -', :'c1'),
          'confirm: CONFIRMED row by the holder, with the tester');

SELECT FROM t.mark();
SELECT FROM psk_comment('osv@example.com', :'c1', 'looks fine');
SELECT is(t.logged(), format('COMMENTED %s OSV osv osv@example.com tess - - looks fine', :'c1'),
          'comment: COMMENTED row with the comment as note');
SELECT is((SELECT status FROM psk.codes WHERE code = :'c1'), 'IN_USE', 'a comment changes no state');

SELECT FROM t.mark();
SELECT FROM psk_release('osv@example.com', :'c1', 'CLR-9', 'done');
SELECT is(t.logged(), format('RELEASED %s OSV osv osv@example.com tess - - CLR-9', :'c1'),
          'release with a clearance id and a note: the note of the row is the clearance id');

SELECT FROM t.mark();
SELECT FROM psk_release('osv@example.com', 'AU-UK', NULL, 'not needed');
SELECT is(t.logged(), 'RELEASED AU-UK OSV osv osv@example.com tess - - not needed',
          'release with a note only: the note');

------------------------------------------------------------------------
-- several codes at once: one row each, in the order handed out
------------------------------------------------------------------------
SELECT FROM t.mark();
CREATE TEMP TABLE two AS SELECT * FROM psk_reserve('osv@example.com', 'tina', how_many => 2);
SELECT is(t.logged(),
          (SELECT string_agg(format('RESERVED %s OSV osv osv@example.com tina - - -', code), ' ; ')
             FROM two),
          'reserve of two codes: two RESERVED rows');
SELECT code AS c2 FROM two LIMIT 1 \gset
SELECT code AS c3 FROM two OFFSET 1 \gset

------------------------------------------------------------------------
-- DISASSOCIATED: the admin is the actor, the tester is the holder's
------------------------------------------------------------------------
SELECT FROM t.mark();
SELECT FROM psk_disassociate('admin@example.com', :'c2', 'left the team');
SELECT is(t.logged(), format('DISASSOCIATED %s OSV admin admin@example.com tina - - left the team', :'c2'),
          'disassociate: DISASSOCIATED row by the admin, with the note');

------------------------------------------------------------------------
-- EXPIRED: the actor is the holder whose reservation lapsed
------------------------------------------------------------------------
SET LOCAL psk.reservation_ttl = '10min';
SELECT code AS c4, reservation_token AS t4 FROM psk_reserve('osv@example.com', 'eve') \gset
SELECT code AS h1 FROM psk_reserve('hsv@example.com', 'hank') \gset
SET LOCAL psk.reservation_ttl = 0;
SELECT FROM t.backdate(:'c4', '1h');
SELECT FROM t.backdate(:'h1', '1h');
SELECT * FROM t.refused(format('SELECT * FROM psk_confirm(%L, %L, %L)', 'osv@example.com', :'c4', :'t4'),
                        'PK006', 'confirm of an overdue reservation');
SELECT FROM t.mark();
SELECT is(array(SELECT psk_expire_reservations() ORDER BY 1), ARRAY[:'c4', :'h1'] , 'two reservations expire');
SELECT is(t.logged(true),
          format('EXPIRED %s OSV osv osv@example.com eve - - - ; EXPIRED %s HSV hsv hsv@example.com hank - - -',
                 :'c4', :'h1'),
          'expire: one EXPIRED row per code, each by its holder');
SELECT FROM t.mark();
SELECT is(array(SELECT psk_expire_reservations()), '{}'::text[], 'nothing left to expire');
SELECT is(t.logged(), '(nothing)', 'a sweep that expires nothing writes nothing');

------------------------------------------------------------------------
-- MARKED_NON_USABLE, RESTORED, DELETED
------------------------------------------------------------------------
SELECT FROM t.mark();
SELECT FROM psk_mark_non_usable('osv@example.com', :'c3', 'scratched');
SELECT is(t.logged(), format('MARKED_NON_USABLE %s OSV osv osv@example.com tina - - scratched', :'c3'),
          'mark non-usable by the holder: the reason as note');

SELECT FROM t.mark();
SELECT FROM psk_restore('admin@example.com', :'c3');
SELECT is(t.logged(), format('RESTORED %s OSV admin admin@example.com - - - -', :'c3'),
          'restore: RESTORED row by the admin');

SELECT FROM t.mark();
SELECT FROM psk_mark_non_usable('admin@example.com', 'AU-C1', 'broken');
SELECT is(t.logged(), 'MARKED_NON_USABLE AU-C1 COMMON admin admin@example.com - - - broken',
          'mark non-usable of a free code by an admin');

SELECT FROM t.mark();
SELECT FROM psk_delete_code('admin@example.com', 'AU-C1');
SELECT is(t.logged(), 'DELETED AU-C1 COMMON admin admin@example.com - - - was NON_USABLE',
          'delete: DELETED row by the admin, noting the state the code was in');

------------------------------------------------------------------------
-- refused calls write nothing (t.refused compares every table, the log too)
------------------------------------------------------------------------
SELECT code AS c5, reservation_token AS t5 FROM psk_reserve('hsv@example.com', 'tess') \gset
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('admin@example.com', 'tess')$$,
                        'PK003', 'reserve by an admin');
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'tess', how_many => 100)$$,
                        'PK001', 'reserve of more codes than there are',
                        writes_first => true);
SELECT * FROM t.refused($$SELECT * FROM psk_reserve('osv@example.com', 'tess', how_many => 0)$$,
                        'PK007', 'reserve of no code');
SELECT * FROM t.refused(format('SELECT * FROM psk_confirm(%L, %L, gen_random_uuid())', 'hsv@example.com', :'c5'),
                        'PK005', 'confirm with another token');
SELECT * FROM t.refused(format('SELECT * FROM psk_release(%L, %L)', 'osv@example.com', :'c5'),
                        'PK003', 'release by another user');
SELECT * FROM t.refused(format('SELECT * FROM psk_comment(%L, %L, %L)', 'osv@example.com', :'c5', 'mine'),
                        'PK003', 'comment by another user');
SELECT * FROM t.refused(format('SELECT * FROM psk_mark_non_usable(%L, %L, %L)', 'osv@example.com', :'c5', 'x'),
                        'PK003', 'mark non-usable by another user');
SELECT * FROM t.refused(format('SELECT * FROM psk_delete_code(%L, %L)', 'admin@example.com', :'c5'),
                        'PK004', 'delete a held code');
SELECT * FROM t.refused(format('SELECT * FROM psk_disassociate(%L, %L)', 'admin@example.com', :'c2'),
                        'PK004', 'disassociate a free code');
SELECT * FROM t.refused(format('SELECT * FROM psk_restore(%L, %L)', 'admin@example.com', :'c2'),
                        'PK004', 'restore a free code');
SELECT * FROM t.refused($$SELECT * FROM psk_add_codes('osv@example.com', 'OSV', ARRAY['AU-9'])$$,
                        'PK003', 'add codes as a user');
SELECT * FROM t.refused($$SELECT * FROM psk_delete_code('admin@example.com', 'AU-C1')$$,
                        'PK002', 'delete a code that is gone');

------------------------------------------------------------------------
-- the log as a whole
------------------------------------------------------------------------
SELECT is(array(SELECT action FROM psk.audit_log WHERE code = :'c1' ORDER BY id),
          ARRAY['ADDED', 'RESERVED', 'CONFIRMED', 'COMMENTED', 'RELEASED'],
          'per code, ids follow the order of its transitions');
SELECT is(array(SELECT action FROM psk.audit_log WHERE code = :'c3' ORDER BY id),
          ARRAY['ADDED', 'RESERVED', 'MARKED_NON_USABLE', 'RESTORED'],
          'per code, ids follow the order of its transitions (2)');
SELECT is((SELECT count(*) FROM (SELECT logged_at < lag(logged_at) OVER (ORDER BY id) AS back
                                   FROM psk.audit_log) s WHERE back), 0::bigint,
          'logged_at never goes back as ids increase');
SELECT is((SELECT count(*) FROM psk.audit_log a
            WHERE a.code IS NOT NULL AND a.user_id IS DISTINCT FROM
                  (SELECT u.id FROM psk.users u WHERE u.email = a.contact_email)), 0::bigint,
          'every code row names its actor by id, name and e-mail');
SELECT is((SELECT string_agg(r_status, ' ') FROM t.replay() WHERE r_status LIKE 'ILLEGAL%'), NULL,
          'replaying the log, every action is legal in the state the previous ones left');
SELECT set_eq($$SELECT r_code, r_status FROM t.replay() WHERE r_status <> 'GONE'$$,
              $$SELECT code, status FROM psk.codes$$,
              'replaying the log gives the current status of every code, and deleted codes are gone');

-- A replay that would miss a change: a code changed behind the log's back
-- is caught (the check above can fail).
UPDATE psk.codes SET status = 'NON_USABLE' WHERE code = 'AU-4';
SELECT is((SELECT count(*) FROM t.replay() r JOIN psk.codes c ON c.code = r.r_code
            WHERE c.status <> r.r_status), 1::bigint,
          'a change without its audit row shows up in the replay');

SELECT * FROM finish();
ROLLBACK;
