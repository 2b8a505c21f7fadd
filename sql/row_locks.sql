-- Reserve and release change a code without locking its row first when the
-- version their snapshot sees is still the newest and unlocked
-- (psk_code_try_update, writer.c); otherwise they lock it, as FOR NO KEY
-- UPDATE [SKIP LOCKED] would, and look again.  Each case below takes the
-- second way and checks what came out: the code's state, the audit rows,
-- and that nothing waited that should not (lock_timeout turns a wait into
-- an error).  A second session comes through dblink.
\i test/fixtures/reset.sql
\i test/fixtures/engine.sql
\set VERBOSITY terse
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT dblink_connect('other', 'dbname=' || current_database() || ' port=' || current_setting('port') || ' host=127.0.0.1 user=postgres') AS other;
SELECT pid AS other_pid FROM dblink('other', 'SELECT pg_backend_pid()') AS t(pid int) \gset
SET lock_timeout = '5s';
-- until the other session waits for a lock (at most 10 s)
CREATE FUNCTION test.other_waits(pid int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..1000 LOOP
        IF EXISTS (SELECT FROM pg_stat_activity a WHERE a.pid = other_waits.pid
                      AND a.wait_event_type = 'Lock') THEN
            RETURN 'waits for a lock';
        END IF;
        PERFORM pg_sleep(0.01);
        PERFORM pg_stat_clear_snapshot();
    END LOOP;
    RETURN 'never waited';
END $$;

SELECT count(*) FROM psk_add_codes('admin@example.com', 'HSV', ARRAY['RL-1', 'RL-2', 'RL-3']);
SELECT test.mark() AS m0 \gset

-- 1. The row locked by the caller's own transaction: released on the
--    locked path, once, with its audit row
BEGIN;
SELECT code FROM psk_reserve('hsv@example.com', 'own lock');
SELECT code FROM psk.codes WHERE code = 'RL-1' FOR NO KEY UPDATE;
SELECT code FROM psk_release('hsv@example.com', 'RL-1', note => 'after own lock');
COMMIT;
SELECT code, status, holder, note FROM test.codes() WHERE code = 'RL-1';

-- 2. Every free code of the pool KEY SHARE locked by this transaction: the
--    reserve still gets the oldest free one (the lock does not conflict)
BEGIN;
SELECT count(*) FROM (SELECT 1 FROM psk.codes WHERE pool = 'HSV' AND status = 'CAN_BE_USED' FOR KEY SHARE) s;
SELECT code FROM psk_reserve('hsv@example.com', 'key share');
COMMIT;

-- 3. Another session's KEY SHARE lock (as a foreign key check takes): a
--    release does not wait for it
SELECT * FROM dblink_exec('other', 'BEGIN');
SELECT * FROM dblink('other', $$SELECT code FROM psk.codes WHERE code = 'RL-2' FOR KEY SHARE$$) AS t(code text);
SELECT code FROM psk_release('hsv@example.com', 'RL-2', note => 'past a key share');
SELECT * FROM dblink_exec('other', 'COMMIT');

-- 4. Another session's FOR UPDATE lock: a reserve skips that code, without
--    waiting, and takes the next one
SELECT * FROM dblink_exec('other', 'BEGIN');
SELECT * FROM dblink('other', $$SELECT code FROM psk.codes WHERE code = 'RL-3' FOR UPDATE$$) AS t(code text);
SELECT code FROM psk_reserve('hsv@example.com', 'skips RL-3', how_many => 2);
SELECT * FROM dblink_exec('other', 'ROLLBACK');

-- 5. Two releases of one code: the second finds the first's change under
--    way, waits for it (the locked path) and then refuses on the newest
--    version, which is free; the code was freed once, with one audit row
BEGIN;
SELECT code FROM psk_release('hsv@example.com', 'RL-1', note => 'first');
SELECT dblink_send_query('other', $$SELECT code FROM psk_release('hsv@example.com', 'RL-1', note => 'second')$$) AS sent;
SELECT test.other_waits(:other_pid);
COMMIT;
SELECT * FROM dblink_get_result('other', false) AS t(code text);
SELECT * FROM dblink_get_result('other') AS t(code text);

-- 6. A reserve that meets a code reserved by another session's open
--    transaction: that code is skipped, no wait, and the reserve takes a
--    free one
SELECT code FROM psk_release('hsv@example.com', 'RL-2');
SELECT * FROM dblink_exec('other', 'BEGIN');
SELECT * FROM dblink('other', $$SELECT code FROM psk_reserve('hsv@example.com', 'other session')$$) AS t(code text);
SELECT code FROM psk_reserve('hsv@example.com', 'this session');
SELECT * FROM dblink_exec('other', 'COMMIT');

SELECT code, status, holder, tester_name, note FROM test.codes() WHERE code LIKE 'RL-%' ORDER BY code;
SELECT action, code, actor_ok, tester_name, note FROM test.audit_after(:m0);

-- 7. An HTTP reserve while another transaction changes the caller's users
--    row (a new e-mail, which locks it FOR UPDATE): the session lookup saw
--    the old version; the reserve waits, locks the newest version of the
--    same user (psk_require_caller, actor.c) and holds the code as that
--    user, where psk_reserve by the old e-mail would find nobody
SELECT id AS rl_id FROM psk_create_user('admin@example.com', 'QA', 'Row Lock', 'rowlock@example.com', 'Rdl@12345', pool => 'HSV') \gset
SELECT access_token AS rl_token FROM psk_login('rowlock@example.com', 'Rdl@12345') \gset
SELECT code FROM psk_release('hsv@example.com', 'RL-3');
BEGIN;
SELECT count(*) FROM psk_update_user('admin@example.com', :rl_id, email => 'rowlock2@example.com');
SELECT dblink_send_query('other', format($$SELECT psk.http_reserve(%L, '{"tester_name": "renamed"}', '{}')::jsonb ->> 'code'$$, :'rl_token')) AS sent;
SELECT test.other_waits(:other_pid);
COMMIT;
SELECT * FROM dblink_get_result('other', false) AS t(code text);
SELECT * FROM dblink_get_result('other') AS t(code text);
SELECT code, status, holder, tester_name FROM test.codes() WHERE tester_name = 'renamed';

-- 8. The same with the caller deleted meanwhile: not_allowed, nothing held
SELECT id AS rl_gone FROM psk_create_user('admin@example.com', 'QA', 'Row Lock 3', 'rowlock3@example.com', 'Rdl@12345', pool => 'HSV') \gset
SELECT access_token AS rl_gone_token FROM psk_login('rowlock3@example.com', 'Rdl@12345') \gset
BEGIN;
SELECT count(*) FROM psk_delete_user('admin@example.com', :rl_gone);
SELECT dblink_send_query('other', format($$SELECT psk.http_reserve(%L, '{"tester_name": "deleted"}', '{}')::jsonb ->> 'code'$$, :'rl_gone_token')) AS sent;
SELECT test.other_waits(:other_pid);
COMMIT;
SELECT * FROM dblink_get_result('other', false) AS t(code text);
SELECT * FROM dblink_get_result('other') AS t(code text);
SELECT count(*) AS held_by_deleted FROM test.codes() WHERE tester_name = 'deleted';
SELECT action, code, actor_ok, tester_name FROM test.audit_after(:m0) WHERE tester_name IN ('renamed', 'deleted');

-- 9. No foreign key on psk.codes.holder_id (holders.c): the trigger on
--    psk.users refuses to delete a holder, or to change its id, even by
--    plain SQL (23503, as the key did); the user and the hold stay
SELECT count(*) FROM psk_add_codes('admin@example.com', 'HSV', ARRAY['RL-4', 'RL-5']);
SELECT id AS rl_keep FROM psk_create_user('admin@example.com', 'QA', 'Row Lock 4', 'rowlock4@example.com', 'Rdl@12345', pool => 'HSV') \gset
SELECT code AS rl_keep_code FROM psk_reserve('rowlock4@example.com', 'kept') \gset
\set VERBOSITY default
DELETE FROM psk.users WHERE id = :rl_keep;
\echo :LAST_ERROR_SQLSTATE
UPDATE psk.users SET id = DEFAULT WHERE id = :rl_keep;
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
SELECT u.email, c.code = :'rl_keep_code' AS same_code, c.status, c.holder
  FROM psk.users u JOIN test.codes() c ON c.holder = u.email WHERE u.id = :rl_keep;
-- released, the user goes (the trigger lets a non-holder pass)
SELECT count(*) FROM psk_release('rowlock4@example.com', :'rl_keep_code');
SELECT id = :rl_keep AS deleted FROM psk_delete_user('admin@example.com', :rl_keep);

-- 10. A plain DELETE of a user whose reserve is in flight: it waits for
--     the reserve's KEY SHARE lock, then finds the committed hold and is
--     refused; the user keeps the code
SELECT id AS rl_race FROM psk_create_user('admin@example.com', 'QA', 'Row Lock 5', 'rowlock5@example.com', 'Rdl@12345', pool => 'HSV') \gset
BEGIN;
SELECT code AS rl_race_code FROM psk_reserve('rowlock5@example.com', 'racing') \gset
SELECT dblink_send_query('other', format('DELETE FROM psk.users WHERE id = %s RETURNING email', :rl_race)) AS sent;
SELECT test.other_waits(:other_pid);
COMMIT;
SELECT * FROM dblink_get_result('other', false) AS t(email text);
SELECT * FROM dblink_get_result('other') AS t(email text);
SELECT c.code = :'rl_race_code' AS same_code, c.status, c.holder FROM test.codes() c WHERE c.tester_name = 'racing';

-- 11. psk_delete_user under REPEATABLE READ, after a reserve committed
--     since its snapshot: its own count cannot see that hold, the trigger's
--     fresh snapshot does; conflict, and the user and the hold stay
SELECT count(*) FROM psk_release('rowlock5@example.com', :'rl_race_code');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) AS held_before FROM psk.codes WHERE holder_id = :rl_race;
SELECT code FROM dblink('other', $$SELECT code FROM psk_reserve('rowlock5@example.com', 'unseen')$$) AS t(code text) \gset rr_
SELECT count(*) FROM psk_delete_user('admin@example.com', :rl_race);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT c.code = :'rr_code' AS same_code, c.status, c.holder FROM test.codes() c WHERE c.tester_name = 'unseen';
SELECT action, code, actor_ok, tester_name FROM test.audit_after(:m0) WHERE tester_name IN ('kept', 'racing', 'unseen') OR action = 'USER_DELETED';

SELECT dblink_disconnect('other');
