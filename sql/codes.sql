-- Changing single codes: psk_mark_non_usable, psk_restore, psk_comment,
-- psk_disassociate, psk_delete_code.
\i test/fixtures/reset.sql
\i test/fixtures/engine.sql
SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV',
    ARRAY['O1', 'O2', 'O3', 'O4', 'O5', 'O6'], ARRAY['UK', 'DE']);
SELECT count(*) FROM psk_add_codes('admin@example.com', 'HSV', ARRAY['H1', 'H2']);
SELECT count(*) FROM psk_add_codes('admin@example.com', 'COMMON', ARRAY['C1']);
-- osv holds O1, O2 (confirmed) and O3; hsv holds H1 and H2
SELECT code FROM psk_reserve('osv@example.com', 'tess', how_many => 3);
SELECT reservation_token AS token FROM psk.codes WHERE code = 'O2' \gset
SELECT code, status FROM psk_confirm('osv@example.com', 'O2', :'token');
SELECT code FROM psk_reserve('hsv@example.com', 'hank', how_many => 2);

--
-- psk_mark_non_usable: the holder, or an admin for any code
--
SELECT test.mark() AS mark \gset
SELECT * FROM psk_mark_non_usable('osv@example.com', ' o1 ', 'scratched');
SELECT * FROM psk_mark_non_usable('OSV@example.com', 'O2', 'label torn');
SELECT * FROM psk_mark_non_usable('admin@example.com', 'H1', 'recalled');
SELECT * FROM psk_mark_non_usable('admin@example.com', 'O4', 'damaged in store');
SELECT * FROM test.codes();
SELECT * FROM test.audit_after(:mark);
-- refusals, in the order of the checks
SELECT test.state() AS before \gset
SELECT test.err($$SELECT psk_mark_non_usable(NULL, 'O5', 'x')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_mark_non_usable('', 'O5', 'x')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_mark_non_usable('nobody@example.com', 'O5', NULL)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_mark_non_usable('osv@example.com', 'NOPE', NULL)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_mark_non_usable('osv@example.com', 'O3', ' ')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_mark_non_usable('osv@example.com', 'O3', repeat('r', 1001))$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_mark_non_usable('osv@example.com', NULL, 'x')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_mark_non_usable('osv@example.com', repeat('C', 129), 'x')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_mark_non_usable('osv@example.com', 'NOPE', 'x')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_mark_non_usable('hsv@example.com', 'O1', 'x')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_mark_non_usable('admin@example.com', 'o1', 'x')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_mark_non_usable('osv@example.com', 'O5', 'x')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_mark_non_usable('osv@example.com', 'H2', 'x')$$) AS error, test.state() = :'before' AS unchanged;
-- a reason of exactly 1000 characters is fine
SELECT code, status FROM psk_mark_non_usable('osv@example.com', 'O3', repeat('r', 1000));
SELECT length(note) FROM psk.codes WHERE code = 'O3';

--
-- psk_restore: NON_USABLE back to CAN_BE_USED, as just freed
--
SELECT test.mark() AS mark \gset
SELECT * FROM psk_restore('Admin@Example.com', ' o1');
SELECT * FROM test.codes() WHERE code = 'O1';
SELECT * FROM test.audit_after(:mark);
SELECT c.freed_at = a.logged_at AS freed_now
  FROM psk.codes c JOIN psk.audit_log a ON a.code = c.code AND a.action = 'RESTORED'
 WHERE c.code = 'O1';
SELECT test.state() AS before \gset
SELECT test.err($$SELECT psk_restore(NULL, 'O2')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_restore('osv@example.com', 'O2')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_restore('nobody@example.com', 'O2')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_restore('admin@example.com', NULL)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_restore('admin@example.com', 'NOPE')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_restore('admin@example.com', 'O1')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_restore('admin@example.com', 'H2')$$) AS error, test.state() = :'before' AS unchanged;

