-- Users deleted while they reserve (run.sh): psk.codes.holder_id has no
-- foreign key (extension/holders.c), so this is where a code left held by
-- a user who no longer exists would show.  test_churn_hold(n) releases
-- what user n holds, or reserves one code for it; test_churn_delete(n)
-- deletes user n (by psk_delete_user or by a plain DELETE, the trigger's
-- case) and puts a user with the same e-mail back at once, under a new id,
-- so that reserves by e-mail race with both.  Each call notes its outcome
-- (an SQLSTATE when refused) in churn_outcome.
\set ON_ERROR_STOP on
CREATE TABLE churn_outcome (what text NOT NULL);

SELECT count(*) FROM generate_series(1, 40) g,
       psk_create_user('admin@example.com', 'QA', 'Churn ' || g,
                       'churn' || g || '@example.com', 'Rdl@12345', pool => 'OSV') u;

CREATE FUNCTION test_churn_hold(n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    email text := 'churn' || n || '@example.com';
    held  text;
BEGIN
    BEGIN
        SELECT m.code INTO held FROM psk_my_codes(email) m LIMIT 1;
        IF held IS NULL THEN
            PERFORM psk_reserve(email, 'churn');
        ELSE
            PERFORM psk_release(email, held);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO churn_outcome VALUES ('hold ' || SQLSTATE);
        RETURN;
    END;
    INSERT INTO churn_outcome VALUES (CASE WHEN held IS NULL THEN 'reserved' ELSE 'released' END);
END $$;

CREATE FUNCTION test_churn_delete(n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    who text := 'churn' || n || '@example.com';
    uid bigint;
BEGIN
    SELECT u.id INTO uid FROM psk.users u WHERE u.email = who;
    BEGIN
        IF n % 2 = 0 THEN
            PERFORM psk_delete_user('admin@example.com', uid);
        ELSE
            DELETE FROM psk.users WHERE id = uid;
        END IF;
        -- back under a new id (the hash of a user made above: no bcrypt here)
        INSERT INTO psk.users (team_name, user_name, email, password_hash, pool)
        SELECT 'QA', 'Churn ' || n, who, u.password_hash, 'OSV'
          FROM psk.users u WHERE u.email = 'osv@example.com';
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO churn_outcome VALUES ('delete ' || SQLSTATE);
        RETURN;
    END;
    INSERT INTO churn_outcome VALUES ('deleted');
END $$;
