-- The promises, checked after a round of load against what the clients
-- were told (stress.acks), the audit log and the tables.  One line per
-- check, "ok - NAME" or "not ok - NAME: how many, e.g. ..."; figures on
-- lines starting with "#".  psql variable: label (prefix of every name).
--
-- The clients act each on their own codes, every call in its own
-- transaction, so for one actor (and one round) the audit rows on a code,
-- in id order, are exactly the changes that actor was told about, in the
-- order it made them.  A call whose connection died (lost: the crash)
-- may or may not have committed, all of it or nothing.
\set ON_ERROR_STOP on
\set QUIET on
SET client_min_messages = warning;

-- A check's line: ok when there are no violations.
CREATE FUNCTION pg_temp.verdict(name text, details text[]) RETURNS text
LANGUAGE sql AS $$
    SELECT CASE WHEN coalesce(cardinality(details), 0) = 0
                THEN format('ok - %s', name)
                ELSE format('not ok - %s: %s, e.g. %s', name, cardinality(details),
                            array_to_string(details[1:3], '; '))
           END
$$;

-- Audit rows on codes, with their round.
CREATE TEMP TABLE events AS
SELECT a.id, a.action, a.code, a.code_type, lower(a.contact_email) AS actor,
       a.user_id, a.subject_user_id,
       (SELECT max(r.round) FROM stress.rounds r WHERE r.first_audit_id < a.id) AS round
  FROM psk.audit_log a
 WHERE a.code IS NOT NULL;

-- The log replayed per code: each row's state before (from the previous
-- row) and after (from its action).
CREATE TEMP TABLE replay AS
WITH ev AS (
    SELECT e.*, coalesce(u.is_admin, false) AS by_admin,
           CASE e.action
               WHEN 'RESERVED' THEN 'RESERVED'
               WHEN 'CONFIRMED' THEN 'IN_USE'
               WHEN 'MARKED_NON_USABLE' THEN 'NON_USABLE'
               WHEN 'DELETED' THEN 'GONE'
               ELSE 'CAN_BE_USED'   -- ADDED, RELEASED, EXPIRED, DISASSOCIATED, RESTORED
           END AS after_status,
           CASE WHEN e.action IN ('RESERVED', 'CONFIRMED') THEN e.user_id END AS after_holder
      FROM events e LEFT JOIN psk.users u ON u.id = e.user_id
     WHERE e.action NOT IN ('COMMENTED', 'RENEWED')
)
SELECT ev.*,
       lag(after_status) OVER w AS before_status,
       lag(after_holder) OVER w AS before_holder,
       row_number() OVER (PARTITION BY code ORDER BY id DESC) = 1 AS is_last
  FROM ev
WINDOW w AS (PARTITION BY code ORDER BY id);

-- Acknowledged changes and audit rows, side by side: per round, actor and
-- code, the n-th of each.  EXPIRED rows are told to the expirer (actor
-- NULL here) and matched per round and code.
CREATE TEMP TABLE matched AS
WITH ack AS (
    SELECT k.round, k.client, k.actor,
           CASE WHEN k.op = 'expire' THEN '(expiry)' ELSE k.actor END AS who,
           k.seq, k.op, m.action, k.code, k.token
      FROM stress.acks k JOIN stress.op_actions m USING (op)
     WHERE k.result = 'ok'
), aud AS (
    SELECT e.round, e.actor,
           CASE WHEN e.action = 'EXPIRED' THEN '(expiry)' ELSE e.actor END AS who,
           e.id, e.action, e.code
      FROM events e
     WHERE e.round IS NOT NULL
       AND e.action IN ('RESERVED', 'CONFIRMED', 'RELEASED', 'EXPIRED',
                        'MARKED_NON_USABLE', 'DISASSOCIATED', 'RESTORED')
)
SELECT coalesce(k.round, a.round) AS round, coalesce(k.who, a.who) AS who,
       coalesce(k.code, a.code) AS code,
       k.client, k.seq, k.op, k.action AS ack_action, k.token,
       a.id AS audit_id, a.action AS audit_action, a.actor AS audit_actor
  FROM (SELECT *, row_number() OVER (PARTITION BY round, who, code ORDER BY seq) AS n
          FROM ack) k
  FULL JOIN (SELECT *, row_number() OVER (PARTITION BY round, who, code ORDER BY id) AS n
               FROM aud) a
    ON a.round = k.round AND a.who = k.who AND a.code = k.code AND a.n = k.n;

