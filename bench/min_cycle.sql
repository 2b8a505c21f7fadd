-- The minimal cycle (run m): reserve + release hand-written on the minimal
-- tables of bench/min_schema.sql (a primary key and one partial free-code
-- index; a log with a primary key only), the same steps as bench/sql_cycle.sql
-- (row lock with SKIP LOCKED, update, log row; the release by id).  What psk
-- is measured against (c/m).  pgbench client :client_id is user :client_id + 2.
\set uid :client_id + 2
WITH picked AS (
    SELECT id FROM codes
     WHERE status = 'CAN_BE_USED' AND pool = 'OSV'
     ORDER BY freed_at NULLS FIRST, id
     LIMIT 1 FOR UPDATE SKIP LOCKED
), reserved AS (
    UPDATE codes c
       SET status = 'RESERVED', holder_id = :uid, tester_name = 'bench',
           reserved_at = now(), reservation_token = gen_random_uuid()
      FROM picked WHERE c.id = picked.id
    RETURNING c.id, c.code, c.pool
), logged AS (
    INSERT INTO log (action, code, code_type, user_id, tester_name)
    SELECT 'RESERVED', code, pool, :uid, 'bench' FROM reserved
)
SELECT id AS code_id FROM reserved
\gset
WITH released AS (
    UPDATE codes
       SET status = 'CAN_BE_USED', holder_id = NULL, tester_name = NULL,
           reserved_at = NULL, reservation_token = NULL,
           released_at = now(), freed_at = now()
     WHERE id = :code_id AND holder_id = :uid
    RETURNING code, pool
)
INSERT INTO log (action, code, code_type, user_id)
SELECT 'RELEASED', code, pool, :uid FROM released;
