-- Bench data: :n codes over the three pools (half OSV, a quarter each HSV
-- and COMMON), OSV/HSV codes valid in UK; 64 bench users of pool OSV.
\set QUIET on
SET client_min_messages = warning;
SELECT FROM psk_create_user(NULL, 'Admin', 'admin', 'admin@example.com', 'Rdl@12345', true);
SELECT FROM psk_add_region('admin@example.com', 'Europe');
SELECT FROM psk_add_country('admin@example.com', 'UK', 'Europe');
-- users straight into the table: bcrypt for 64 accounts would dominate the load time
INSERT INTO psk.users (team_name, user_name, email, password_hash, pool)
SELECT 'Bench OSV', 'bench' || i, 'bench' || i || '@example.com',
       '$2a$04$abcdefghijklmnopqrstuu0123456789012345678901234567890', 'OSV'
  FROM generate_series(1, 64) i;
INSERT INTO psk.codes (code, pool)
SELECT 'BENCH-' || lpad(i::text, 9, '0'),
       CASE WHEN i % 4 IN (0, 1) THEN 'OSV' WHEN i % 4 = 2 THEN 'HSV' ELSE 'COMMON' END
  FROM generate_series(1, :n) i;
INSERT INTO psk.code_countries (code_id, country_id)
SELECT c.id, k.id FROM psk.codes c, psk.countries k WHERE c.pool <> 'COMMON';
VACUUM ANALYZE;
