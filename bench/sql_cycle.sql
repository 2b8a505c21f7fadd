-- Baseline: a hand-written reserve + release cycle in plain SQL, with the
-- same row lock (FOR UPDATE SKIP LOCKED), update and audit insert psk does.
-- pgbench client :client_id (from 0) is bench user :client_id + 1, of user
-- id :client_id + 2 (bench/common.sh checks it), as in bench/psk_cycle.sql
\set uid :client_id + 2
WITH picked AS (
    SELECT id FROM psk.codes
     WHERE status = 'CAN_BE_USED' AND pool = 'OSV'
     ORDER BY freed_at NULLS FIRST, id
     LIMIT 1 FOR UPDATE SKIP LOCKED
), reserved AS (
    UPDATE psk.codes c
       SET status = 'RESERVED', holder_id = :uid, tester_name = 'bench',
           reserved_at = now(), reservation_token = gen_random_uuid()
      FROM picked WHERE c.id = picked.id
    RETURNING c.code, c.pool
)
INSERT INTO psk.audit_log (action, code, code_type, user_id, tester_name)
SELECT 'RESERVED', code, code_type, :uid, 'bench' FROM (SELECT code, pool AS code_type FROM reserved) r
RETURNING code
\gset
WITH released AS (
    UPDATE psk.codes
       SET status = 'CAN_BE_USED', holder_id = NULL, tester_name = NULL,
           reserved_at = NULL, reservation_token = NULL,
           released_at = now(), freed_at = now()
     WHERE code = :code AND holder_id = :uid
    RETURNING code, pool
)
INSERT INTO psk.audit_log (action, code, code_type, user_id)
SELECT 'RELEASED', code, pool, :uid FROM released;
