-- Quotas: psk.max_held_per_user.  A reserve that would leave its caller
-- holding (RESERVED plus IN_USE) more codes than that raises PK011
-- quota_exceeded and reserves nothing; 0 (the default) is no limit.
\i test/fixtures/reset.sql

SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV',
                                   ARRAY['O1', 'O2', 'O3', 'O4', 'O5', 'O6']);
CREATE VIEW test.held AS
SELECT u.email, count(c.id) AS held
  FROM psk.users u LEFT JOIN psk.codes c ON c.holder_id = u.id
 WHERE NOT u.is_admin GROUP BY u.email ORDER BY u.email;

-- no limit by default
SHOW psk.max_held_per_user;
SELECT count(*) FROM psk_reserve('osv@example.com', 'alice', how_many => 3);
SELECT code, reservation_token AS o1 FROM psk_reserve('osv@example.com', 'alice') \gset
SELECT code, status FROM psk_confirm('osv@example.com', :'code', :'o1');
SELECT * FROM test.held;

-- 4 held (IN_USE counts): a fifth is over a quota of 4, and so is any
-- how_many that would pass it; refused whole, nothing changed
SET psk.max_held_per_user = 4;
SELECT test.state() AS before \gset
SELECT * FROM psk_reserve('osv@example.com', 'alice');
:refused
SELECT * FROM psk_reserve('osv@example.com', 'alice', how_many => 2);
:refused
-- the user's own holds only: another user reserves
SELECT count(*) FROM psk_reserve('hsv@example.com', 'bob', code_type => 'OSV');
-- below the quota again, up to it
SELECT code FROM psk_release('osv@example.com', :'code');
SELECT test.state() AS before \gset
SELECT * FROM psk_reserve('osv@example.com', 'alice', how_many => 2);
:refused
SELECT count(*) FROM psk_reserve('osv@example.com', 'alice');
SELECT * FROM test.held;
-- the message
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'alice')$$);
-- who may and the arguments come first
SELECT test.err($$SELECT * FROM psk_reserve('admin@example.com', 'alice')$$);
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'alice', how_many => 0)$$);
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'alice', code_type => 'GOLD')$$);

-- a retry of a remembered request_id reserves nothing: it is answered at
-- the quota too; a new one is refused
SET psk.max_held_per_user = 0;
SELECT code FROM psk_release('osv@example.com', 'O1');
CREATE TABLE test.first AS SELECT * FROM psk_reserve('osv@example.com', 'carol', request_id => 'q-1');
SET psk.max_held_per_user = 4;
SELECT (SELECT array_agg(f::text) FROM test.first f)
     = (SELECT array_agg(r::text) FROM psk_reserve('osv@example.com', 'carol', request_id => 'q-1') r)
       AS replayed_at_the_quota;
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'carol', request_id => 'q-2')$$);
SELECT count(*) AS remembered FROM psk.reserve_requests;

-- lowering the quota below what a user holds takes nothing away
SET psk.max_held_per_user = 1;
SELECT * FROM test.held;
SELECT test.err($$SELECT * FROM psk_reserve('osv@example.com', 'alice')$$);
RESET psk.max_held_per_user;

-- the settings of this release are a superuser's, as the others
CREATE ROLE regress_psk_quota;
GRANT USAGE ON SCHEMA test TO regress_psk_quota;
SET ROLE regress_psk_quota;
SELECT test.err($$SET psk.max_held_per_user = 0$$);
SELECT test.err($$SET psk.in_use_ttl = 0$$);
SELECT test.err($$SELECT * FROM psk.reserve_requests$$);
SELECT test.err($$SELECT * FROM psk_overdue()$$);
SELECT test.err($$SELECT * FROM psk_renew('osv@example.com', 'O1', gen_random_uuid())$$);
RESET ROLE;
DROP OWNED BY regress_psk_quota;
DROP ROLE regress_psk_quota;
