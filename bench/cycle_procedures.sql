-- bench/cpu_cycle.sh and bench/ir_cycle.sh: the psk cycle (c) and the
-- minimal cycle (m, bench/min_cycle.sql's statements on bench/min_schema.sql)
-- as procedures that commit after every call, as pgbench's autocommit does.
CREATE PROCEDURE public.cycle_c(n int) LANGUAGE plpgsql AS $$
DECLARE
    c text;
BEGIN
    FOR i IN 1..n LOOP
        SELECT code INTO c FROM psk_reserve('bench1@example.com', 'bench');
        COMMIT;
        PERFORM psk_release('bench1@example.com', c);
        COMMIT;
    END LOOP;
END $$;
-- bench/min_cycle.sql's two statements, as user 2, on the tables of the
-- schema in search_path (minimal: m, minimal_indexed: mi)
CREATE PROCEDURE public.cycle_m(n int) LANGUAGE plpgsql AS $$
DECLARE
    cid bigint;
BEGIN
    FOR i IN 1..n LOOP
        WITH picked AS (
            SELECT id FROM codes
             WHERE status = 'CAN_BE_USED' AND pool = 'OSV'
             ORDER BY freed_at NULLS FIRST, id
             LIMIT 1 FOR UPDATE SKIP LOCKED
        ), reserved AS (
            UPDATE codes c
               SET status = 'RESERVED', holder_id = 2, tester_name = 'bench',
                   reserved_at = now(), reservation_token = gen_random_uuid()
              FROM picked WHERE c.id = picked.id
            RETURNING c.id, c.code, c.pool
        ), logged AS (
            INSERT INTO log (action, code, code_type, user_id, tester_name)
            SELECT 'RESERVED', code, pool, 2, 'bench' FROM reserved
        )
        SELECT id INTO cid FROM reserved;
        COMMIT;
        WITH released AS (
            UPDATE codes
               SET status = 'CAN_BE_USED', holder_id = NULL, tester_name = NULL,
                   reserved_at = NULL, reservation_token = NULL,
                   released_at = now(), freed_at = now()
             WHERE id = cid AND holder_id = 2
            RETURNING code, pool
        )
        INSERT INTO log (action, code, code_type, user_id)
        SELECT 'RELEASED', code, pool, 2 FROM released;
        COMMIT;
    END LOOP;
END $$;
-- the psk cycle as the shim makes it (run d's backend side):
-- psk.http_reserve + psk.http_release with a session token (made now: a
-- login needs the cluster's background workers, which a single-user
-- backend has not)
CREATE TABLE public.bench_token AS
SELECT access_token FROM psk_login('bench1@example.com', 'Rdl@12345');
CREATE PROCEDURE public.cycle_h(n int) LANGUAGE plpgsql AS $$
DECLARE
    t text := (SELECT access_token FROM public.bench_token);
    c text;
BEGIN
    COMMIT;
    FOR i IN 1..n LOOP
        c := psk.http_reserve(t, '{"tester_name": "bench"}', '{}')::jsonb ->> 'code';
        COMMIT;
        PERFORM psk.http_release(t, pg_catalog.json_build_object('code', c)::text, '{}');
        COMMIT;
    END LOOP;
END $$;
-- the GET routes of run e as the shim calls them: GET /auth/me (e) and
-- GET /users/my (g) with the two codes a tester of run e holds; a
-- "cycle" is one request
CREATE PROCEDURE public.get_cycle(route text, n int) LANGUAGE plpgsql AS $$
DECLARE
    t text := (SELECT access_token FROM public.bench_token);
BEGIN
    IF route = 'my_codes' THEN
        PERFORM psk_reserve('bench1@example.com', 'bench', how_many => 2)
          FROM (SELECT 1 WHERE NOT EXISTS (SELECT FROM psk.codes c JOIN psk.users u ON u.id = c.holder_id
                                            WHERE u.email = 'bench1@example.com')) s;
    END IF;
    COMMIT;
    FOR i IN 1..n LOOP
        IF route = 'me' THEN
            PERFORM psk.http_me(t, NULL, '{}');
        ELSE
            PERFORM psk.http_my_codes(t, NULL, '{}');
        END IF;
        COMMIT;
    END LOOP;
END $$;
CREATE PROCEDURE public.cycle_e(n int) LANGUAGE plpgsql AS $$ BEGIN CALL public.get_cycle('me', n); END $$;
CREATE PROCEDURE public.cycle_g(n int) LANGUAGE plpgsql AS $$ BEGIN CALL public.get_cycle('my_codes', n); END $$;
