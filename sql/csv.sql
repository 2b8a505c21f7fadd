-- CSV in and out, the database's half (bulk.c): an import begun by
-- psk.http_codes_import, its batches (psk.http_codes_import_rows), its
-- report (psk.http_codes_import_report), and the exports' rows
-- (psk.http_codes_export, psk.http_logs_export), which the shim reads
-- through cursors WITH HOLD.  The shim's half is test/http/test_csv.py.
\i test/fixtures/reset.sql
SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['OSV-1', 'OSV-2'], ARRAY['UK']);
\set QUIET on
SELECT access_token AS admin FROM psk_login('admin@example.com', 'Rdl@12345') \gset
SELECT access_token AS osv FROM psk_login('osv@example.com', 'Rdl@12345') \gset
\set QUIET off
-- an import lives in its transaction: refused outside one
SELECT psk.http_codes_import(:'admin', NULL, '{"code_type": "OSV"}');
-- a batch without an import begun in the session
BEGIN;
SELECT test.err(format('SELECT psk.http_codes_import_rows(%L, %L, %L, %L, %L, %L)', :'admin',
       gen_random_uuid(), '{2}', '{A}', '{NULL}', '{NULL}')) AS error;
ROLLBACK;

-- who may first, then the arguments: a user, a dead token, then bad input
SELECT test.state() AS before \gset
BEGIN;
SELECT test.err(format('SELECT psk.http_codes_import(%L, NULL, %L)', :'osv', '{}')) AS error;
SELECT test.err(format('SELECT psk.http_codes_import(%L, NULL, %L)', 'nope', '{}')) AS error;
SELECT test.err(format('SELECT psk.http_codes_import(%L, NULL, %L)', :'admin', '{}')) AS error;
SELECT test.err(format('SELECT psk.http_codes_import(%L, NULL, %L)', :'admin', '{"code_type": "XSV"}')) AS error;
SELECT test.err(format('SELECT psk.http_codes_import(%L, NULL, %L)', :'admin',
       json_build_object('code_type', 'OSV', 'countries', 'UK,' || repeat('x', 129)))) AS error;
SELECT (psk.http_codes_import(:'admin', NULL, '{"code_type": "osv", "countries": "uk, Mars,, MARS "}')::json->>'batch_id') AS batch \gset
SELECT test.err(format('SELECT psk.http_codes_import_rows(%L, %L, %L, %L, %L, %L)', :'osv',
       :'batch', '{2}', '{A,B}', '{NULL}', '{NULL}')) AS error;
SELECT test.err(format('SELECT psk.http_codes_import_rows(%L, %L, %L, %L, %L, %L)', :'admin',
       :'batch', '{2}', '{A,B}', '{NULL}', '{NULL}')) AS error;
SELECT test.err(format('SELECT psk.http_codes_import_rows(%L, %L, %L, %L, %L, %L)', :'admin',
       :'batch', '{2,3}', '{A,B}', '{NULL,NULL}', ARRAY[NULL, repeat('n', 1001)])) AS error;
SELECT test.err(format('SELECT psk.http_codes_import_rows(%L, %L, %L, %L, %L, %L)', :'admin',
       :'batch', '{7,8}', '{A,B}', ARRAY['UK', 'DE;' || repeat('c', 129)], '{NULL,NULL}')) AS error;
SELECT test.err(format('SELECT psk.http_codes_import_rows(%L, %L, %L, %L, %L, %L)', :'admin',
       gen_random_uuid(), '{2}', '{A}', '{NULL}', '{NULL}')) AS error;
-- two batches of one file: outcomes as psk_add_codes', a code of an
-- earlier batch is duplicate_in_batch (inserted then, or refused then)
SELECT psk.http_codes_import_rows(:'admin', :'batch', '{2,3,5,6,7}',
       ARRAY[' new-1 ', 'OSV-1', 'bad one', 'NEW-2', ''],
       ARRAY['DE; Atlantis', NULL, NULL, 'IN', NULL],
       ARRAY['first, with "quotes"', NULL, NULL, NULL, NULL]) AS inserted;
SELECT psk.http_codes_import_rows(:'admin', :'batch', '{9,10,11,12}',
       ARRAY['new-1', 'osv-1', 'NEW-3', 'NEW-3'],
       ARRAY[NULL, NULL, 'atlantis;mordor', NULL],
       ARRAY[NULL, NULL, NULL, NULL]) AS inserted;
-- rolled back: nothing stays, seen from outside the transaction
ROLLBACK;
SELECT test.state() = :'before' AS unchanged, count(*) AS codes_left
  FROM psk.codes WHERE code LIKE 'NEW-%';

