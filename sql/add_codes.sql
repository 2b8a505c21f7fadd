-- psk_add_codes: filling a pool.
\i test/fixtures/reset.sql
\i test/fixtures/engine.sql
-- every outcome, in input order (invalid: empty, over 128 characters,
-- whitespace or control characters inside, Unicode spaces included);
-- countries matched case-insensitively after trimming, unknown ones reported
-- once each (NULL elements ignored)
SELECT test.show(code) AS code, outcome FROM psk_add_codes('Admin@Example.com', 'osv',
    ARRAY[' a1 ', 'A1', 'b 2', '', '   ', NULL, 'x1', repeat('z', 129),
          'c' || chr(1), E'd\u00a0e', E'e\u2003m', E'\ufeffbom', repeat('y', 128),
          'a2', 'a1'],
    ARRAY['uk', ' De ', 'Mars', 'mars', NULL, 'UK']);
-- inserted codes get ids in input order, the known countries, and one ADDED
-- row each, by the admin
SELECT test.show(code) AS code, pool, status, holder_id, tester_name, reserved_at, freed_at, note,
       created_at IS NOT NULL AS has_created_at
  FROM psk.codes ORDER BY id;
SELECT test.show(c.code) AS code, string_agg(k.name, ',' ORDER BY k.name) AS countries
  FROM psk.codes c JOIN psk.code_countries cc ON cc.code_id = c.id
  JOIN psk.countries k ON k.id = cc.country_id GROUP BY c.id, c.code ORDER BY c.id;
SELECT action, test.show(code) AS code, code_type, user_name, contact_email, tester_name, country,
       region, note, user_id = (SELECT id FROM psk.users WHERE email = 'admin@example.com') AS by_admin
  FROM psk.audit_log WHERE action = 'ADDED' ORDER BY id;
SELECT bool_and(a.id > b.id) AS audit_in_code_order
  FROM psk.audit_log a JOIN psk.audit_log b ON b.action = 'ADDED' AND a.action = 'ADDED'
  JOIN psk.codes ca ON ca.code = a.code JOIN psk.codes cb ON cb.code = b.code
 WHERE ca.id > cb.id;
-- codes that exist already (in any pool) are duplicate_in_db; no countries
-- given: none attached, no note
SELECT * FROM psk_add_codes('admin@example.com', 'HSV', ARRAY['a1', 'h1', 'X1', 'h1']);
SELECT * FROM psk_add_codes('admin@example.com', 'COMMON', ARRAY['c1'], '{}');
SELECT test.show(code) AS code, pool, (SELECT count(*) FROM psk.code_countries WHERE code_id = c.id) AS countries
  FROM psk.codes c ORDER BY id;
SELECT action, code, code_type, note FROM psk.audit_log WHERE action = 'ADDED' ORDER BY id DESC LIMIT 2;
-- nothing valid: only outcome rows, nothing stored
SELECT test.state() AS before \gset
SELECT * FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['a1', '', NULL], ARRAY['Atlantis']);
SELECT test.state() = :'before' AS unchanged;
-- a code of exactly 128 characters is fine, and whitespace at the ends is trimmed
SELECT outcome, length(code) FROM psk_add_codes('admin@example.com', 'OSV',
    ARRAY[E'\t' || repeat('w', 128) || E'\n']);
-- refusals change nothing
SELECT test.state() AS before \gset
SELECT test.err($$SELECT psk_add_codes(NULL, 'OSV', ARRAY['E1'])$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_add_codes('osv@example.com', 'OSV', ARRAY['E1'])$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_add_codes('nobody@example.com', 'OSV', ARRAY['E1'])$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_add_codes('admin@example.com', NULL, ARRAY['E1'])$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_add_codes('admin@example.com', ' ', ARRAY['E1'])$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_add_codes('admin@example.com', 'XSV', ARRAY['E1'])$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_add_codes('admin@example.com', 'OSV', NULL)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_add_codes('admin@example.com', 'OSV', '{}')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_add_codes('admin@example.com', 'OSV', '{{E1,E2},{E3,E4}}')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_add_codes('admin@example.com', 'OSV', ARRAY(SELECT 'E' || g FROM generate_series(1, 100001) g))$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_add_codes('admin@example.com', 'OSV', ARRAY['E1'], '{{UK},{DE}}')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_add_codes('admin@example.com', 'OSV', ARRAY['E1'], ARRAY(SELECT 'K' || g FROM generate_series(1, 1001) g))$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_add_codes('admin@example.com', 'OSV', ARRAY['E1'], ARRAY['UK', repeat('x', 129)])$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err(format('SELECT psk_add_codes(%L, %L, ARRAY[%L])', repeat('a', 255), 'OSV', 'E1')) AS error, test.state() = :'before' AS unchanged;
SELECT count(*) AS e_codes FROM psk.codes WHERE code LIKE 'E_';
-- a large batch: 100000 codes in one call, ids in input order
SELECT outcome, count(*) FROM psk_add_codes('admin@example.com', 'COMMON',
    ARRAY(SELECT 'BULK' || g FROM generate_series(1, 100000) g), ARRAY['IN'])
 GROUP BY outcome;
SELECT count(*) AS bulk_codes,
       bool_and(substr(code, 5)::int = rank) AS ids_in_input_order
  FROM (SELECT code, rank() OVER (ORDER BY id) FROM psk.codes WHERE code LIKE 'BULK%') b;
SELECT count(*) AS bulk_added FROM psk.audit_log WHERE action = 'ADDED' AND code LIKE 'BULK%' AND note = 'countries: IN';
SELECT count(*) AS bulk_in_india FROM psk.code_countries cc JOIN psk.countries k ON k.id = cc.country_id WHERE k.name = 'IN';
