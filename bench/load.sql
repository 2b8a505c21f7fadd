-- Bench fixture: an admin, the place UK (Europe), and 64 bench users of pool
-- OSV, bench1..bench64@example.com, password Rdl@12345.  The codes are loaded
-- by bench/common.sh (load_codes) with COPY.
\set QUIET on
SET client_min_messages = warning;
SELECT FROM psk_create_user(NULL, 'Admin', 'admin', 'admin@example.com', 'Rdl@12345', true);
SELECT FROM psk_add_region('admin@example.com', 'Europe');
SELECT FROM psk_add_country('admin@example.com', 'UK', 'Europe');
-- Users straight into the table, all with one bcrypt hash of the lowest cost
-- computed once: psk_create_user would run bcrypt 64 times.
INSERT INTO psk.users (team_name, user_name, email, password_hash, pool)
SELECT 'Bench OSV', 'bench' || i, 'bench' || i || '@example.com', h.hash, 'OSV'
  FROM generate_series(1, 64) i,
       (SELECT psk.crypt('Rdl@12345', psk.gen_salt('bf', 4)) AS hash) h;
