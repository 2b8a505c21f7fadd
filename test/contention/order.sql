-- Reserve order while a snapshot is held (issue 18; extension/free_hint.c).
-- One session (through dblink) holds a REPEATABLE READ snapshot all along,
-- so that no dead entry of the free-code index can be removed; this session
-- runs serialized steps: reserves, releases, codes added (never-used codes,
-- which sort first), marked non-usable and restored, disassociated, expired,
-- a superuser's plain INSERT; a third session ("late") opens a transaction,
-- lets the main session reserve past the codes freed since, then releases,
-- disassociates, restores or expires a code at its old start time and
-- commits (or rolls back) after more reserves; now and then it reserves
-- and rolls back.  Every reserve of the main session must return the least
-- recently used free code seen by a fresh snapshot just before it.
-- Variables: :steps.  Leaves public.order_check (step, op, got, want) and
-- public.order_hint (step, pool hint id) for the checks of run.sh.
\set ON_ERROR_STOP on
\set QUIET on
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE TABLE public.order_check (step int, op text, got text, want text);
CREATE TABLE public.order_hint (step int, id bigint);
SELECT FROM psk_add_codes('admin@example.com', 'HSV',
                          ARRAY(SELECT 'Q-' || g FROM generate_series(1, 30) g));
SET psk.reservation_ttl = 1;
SELECT set_config('ordertest.steps', :'steps', false);