-- Calls cut off by the crash.
CREATE TEMP TABLE lost AS
SELECT k.round, k.client, k.actor, k.op, m.action, k.code, k.how_many
  FROM stress.acks k LEFT JOIN stress.op_actions m USING (op)
 WHERE k.result = 'lost';

-- Audit rows that no client was told about, and the lost call that may
-- explain them.
CREATE TEMP TABLE untold AS
SELECT m.*, l.client AS lost_client, l.op AS lost_op, l.action AS lost_action,
       l.code AS lost_code, l.how_many AS lost_how_many
  FROM matched m
  LEFT JOIN lost l
    ON l.round = m.round
   AND CASE WHEN m.who = '(expiry)' THEN l.op = 'expire' ELSE l.actor = m.who END
 WHERE m.client IS NULL;

-- amcheck's findings on every psk table and btree index.
CREATE FUNCTION pg_temp.amcheck() RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    i regclass;
BEGIN
    FOR i IN SELECT c.oid FROM pg_class c JOIN pg_am a ON a.oid = c.relam
              WHERE c.relnamespace = 'psk'::regnamespace AND a.amname = 'btree'
    LOOP
        BEGIN
            PERFORM bt_index_parent_check(i, true, true);
        EXCEPTION WHEN OTHERS THEN
            RETURN NEXT format('%s: %s', i, SQLERRM);
        END;
    END LOOP;
    RETURN QUERY
        SELECT format('%s block %s: %s', t.oid::regclass, v.blkno, v.msg)
          FROM pg_class t, LATERAL verify_heapam(t.oid) v
         WHERE t.relnamespace = 'psk'::regnamespace AND t.relkind = 'r';
END
$$;

-- What each client was last told about each code it reserved, where that
-- is "you hold it" (reserve or confirm) and nothing took the code away
-- since: no later expiry, disassociation or mark in the log, and no lost
-- call of that client on that code.
CREATE TEMP TABLE believed AS
WITH last AS (
    SELECT DISTINCT ON (k.round, k.client, k.code)
           k.round, k.client, k.actor, k.code, k.op, k.seq, k.token
      FROM stress.acks k
     WHERE k.result = 'ok' AND k.op IN ('reserve', 'confirm', 'release', 'mark')
     ORDER BY k.round, k.client, k.code, k.seq DESC
)
SELECT l.*, m.audit_id
  FROM last l
  LEFT JOIN matched m ON m.round = l.round AND m.client = l.client
                     AND m.code = l.code AND m.seq = l.seq
 WHERE l.op IN ('reserve', 'confirm')
   AND NOT EXISTS (SELECT FROM events e
                    WHERE e.code = l.code AND e.id > m.audit_id
                      AND e.action IN ('EXPIRED', 'DISASSOCIATED', 'MARKED_NON_USABLE'))
   AND NOT EXISTS (SELECT FROM lost x
                    WHERE x.round = l.round AND x.client = l.client AND x.code = l.code);

\pset format unaligned
\pset tuples_only on

-- 1. Every refusal a client met was one this load can cause; a wrong token
-- never confirmed; a reserve gave all its codes or none.
SELECT pg_temp.verdict(:'label' || 'clients met only expected refusals', array(
    SELECT format('%s %s %s got %s', k.client, k.op, k.code, k.sqlstate)
      FROM stress.acks k
     WHERE k.result = 'err'
       AND NOT EXISTS (SELECT FROM stress.expected_errors x
                        WHERE x.op = k.op AND x.sqlstate = k.sqlstate)
    UNION ALL
    SELECT format('%s confirmed %s with a wrong token', client, code)
      FROM stress.acks WHERE op = 'confirm_bad' AND result = 'ok'
    UNION ALL
    SELECT format('%s round %s call %s: %s codes for how_many %s',
                  client, round, seq, count(*), min(how_many))
      FROM stress.acks WHERE op = 'reserve' AND result = 'ok'
     GROUP BY round, client, seq
    HAVING count(*) <> min(how_many) OR count(DISTINCT code) <> count(*)));

