-- The invariants of round 7 (holds.sql), one line each: NAME|VALUE, where
-- the expected value is in run.sh.  Run after every hold has lapsed.
\set QUIET on
-- no code held past its expiry after a sweep: sweep in batches until none
-- is left, then no RESERVED or IN_USE code has an expires_at before it
SELECT now() AS before_sweep \gset
DO $$ BEGIN LOOP EXIT WHEN (SELECT count(*) FROM psk_expire_reservations()) = 0; COMMIT; END LOOP; END $$;
SELECT 'held past expiry after a sweep|' || count(*) FROM psk.codes
 WHERE status IN ('RESERVED', 'IN_USE') AND expires_at < :'before_sweep';
SELECT 'EXPIRED of a code in use|' || (count(*) > 0) FROM psk.audit_log a
 WHERE a.action = 'EXPIRED' AND a.contact_email LIKE 'h_@example.com'
   AND EXISTS (SELECT FROM psk.audit_log b WHERE b.code = a.code AND b.id < a.id AND b.action = 'CONFIRMED'
                  AND b.id > (SELECT max(id) FROM psk.audit_log r WHERE r.code = a.code AND r.id < a.id AND r.action = 'RESERVED'));
-- no request_id that reserved twice: the codes reserved are exactly those
-- of the remembered requests, one RESERVED row each
WITH remembered AS (
    SELECT s.email, unnest(r.codes) AS code
      FROM psk.reserve_requests r JOIN psk.users s ON s.id = r.user_id
     WHERE s.email LIKE 'h_@example.com'),
     reserved AS (
    SELECT contact_email AS email, code FROM psk.audit_log
     WHERE action = 'RESERVED' AND contact_email LIKE 'h_@example.com')
SELECT 'reserves not of one remembered request|' ||
       ((SELECT count(*) FROM (SELECT * FROM reserved EXCEPT ALL SELECT * FROM remembered) x) +
        (SELECT count(*) FROM (SELECT * FROM remembered EXCEPT ALL SELECT * FROM reserved) y));
SELECT 'retries answered from memory|' ||
       ((SELECT count(*) FROM stress.h_calls WHERE kind = 'reserve' AND outcome = 'ok') >
        (SELECT count(*) FROM psk.reserve_requests r JOIN psk.users s ON s.id = r.user_id
          WHERE s.email LIKE 'h_@example.com'));
-- no user above the quota at any instant: the log replayed per user in id
-- order, +1 per code reserved, -1 per code released or expired
SELECT 'most held by one user, replayed from the log|' || coalesce(max(held), 0) FROM (
    SELECT sum(CASE WHEN action = 'RESERVED' THEN 1 ELSE -1 END)
               OVER (PARTITION BY contact_email ORDER BY id) AS held
      FROM psk.audit_log
     WHERE contact_email LIKE 'h_@example.com' AND action IN ('RESERVED', 'RELEASED', 'EXPIRED')) s;
SELECT 'reserves refused at the quota|' || (count(*) > 0) FROM stress.h_calls WHERE outcome = 'PK011';
SELECT 'renewals|' || (count(*) > 0) FROM psk.audit_log WHERE action = 'RENEWED' AND contact_email LIKE 'h_@example.com';
