-- Demo data for `make run` (scripts/run.sh loads it once, in one
-- transaction, into a psk database that has no users yet):
--   admin@example.com  team Admin     admin
--   osv@example.com    team Trillium  pool OSV
--   hsv@example.com    team Zeus      pool HSV
--   all with password Rdl@12345
--   region Europe with UK and DE
--   100 codes per pool: OSV-0001.., HSV-0001.. (valid in UK and DE) and
--   COMMON-0001.. (valid anywhere)
\set ON_ERROR_STOP on

SELECT FROM psk_create_user(NULL, 'Admin', 'admin', 'admin@example.com', 'Rdl@12345', is_admin => true);
SELECT FROM psk_create_user('admin@example.com', 'Trillium', 'osv', 'osv@example.com', 'Rdl@12345', pool => 'OSV');
SELECT FROM psk_create_user('admin@example.com', 'Zeus', 'hsv', 'hsv@example.com', 'Rdl@12345', pool => 'HSV');

SELECT FROM psk_add_region('admin@example.com', 'Europe');
SELECT FROM psk_add_country('admin@example.com', 'UK', 'Europe');
SELECT FROM psk_add_country('admin@example.com', 'DE', 'Europe');

CREATE TEMP TABLE demo_added AS
SELECT 'OSV' AS pool, a.* FROM psk_add_codes('admin@example.com', 'OSV',
    ARRAY(SELECT format('OSV-%s', lpad(i::text, 4, '0')) FROM generate_series(1, 100) i),
    ARRAY['UK', 'DE']) a
UNION ALL
SELECT 'HSV', a.* FROM psk_add_codes('admin@example.com', 'HSV',
    ARRAY(SELECT format('HSV-%s', lpad(i::text, 4, '0')) FROM generate_series(1, 100) i),
    ARRAY['UK', 'DE']) a
UNION ALL
SELECT 'COMMON', a.* FROM psk_add_codes('admin@example.com', 'COMMON',
    ARRAY(SELECT format('COMMON-%s', lpad(i::text, 4, '0')) FROM generate_series(1, 100) i)) a;

-- Every code must have gone in; anything else stops the load (and rolls it back).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM demo_added WHERE outcome <> 'inserted') THEN
        RAISE EXCEPTION 'demo codes not loaded: %',
            (SELECT string_agg(DISTINCT outcome, ', ') FROM demo_added WHERE outcome <> 'inserted');
    END IF;
END
$$;

SELECT format('demo data: %s users, %s codes (%s)',
              (SELECT count(*) FROM psk.users),
              (SELECT count(*) FROM demo_added),
              (SELECT string_agg(pool || ' ' || n, ', ' ORDER BY pool DESC)
                 FROM (SELECT pool, count(*) AS n FROM demo_added GROUP BY pool) p));