-- 2. Connections die only in a crash round, and then once per client.
SELECT pg_temp.verdict(:'label' || 'calls cut off only by the crash, one per client at most', array(
    SELECT format('round %s (%s): %s lost %s calls', k.round, r.kind, k.client, count(*))
      FROM stress.acks k JOIN stress.rounds r USING (round)
     WHERE k.result = 'lost'
     GROUP BY k.round, r.kind, k.client
    HAVING r.kind <> 'crash' OR count(*) > 1));

-- 3. No double reservation: a code is reserved only when it is free.
SELECT pg_temp.verdict(:'label' || 'no code reserved while held (audit replay)', array(
    SELECT format('%s: RESERVED by %s (audit %s) while %s by user %s',
                  code, actor, id, coalesce(before_status, 'unknown'), before_holder)
      FROM replay
     WHERE action = 'RESERVED' AND before_status IS DISTINCT FROM 'CAN_BE_USED'
     ORDER BY id));

-- 4. Every other transition follows the lifecycle, by the right actor.
SELECT pg_temp.verdict(:'label' || 'every audited transition is legal', array(
    SELECT format('%s: %s by %s (audit %s) from %s held by %s',
                  code, action, actor, id, coalesce(before_status, 'nothing'), before_holder)
      FROM replay
     WHERE NOT coalesce(CASE action
             WHEN 'ADDED' THEN before_status IS NULL OR before_status = 'GONE'
             WHEN 'RESERVED' THEN before_status = 'CAN_BE_USED' AND NOT by_admin
             WHEN 'CONFIRMED' THEN before_status = 'RESERVED' AND before_holder = user_id
             WHEN 'RELEASED' THEN before_status IN ('RESERVED', 'IN_USE') AND before_holder = user_id
             WHEN 'EXPIRED' THEN before_status IN ('RESERVED', 'IN_USE') AND before_holder = user_id
             WHEN 'DISASSOCIATED' THEN before_status IN ('RESERVED', 'IN_USE') AND by_admin
                                       AND subject_user_id = before_holder
             WHEN 'MARKED_NON_USABLE' THEN before_status IN ('CAN_BE_USED', 'RESERVED', 'IN_USE')
                                           AND (by_admin OR before_holder = user_id)
                                           AND subject_user_id IS NOT DISTINCT FROM before_holder
             WHEN 'RESTORED' THEN before_status = 'NON_USABLE' AND by_admin
             WHEN 'DELETED' THEN before_status IN ('CAN_BE_USED', 'NON_USABLE') AND by_admin
           END, false)
     ORDER BY id));

-- 5. The log replays to the table: status and holder of every code.
SELECT pg_temp.verdict(:'label' || 'the audit log replays to psk.codes', array(
    SELECT format('%s: log says %s/%s, table %s/%s', coalesce(r.code, c.code),
                  coalesce(r.after_status, 'nothing'), r.after_holder,
                  coalesce(c.status, 'nothing'), c.holder_id)
      FROM (SELECT * FROM replay WHERE is_last AND after_status <> 'GONE') r
      FULL JOIN psk.codes c ON c.code = r.code
     WHERE r.after_status IS DISTINCT FROM c.status
        OR r.after_holder IS DISTINCT FROM c.holder_id));