-- the same, committed: the codes, their batch, countries, notes and audit rows
BEGIN;
SELECT (psk.http_codes_import(:'admin', NULL, '{"code_type": "OSV", "countries": "uk, Mars,, MARS "}')::json->>'batch_id') AS batch \gset
SELECT psk.http_codes_import_rows(:'admin', :'batch', '{2,3,5,6,7}',
       ARRAY[' new-1 ', 'OSV-1', 'bad one', 'NEW-2', ''],
       ARRAY['DE; Atlantis', NULL, NULL, 'IN', NULL],
       ARRAY['first, with "quotes"', NULL, NULL, NULL, NULL]) AS inserted;
SELECT psk.http_codes_import_rows(:'admin', :'batch', '{9,10,11,12}',
       ARRAY['new-1', 'osv-1', 'NEW-3', 'NEW-3'],
       ARRAY[NULL, NULL, 'atlantis;mordor', NULL],
       ARRAY[NULL, NULL, NULL, NULL]) AS inserted;
COMMIT;
SELECT c.code, c.pool, c.status, c.batch_id = :'batch' AS in_batch, c.note,
       (SELECT string_agg(k.name, ',' ORDER BY k.name) FROM psk.code_countries cc
          JOIN psk.countries k ON k.id = cc.country_id WHERE cc.code_id = c.id) AS countries
  FROM psk.codes c WHERE c.code LIKE 'NEW-%' ORDER BY c.id;
SELECT action, code, code_type, contact_email, replace(note, :'batch', '<batch>') AS note
  FROM psk.audit_log WHERE code LIKE 'NEW-%' ORDER BY id;
-- the report, in pieces; the reply is their concatenation
SELECT replace(string_agg(piece, ''), :'batch', '<batch>') AS reply
  FROM psk.http_codes_import_report(:'batch') AS r(piece);
SELECT test.err(format('SELECT psk.http_codes_import_report(%L)', gen_random_uuid())) AS error;

-- exports: rows as psk_codes and psk_log give them, as text; a user may
-- not ask, nor with a bad filter
SELECT test.err(format('SELECT psk.http_codes_export(%L, NULL, %L)', :'osv', '{}')) AS error;
SELECT test.err(format('SELECT psk.http_codes_export(%L, NULL, %L)', 'nope', '{"status": "FREE"}')) AS error;
SELECT test.err(format('SELECT psk.http_codes_export(%L, NULL, %L)', :'admin', '{"status": "FREE"}')) AS error;
SELECT test.err(format('SELECT psk.http_logs_export(%L, NULL, %L)', :'osv', '{}')) AS error;
SELECT test.err(format('SELECT psk.http_logs_export(%L, NULL, %L)', :'admin', '{"action": "GONE"}')) AS error;
SELECT test.err(format('SELECT psk.http_logs_export(%L, NULL, %L)', :'admin',
       '{"start_date": "2030-01-02", "end_date": "2030-01-01"}')) AS error;
SELECT * FROM psk.http_codes_export(:'admin', NULL, '{"code_type": "OSV"}') LIMIT 2;
SELECT id = (SELECT id FROM psk.audit_log WHERE code = 'NEW-1') AS same_id,
       logged_at = to_json((SELECT logged_at FROM psk.audit_log WHERE code = 'NEW-1')) #>> '{}' AS same_time,
       action, code, user_name, contact_email, tester_name, country, region,
       replace(note, :'batch', '<batch>') AS note
  FROM psk.http_logs_export(:'admin', NULL, '{"code": "new-1"}');
-- every exported row is psk_codes' row, every column as text, and every
-- audit row psk_log's, oldest first
SELECT count(*) AS rows_differing FROM (
  (SELECT code, code_type, status, holder, tester_name,
          to_json(reserved_at) #>> '{}', to_json(expires_at) #>> '{}',
          to_json(released_at) #>> '{}', note, NULLIF(array_to_string(countries, ';'), '')
     FROM psk_codes(NULL, NULL, NULL, 10000)
   EXCEPT ALL
   SELECT * FROM psk.http_codes_export(:'admin', NULL, '{}'))
) d;
SELECT (SELECT count(*) FROM psk.http_codes_export(:'admin', NULL, '{}')) = (SELECT count(*) FROM psk.codes) AS all_codes;
SELECT array_agg(id) = array_agg(id ORDER BY id) AS oldest_first,
       count(*) = (SELECT count(*) FROM psk.audit_log) AS all_rows
  FROM psk.http_logs_export(:'admin', NULL, '{}');
