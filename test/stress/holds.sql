-- Round 7 of test/stress/run.sh: holds that end, retries, a quota.  Four
-- users h1..h4 (COMMON), two pgbench clients each (holds.pgbench): reserve
-- with a request_id drawn from 20,000 per user (so the same request_id comes
-- twice, also from both clients at once, and its arguments follow from it),
-- renew, confirm, release, sweep; psk.reservation_ttl 1 s, psk.in_use_ttl
-- 2 s, psk.max_held_per_user 5.  stress.h_act() refuses only the outcomes
-- a racing call may meet; any other error stops pgbench.
\set QUIET on
SET client_min_messages = warning;
SELECT FROM generate_series(1, 4) u,
       psk_create_user('admin@example.com', 'Holds', 'h' || u, 'h' || u || '@example.com',
                       'Rdl@12345', pool => 'COMMON');
ALTER DATABASE psk_stress SET psk.reservation_ttl = '1s';
ALTER DATABASE psk_stress SET psk.in_use_ttl = '2s';
ALTER DATABASE psk_stress SET psk.max_held_per_user = 5;
ALTER DATABASE psk_stress SET psk.expiry_batch = 4;

CREATE TABLE stress.h_calls (kind text NOT NULL, outcome text NOT NULL);

CREATE FUNCTION stress.h_act(kind text, u int, rid int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    em  text := 'h' || u || '@example.com';
    c   record;
    res text := 'ok';
BEGIN
    BEGIN
        IF kind = 'reserve' THEN
            PERFORM count(*) FROM psk_reserve(em, 'st', code_type => 'COMMON',
                                              how_many => rid % 3 + 1, request_id => 'r' || rid);
        ELSIF kind = 'sweep' THEN
            PERFORM count(*) FROM psk_expire_reservations();
        ELSE
            SELECT k.code, k.reservation_token INTO c
              FROM psk.codes k JOIN psk.users s ON s.id = k.holder_id
             WHERE s.email = em ORDER BY random() LIMIT 1;
            IF NOT FOUND THEN
                res := 'none';
            ELSIF kind = 'release' THEN
                PERFORM count(*) FROM psk_release(em, c.code);
            ELSIF kind = 'renew' THEN
                PERFORM count(*) FROM psk_renew(em, c.code, c.reservation_token);
            ELSE
                PERFORM count(*) FROM psk_confirm(em, c.code, c.reservation_token);
            END IF;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        -- no codes, the quota; a code swept, confirmed or released meanwhile
        IF SQLSTATE NOT IN ('PK001', 'PK011', 'PK003', 'PK004', 'PK005', 'PK006') THEN
            RAISE;
        END IF;
        res := SQLSTATE;
    END;
    INSERT INTO stress.h_calls VALUES (kind, res);
    RETURN res;
END $$;