-- 6. The same from the clients' side, trusting no log: a client that acted
-- on a code as its holder had it since its reserve; no one else reserved
-- it, and no expiry, disassociation or admin's mark was told about it, in
-- between.  And no reservation was confirmed once its TTL had run out (the
-- expiry time is set in the reserve's transaction, before its answer).
SELECT pg_temp.verdict(:'label' || 'no code in two hands at once, none confirmed after expiry (client view)', array(
    WITH acts AS (
        SELECT o.round, o.client, o.op, o.code, o.seq, o.t_send, o.ttl,
               (SELECT max(r.t_recv) FROM stress.acks r
                 WHERE r.round = o.round AND r.client = o.client AND r.code = o.code
                   AND r.op = 'reserve' AND r.result = 'ok' AND r.seq < o.seq) AS since
          FROM stress.acks o
         WHERE o.result = 'ok' AND o.op IN ('confirm', 'confirm_bad', 'release', 'mark')
    )
    SELECT format('%s %s %s (call %s) without having reserved it', a.client, a.op, a.code, a.seq)
      FROM acts a WHERE a.since IS NULL
    UNION ALL
    SELECT format('%s %s %s (call %s) after %s %s it (call %s)',
                  a.client, a.op, a.code, a.seq, b.client, b.op, b.seq)
      FROM acts a
      JOIN stress.acks b
        ON b.round = a.round AND b.code = a.code AND b.result = 'ok'
       AND ((b.op = 'reserve' AND b.client <> a.client)
            OR b.op IN ('expire', 'disassociate', 'admin_mark'))
     WHERE b.t_send > a.since AND b.t_recv < a.t_send
    UNION ALL
    SELECT format('%s confirmed %s (call %s) %s ms after its reservation with a TTL of %s s',
                  a.client, a.code, a.seq, (a.t_send - a.since) / 1000, a.ttl)
      FROM acts a
     WHERE a.op LIKE 'confirm%' AND a.ttl > 0
       AND a.t_send - a.since > a.ttl * 1000000::bigint + 20000));

-- 7. A holder's call on a code it reserved is refused only for a cause
-- some client was told about: after its TTL as expired (PK006); as not held
-- (PK003, PK004) once an expiry, a disassociation or an admin's mark of the
-- code was under way, or a call that might have been one was cut off.
-- Catches a code silently taken from its holder.
CREATE TEMP TABLE takeaways AS
SELECT round, code, t_send, t_recv
  FROM stress.acks
 WHERE op IN ('expire', 'disassociate', 'admin_mark') AND result IN ('ok', 'lost');
CREATE INDEX ON takeaways (round, code);
ANALYZE takeaways;
SELECT pg_temp.verdict(:'label' || 'every refusal of a holder had a cause (client view)', array(
    WITH refused AS (
        SELECT o.round, o.client, o.op, o.code, o.seq, o.sqlstate, o.t_recv, o.ttl,
               (SELECT max(r.t_send) FROM stress.acks r
                 WHERE r.round = o.round AND r.client = o.client AND r.code = o.code
                   AND r.op = 'reserve' AND r.result = 'ok' AND r.seq < o.seq) AS since
          FROM stress.acks o
         WHERE o.result = 'err' AND o.op IN ('confirm', 'confirm_bad', 'release', 'mark')
           AND o.sqlstate IN ('PK003', 'PK004', 'PK006')
    )
    SELECT format('%s %s %s (round %s call %s) refused %s %s', f.client, f.op, f.code,
                  f.round, f.seq, f.sqlstate,
                  CASE WHEN f.sqlstate = 'PK006' THEN format('%s ms after reserving, TTL %s s',
                                                             (f.t_recv - f.since) / 1000, f.ttl)
                       ELSE 'though nothing took it away' END)
      FROM refused f
     WHERE CASE WHEN f.sqlstate = 'PK006'
                THEN f.ttl = 0 OR f.t_recv - f.since < f.ttl * 1000000::bigint
                ELSE NOT EXISTS (
                    SELECT FROM takeaways b
                     WHERE b.round = f.round AND (b.code = f.code OR b.code IS NULL)
                       AND b.t_recv > f.since AND b.t_send < f.t_recv)
           END
     ORDER BY f.round, f.client, f.seq));

-- 8. Every change a client was told about has its audit row: one, the
-- right action, in the order the client made its changes.
SELECT pg_temp.verdict(:'label' || 'every acknowledged change has its one audit row', array(
    SELECT format('%s %s %s (round %s call %s): audit %s', client, op, code, round, seq,
                  coalesce(audit_action || ' ' || audit_id, 'has none'))
      FROM matched
     WHERE client IS NOT NULL AND audit_action IS DISTINCT FROM ack_action
     ORDER BY round, client, seq));

-- 9. No audit row without a change a client was told about, but for the
-- calls cut off by a crash (10).
SELECT pg_temp.verdict(:'label' || 'no audit row without an acknowledged change', array(
    SELECT format('audit %s: %s %s by %s, round %s', audit_id, audit_action, code, audit_actor, round)
      FROM untold
     WHERE lost_client IS NULL
     ORDER BY audit_id));

-- 10. A call cut off by the crash committed all of its changes or none:
-- the changes of its kind on its code (a reserve: how_many of them), after
-- everything that actor was told.
SELECT pg_temp.verdict(:'label' || 'calls cut off by the crash: all or nothing', array(
    SELECT format('%s lost %s %s (round %s): %s audit rows %s',
                  u.lost_client, u.lost_op, coalesce(u.lost_code, ''), u.round,
                  count(*), string_agg(u.audit_action || ' ' || u.code, ', '))
      FROM untold u
     WHERE u.lost_client IS NOT NULL
     GROUP BY u.round, u.lost_client, u.who, u.lost_op, u.lost_action, u.lost_code, u.lost_how_many
    HAVING bool_or(u.audit_action IS DISTINCT FROM u.lost_action)
        OR bool_or(u.lost_code IS NOT NULL AND u.code <> u.lost_code)
        OR (min(u.lost_op) = 'reserve' AND count(*) <> min(u.lost_how_many))
        OR (min(u.lost_op) NOT IN ('reserve', 'expire') AND count(*) <> 1)
        OR min(u.audit_id) < (SELECT max(m.audit_id) FROM matched m
                               WHERE m.client = u.lost_client AND m.round = u.round)));

-- 11. What a client was told it holds, it holds: same holder, same token,
-- RESERVED or (confirmed) IN_USE, unless a later expiry, disassociation
-- or mark took it away in the log, or its own lost call was about it.
SELECT pg_temp.verdict(:'label' || 'acknowledged reservations are still held, with their token', array(
    SELECT format('%s %s %s (round %s call %s): now %s, holder %s, token %s',
                  b.client, b.op, b.code, b.round, b.seq, coalesce(c.status, 'gone'),
                  coalesce(u.email, '-'), CASE WHEN c.reservation_token = b.token THEN 'same' ELSE 'other' END)
      FROM believed b
      LEFT JOIN psk.codes c ON c.code = b.code
      LEFT JOIN psk.users u ON u.id = c.holder_id
     WHERE NOT (u.email IS NOT DISTINCT FROM b.actor
                AND c.reservation_token IS NOT DISTINCT FROM b.token
                AND c.status = CASE b.op WHEN 'reserve' THEN 'RESERVED' ELSE 'IN_USE' END)));

-- 12. The counts add up: psk_counts() is the table, every pool keeps the
-- codes it was given.
SELECT pg_temp.verdict(:'label' || 'psk_counts() equals the codes table, pools keep their size', array(
    SELECT format('%s %s: psk_counts %s, table %s', coalesce(p.code_type, t.pool),
                  coalesce(p.status, t.status), p.n, t.n)
      FROM psk_counts() p
      FULL JOIN (SELECT pool, status, count(*) AS n FROM psk.codes GROUP BY 1, 2) t
        ON t.pool = p.code_type AND t.status = p.status
     WHERE coalesce(p.n, 0) <> coalesce(t.n, 0)
    UNION ALL
    SELECT format('%s: %s codes added, %s in psk_counts, %s ADDED rows', s.pool, s.n,
                  (SELECT sum(n) FROM psk_counts() WHERE code_type = s.pool),
                  (SELECT count(*) FROM events WHERE action = 'ADDED' AND code_type = s.pool))
      FROM stress.pool_sizes s
     WHERE s.n <> (SELECT sum(n) FROM psk_counts() WHERE code_type = s.pool)
        OR s.n <> (SELECT count(*) FROM events WHERE action = 'ADDED' AND code_type = s.pool)));

-- 13. Reserve hands out what was asked: the requested pool (default: the
-- user's), valid in the country; what it cannot supply from COMMON, after
-- the pool's codes.
SELECT pg_temp.verdict(:'label' || 'reserved codes come from the right pool, country and order', array(
    SELECT format('%s call %s got %s (%s) for pool %s country %s', k.client, k.seq, k.code,
                  k.code_pool, coalesce(k.req_pool, u.pool), k.country)
      FROM stress.acks k
      JOIN psk.users u ON u.email = k.actor
      LEFT JOIN psk.codes c ON c.code = k.code
     WHERE k.op = 'reserve' AND k.result = 'ok'
       AND (k.code_pool IS DISTINCT FROM c.pool
            OR k.code_pool NOT IN (coalesce(k.req_pool, u.pool), 'COMMON')
            OR (k.code_pool <> 'COMMON' AND k.country IS NOT NULL
                AND NOT EXISTS (SELECT FROM psk.code_countries cc
                                  JOIN psk.countries n ON n.id = cc.country_id
                                 WHERE cc.code_id = c.id AND n.name = k.country))
            OR (k.code_pool <> 'COMMON'
                AND EXISTS (SELECT FROM stress.acks j
                             WHERE j.round = k.round AND j.client = k.client AND j.seq = k.seq
                               AND j.sub < k.sub AND j.code_pool = 'COMMON')))));

-- 14. Nothing corrupt: every psk index agrees with its table, the heap is sound.
SELECT pg_temp.verdict(:'label' || 'psk tables and indexes intact (amcheck)',
                       array(SELECT pg_temp.amcheck()));

-- 15. The load did what it is meant to: pools ran dry, COMMON filled in,
-- reservations expired, every kind of change happened.
SELECT pg_temp.verdict(:'label' || 'the load exercised every path', array(
    SELECT what || ' never happened'
      FROM (VALUES
        ('refused PK001', (SELECT count(*) FROM stress.acks WHERE sqlstate = 'PK001')),
        ('reserve of several', (SELECT count(*) FROM stress.acks WHERE op = 'reserve' AND result = 'ok' AND how_many > 1)),
        ('COMMON fallback', (SELECT count(*) FROM stress.acks k JOIN psk.users u ON u.email = k.actor
                              WHERE k.op = 'reserve' AND k.result = 'ok' AND k.code_pool = 'COMMON'
                                AND coalesce(k.req_pool, u.pool) <> 'COMMON')),
        ('EXPIRED', (SELECT count(*) FROM events WHERE action = 'EXPIRED')),
        ('CONFIRMED', (SELECT count(*) FROM events WHERE action = 'CONFIRMED')),
        ('RELEASED', (SELECT count(*) FROM events WHERE action = 'RELEASED')),
        ('DISASSOCIATED', (SELECT count(*) FROM events WHERE action = 'DISASSOCIATED')),
        ('RESTORED', (SELECT count(*) FROM events WHERE action = 'RESTORED')),
        ('MARKED_NON_USABLE by the holder', (SELECT count(*) FROM stress.acks WHERE op = 'mark' AND result = 'ok')),
        ('MARKED_NON_USABLE by an admin', (SELECT count(*) FROM stress.acks WHERE op = 'admin_mark' AND result = 'ok')),
        ('refused PK006 (confirm after expiry)', (SELECT count(*) FROM stress.acks WHERE sqlstate = 'PK006')),
        ('refused PK005 (wrong token)', (SELECT count(*) FROM stress.acks WHERE sqlstate = 'PK005'))
      ) v(what, n)
     WHERE n = 0));

-- Figures.
SELECT format('# %srecorded calls %s (%s ok, %s refused, %s cut off); audit rows %s; codes %s',
              :'label',
              (SELECT count(DISTINCT (round, client, seq)) FROM stress.acks),
              (SELECT count(DISTINCT (round, client, seq)) FROM stress.acks WHERE result = 'ok'),
              (SELECT count(*) FROM stress.acks WHERE result = 'err'),
              (SELECT count(*) FROM stress.acks WHERE result = 'lost'),
              (SELECT count(*) FROM psk.audit_log),
              (SELECT string_agg(format('%s %s', status, n), ', ' ORDER BY status)
                 FROM (SELECT status, count(*) AS n FROM psk.codes GROUP BY 1) s));
SELECT format('# %scalls cut off by a crash: %s, of which %s had committed; %s acknowledged holdings checked',
              :'label', (SELECT count(*) FROM lost),
              (SELECT count(DISTINCT (round, lost_client)) FROM untold WHERE lost_client IS NOT NULL),
              (SELECT count(*) FROM believed));
SELECT format('# %srefusals by SQLSTATE: %s', :'label',
              (SELECT string_agg(format('%s %s', sqlstate, n), ', ' ORDER BY sqlstate)
                 FROM (SELECT sqlstate, count(*) AS n FROM stress.acks
                        WHERE result = 'err' GROUP BY 1) s));
SELECT format('# %saudit rows by action: %s', :'label',
              (SELECT string_agg(format('%s %s', action, n), ', ' ORDER BY action)
                 FROM (SELECT action, count(*) AS n FROM events GROUP BY 1) s));