--
-- psk_comment: the holder's note on a held code
--
SELECT test.mark() AS mark \gset
SELECT * FROM psk_comment('hsv@example.com', ' h2 ', 'on bench 4');
SELECT * FROM test.codes() WHERE code = 'H2';
SELECT * FROM test.audit_after(:mark);
SELECT test.state() AS before \gset
SELECT test.err($$SELECT psk_comment(NULL, 'H2', 'x')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_comment('admin@example.com', 'H2', 'x')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_comment('nobody@example.com', 'H2', 'x')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_comment('hsv@example.com', NULL, 'x')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_comment('hsv@example.com', 'H2', NULL)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_comment('hsv@example.com', 'H2', '')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_comment('hsv@example.com', 'H2', repeat('c', 1001))$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_comment('hsv@example.com', 'NOPE', 'x')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_comment('hsv@example.com', 'O5', 'x')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_comment('hsv@example.com', 'H1', 'x')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_comment('osv@example.com', 'H2', 'x')$$) AS error, test.state() = :'before' AS unchanged;

--
-- psk_disassociate: an admin takes a held code back
--
-- osv holds O5 (reserved); hsv holds H2 (confirmed, with a comment)
SELECT code FROM psk_reserve('osv@example.com', 'tess');
SELECT reservation_token AS token FROM psk.codes WHERE code = 'H2' \gset
SELECT code, status FROM psk_confirm('hsv@example.com', 'H2', :'token');
SELECT test.mark() AS mark \gset
SELECT * FROM psk_disassociate('admin@example.com', 'o5', 'left the team');
SELECT * FROM psk_disassociate('admin@example.com', 'H2');
SELECT * FROM test.codes() WHERE code IN ('O5', 'H2');
SELECT * FROM test.audit_after(:mark);
SELECT bool_and(c.freed_at = a.logged_at) AS freed_now
  FROM psk.codes c JOIN psk.audit_log a ON a.code = c.code AND a.action = 'DISASSOCIATED';
SELECT test.state() AS before \gset
SELECT test.err($$SELECT psk_disassociate(NULL, 'O6')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_disassociate('osv@example.com', 'O6')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_disassociate('nobody@example.com', 'O6')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_disassociate('admin@example.com', NULL)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_disassociate('admin@example.com', 'O6', repeat('n', 1001))$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_disassociate('admin@example.com', 'NOPE')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_disassociate('admin@example.com', 'O5')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_disassociate('admin@example.com', 'O4')$$) AS error, test.state() = :'before' AS unchanged;

--
-- psk_delete_code: only a code nobody holds; its countries go with it
--
-- osv takes two: O6 (never used) first, then O1 (freed longest ago, by the
-- restore); O1 gets confirmed
SELECT code FROM psk_reserve('osv@example.com', 'tess', how_many => 2);
SELECT reservation_token AS token FROM psk.codes WHERE code = 'O1' \gset
SELECT code, status FROM psk_confirm('osv@example.com', 'O1', :'token');
SELECT id AS o5_id FROM psk.codes WHERE code = 'O5' \gset
SELECT test.mark() AS mark \gset
SELECT * FROM psk_delete_code('admin@example.com', ' o5 ');
SELECT * FROM psk_delete_code('admin@example.com', 'O4');
SELECT code, status FROM test.codes();
SELECT count(*) AS o5_countries FROM psk.code_countries WHERE code_id = :o5_id;
SELECT * FROM test.audit_after(:mark);
SELECT test.state() AS before \gset
SELECT test.err($$SELECT psk_delete_code(NULL, 'C1')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_delete_code('osv@example.com', 'C1')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_delete_code('nobody@example.com', 'C1')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_delete_code('admin@example.com', NULL)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_delete_code('admin@example.com', 'O5')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_delete_code('admin@example.com', 'O6')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_delete_code('admin@example.com', 'O1')$$) AS error, test.state() = :'before' AS unchanged;
-- a deleted code can be added again; its history stays in the log
SELECT * FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['O5']);
SELECT action, note FROM psk.audit_log WHERE code = 'O5' ORDER BY id;
