-- Retries that do not reserve twice: psk_reserve's request_id.  The first
-- successful call is remembered per user for 24 hours; a repeat with the
-- same arguments returns exactly its rows and reserves nothing, with other
-- arguments it is a conflict; a failed call is not remembered.
\i test/fixtures/reset.sql

SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['O1', 'O2', 'O3'], ARRAY['UK']);
SELECT count(*) FROM psk_add_codes('admin@example.com', 'COMMON', ARRAY['C1', 'C2', 'C3', 'C4', 'C5', 'C6']);
CREATE VIEW test.log AS
SELECT action, code, contact_email, tester_name FROM psk.audit_log
 WHERE code IS NOT NULL AND action <> 'ADDED' ORDER BY id;
CREATE VIEW test.requests AS
SELECT u.email, r.request_id, r.tester_name, r.country, r.code_type, r.how_many,
       r.codes, r.code_types, r.made_at = r.reserved_at AS made_when_reserved
  FROM psk.reserve_requests r JOIN psk.users u ON u.id = r.user_id
 ORDER BY u.email, r.request_id;

-- the first call reserves and is remembered
CREATE TABLE test.first AS
SELECT * FROM psk_reserve('osv@example.com', 'alice', request_id => 'run-1');
SELECT code, code_type FROM test.first;
SELECT * FROM test.requests;
SELECT count(*) AS audit_rows FROM psk.audit_log \gset
-- the retry: the same row, to the token and the times, and nothing else
CREATE TABLE test.again AS
SELECT * FROM psk_reserve('osv@example.com', 'alice', request_id => 'run-1');
SELECT (SELECT array_agg(f::text) FROM test.first f) = (SELECT array_agg(a::text) FROM test.again a) AS same_rows;
SELECT count(*) - :audit_rows AS new_audit_rows FROM psk.audit_log;
SELECT code, status, tester_name FROM psk.codes WHERE status <> 'CAN_BE_USED' ORDER BY code;

-- how_many: the same rows in the same order
CREATE TABLE test.many AS
SELECT * FROM psk_reserve('osv@example.com', 'bob', 'uk', how_many => 3, request_id => 'run-2');
SELECT code, code_type FROM test.many;
SELECT (SELECT array_agg(m::text) FROM test.many m)
     = (SELECT array_agg(r::text) FROM psk_reserve('osv@example.com', 'bob', 'UK', how_many => 3,
                                                   request_id => 'run-2') r) AS same_rows;
-- the arguments as they mean: a country's name and a pool's in any case
SELECT code FROM psk_reserve('osv@example.com', 'bob', ' Uk', how_many => 3, request_id => 'run-2');

-- even after the codes have moved on: the rows as they were then
SELECT r.code FROM test.first f, psk_release('osv@example.com', f.code) r;
SELECT code FROM psk_reserve('hsv@example.com', 'carol', code_type => 'OSV');
SELECT (SELECT array_agg(f::text) FROM test.first f)
     = (SELECT array_agg(r::text) FROM psk_reserve('osv@example.com', 'alice', request_id => 'run-1') r)
       AS same_rows_after_release;
SELECT * FROM test.log;

-- the same request_id with other arguments: conflict, nothing changed
SELECT test.state() AS before \gset
SELECT * FROM psk_reserve('osv@example.com', 'alicia', request_id => 'run-1');
:refused
SELECT * FROM psk_reserve('osv@example.com', 'alice', 'UK', request_id => 'run-1');
:refused
SELECT * FROM psk_reserve('osv@example.com', 'alice', code_type => 'OSV', request_id => 'run-1');
:refused
SELECT * FROM psk_reserve('osv@example.com', 'alice', how_many => 2, request_id => 'run-1');
:refused
SELECT * FROM psk_reserve('osv@example.com', 'bob', 'UK', how_many => 2, request_id => 'run-2');
:refused
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'alicia', request_id => 'run-1')$$);
-- request_ids are compared as given, and per user
SELECT count(*) FROM psk_reserve('osv@example.com', 'alice', code_type => 'COMMON', request_id => 'RUN-1');
SELECT count(*) FROM psk_reserve('hsv@example.com', 'alicia', code_type => 'COMMON', request_id => 'run-1');
SELECT * FROM test.requests;

-- a call that failed is not remembered: the same request_id runs again
SELECT test.state() AS before \gset
SELECT * FROM psk_reserve('osv@example.com', 'dave', how_many => 5, request_id => 'run-3');
:refused
SELECT code FROM psk_release('hsv@example.com', 'O1');
SELECT code FROM psk_reserve('osv@example.com', 'dave', request_id => 'run-3');
SELECT request_id, codes FROM test.requests WHERE request_id = 'run-3';

-- who may first, then the request_id (1 to 255 characters), then the rest
SELECT test.state() AS before \gset
SELECT * FROM psk_reserve('admin@example.com', NULL, request_id => '');
:refused
SELECT * FROM psk_reserve('nobody@example.com', 'x', request_id => repeat('r', 256));
:refused
SELECT * FROM psk_reserve('osv@example.com', 'x', request_id => '');
:refused
SELECT * FROM psk_reserve('osv@example.com', 'x', request_id => repeat('r', 256));
:refused
SELECT * FROM psk_reserve('osv@example.com', 'x', request_id => repeat('r', 10000000));
:refused
-- the arguments before the request_id, in psk_reserve's order
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', NULL, request_id => '')$$);
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'x', how_many => 0, request_id => '')$$);
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'x', request_id => '')$$);
-- an argument error of a known request_id is still that error
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'alice', 'Atlantis', request_id => 'run-1')$$);
-- 255 characters (not bytes): a request_id
SELECT count(*) FROM psk_reserve('osv@example.com', 'x', code_type => 'COMMON', request_id => repeat('é', 255));
SELECT length(request_id) FROM psk.reserve_requests WHERE request_id LIKE 'é%';

-- 24 hours later a request_id is forgotten: the same one reserves anew
-- (over the old row), whatever arguments it had
SELECT code FROM psk_release('osv@example.com', 'C1');
UPDATE psk.reserve_requests SET made_at = made_at - interval '24 hours'
 WHERE request_id = 'run-1' AND user_id = (SELECT id FROM psk.users WHERE email = 'osv@example.com');
SELECT code, code_type FROM psk_reserve('osv@example.com', 'alicia', code_type => 'COMMON', request_id => 'run-1');
SELECT * FROM test.requests WHERE request_id = 'run-1';
-- and the sweep (the worker, or psk_expire_reservations) deletes what is
-- older than 24 hours, and nothing else
UPDATE psk.reserve_requests SET made_at = made_at - interval '25 hours' WHERE request_id IN ('run-2', 'RUN-1');
SELECT * FROM psk_expire_reservations();
SELECT email, left(request_id, 8) AS request_id FROM test.requests;

-- the table is dumped by pg_dump, as every table of psk but login_slots
SELECT rel::regclass FROM pg_extension e, unnest(e.extconfig) rel
 WHERE e.extname = 'psk' AND rel = 'psk.reserve_requests'::regclass;