SELECT dblink_connect('held', 'dbname=' || current_database() || ' port=' || current_setting('port') || ' host=127.0.0.1 user=postgres');
SELECT dblink_exec('held', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('held', 'SELECT count(*) FROM psk.users') AS t(n bigint);
SELECT dblink_connect('late', 'dbname=' || current_database() || ' port=' || current_setting('port') || ' host=127.0.0.1 user=postgres');
SELECT dblink_exec('late', 'SET psk.reservation_ttl = 1');

DO $$
DECLARE
    steps  int := current_setting('ordertest.steps')::int;
    r      float8;
    want   text;
    got    text;
    c      text;
    late   int := 0;   -- 0: idle; else the step at which it acts
    late_op text;
    added  int := 0;
BEGIN
    PERFORM setseed(0.18);
    FOR i IN 1 .. steps LOOP
        -- First the late session (this one holds no lock then): it acts,
        -- then commits (or rolls back) later.
        IF late > 0 AND i = late THEN
            IF late_op IN ('release', 'disassociate') THEN
                SELECT code INTO c FROM psk.codes
                 WHERE pool = 'HSV' AND status = 'RESERVED' ORDER BY random() LIMIT 1;
            ELSIF late_op = 'restore' THEN
                SELECT code INTO c FROM psk.codes
                 WHERE pool = 'HSV' AND status = 'NON_USABLE' ORDER BY random() LIMIT 1;
            END IF;
            IF late_op = 'release' AND c IS NOT NULL THEN
                PERFORM * FROM dblink('late', format('SELECT code FROM psk_release(%L, %L)', 'hsv@example.com', c)) AS t(code text);
            ELSIF late_op = 'disassociate' AND c IS NOT NULL THEN
                PERFORM * FROM dblink('late', format('SELECT 1 FROM psk_disassociate(%L, %L)', 'admin@example.com', c)) AS t(one int);
            ELSIF late_op = 'restore' AND c IS NOT NULL THEN
                PERFORM * FROM dblink('late', format('SELECT 1 FROM psk_restore(%L, %L)', 'admin@example.com', c)) AS t(one int);
            ELSIF late_op = 'expire' THEN
                PERFORM * FROM dblink('late', 'SELECT count(*) FROM psk_expire_reservations()') AS t(n bigint);
            ELSIF late_op = 'reserve' THEN
                -- Reserved and rolled back: the hint must not pass it.
                PERFORM * FROM dblink('late', 'SELECT code FROM psk_reserve(''hsv@example.com'', ''late'')', false) AS t(code text);
                PERFORM dblink_exec('late', 'ROLLBACK');
                late := 0;
            END IF;
        ELSIF late > 0 AND i = late + 4 THEN
            IF random() < 0.2 THEN
                PERFORM dblink_exec('late', 'ROLLBACK');
            ELSE
                PERFORM dblink_exec('late', 'COMMIT');
            END IF;
            late := 0;
        END IF;
        r := random();
        IF r < 0.40 THEN
            -- The least recently used free code, through a fresh snapshot.
            SELECT code INTO want FROM psk.codes
             WHERE pool = 'HSV' AND status = 'CAN_BE_USED'
             ORDER BY freed_at NULLS FIRST, id LIMIT 1;
            BEGIN
                SELECT code INTO got FROM psk_reserve('hsv@example.com', 'order');
            EXCEPTION WHEN sqlstate 'PK001' THEN
                got := NULL;
            END;
            INSERT INTO public.order_check VALUES (i, 'reserve', got, want);
            INSERT INTO public.order_hint SELECT i, h.id FROM psk.free_code_hints() h WHERE h.pool = 'HSV';
        ELSIF r < 0.68 THEN
            SELECT code INTO c FROM psk.codes
             WHERE pool = 'HSV' AND status = 'RESERVED' ORDER BY random() LIMIT 1
               FOR NO KEY UPDATE SKIP LOCKED;
            IF c IS NOT NULL THEN
                PERFORM psk_release('hsv@example.com', c);
            END IF;
        ELSIF r < 0.72 THEN
            SELECT code INTO c FROM psk.codes
             WHERE pool = 'HSV' AND status = 'CAN_BE_USED' ORDER BY random() LIMIT 1
               FOR NO KEY UPDATE SKIP LOCKED;
            IF c IS NOT NULL THEN
                PERFORM psk_mark_non_usable('admin@example.com', c, 'order test');
            END IF;
        ELSIF r < 0.76 THEN
            SELECT code INTO c FROM psk.codes
             WHERE pool = 'HSV' AND status = 'NON_USABLE' ORDER BY random() LIMIT 1
               FOR NO KEY UPDATE SKIP LOCKED;
            IF c IS NOT NULL THEN
                PERFORM psk_restore('admin@example.com', c);
            END IF;
        ELSIF r < 0.79 THEN
            SELECT code INTO c FROM psk.codes
             WHERE pool = 'HSV' AND status = 'RESERVED' ORDER BY random() LIMIT 1
               FOR NO KEY UPDATE SKIP LOCKED;
            IF c IS NOT NULL THEN
                PERFORM psk_disassociate('admin@example.com', c);
            END IF;
        ELSIF r < 0.84 THEN
            PERFORM psk_expire_reservations();
        ELSIF r < 0.845 THEN
            added := added + 1;
            PERFORM psk_add_codes('admin@example.com', 'HSV',
                                  ARRAY['N-' || added || '-1', 'N-' || added || '-2']);
        ELSIF r < 0.848 THEN
            added := added + 1;
            INSERT INTO psk.codes (code, pool) VALUES ('S-' || added, 'HSV');
        ELSIF r < 0.93 AND late = 0 THEN
            -- The late session starts a transaction: its now() is fixed.
            PERFORM dblink_exec('late', 'BEGIN');
            PERFORM * FROM dblink('late', 'SELECT now()') AS t(at timestamptz);
            late := i + 20 + (random() * 40)::int;
            late_op := (ARRAY['release', 'disassociate', 'restore', 'expire', 'reserve'])[1 + (random() * 4.999)::int];
        END IF;
        PERFORM pg_sleep(0.005);  -- holds expire (psk.reservation_ttl = 1)

        COMMIT;
    END LOOP;
    IF late > 0 THEN
        PERFORM dblink_exec('late', 'COMMIT');
    END IF;
END
$$;

-- The snapshot was held to the end.
SELECT * FROM dblink('held', 'SELECT count(*) FROM psk.users') AS t(n bigint);
SELECT dblink_exec('held', 'COMMIT');
SELECT dblink_disconnect('held');
SELECT dblink_disconnect('late');
