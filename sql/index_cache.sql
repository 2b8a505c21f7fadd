-- The writer's indexes (index_cache.c): IndexInfo built once per backend,
-- with compiled predicates, and rebuilt when an index or its table changes.
-- Each check reads an index both ways: through the index, and by a scan of
-- the table with the index's own condition.
\i test/fixtures/reset.sql
\i test/fixtures/engine.sql
\set VERBOSITY terse

SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['IC-1', 'IC-2', 'IC-3', 'IC-4']);
-- the entries the partial indexes hold, against the table's rows
CREATE FUNCTION test.by_index(cond text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
    EXECUTE 'SELECT count(*) FROM psk.codes WHERE ' || cond INTO n;
    RETURN n;
END $$;
CREATE FUNCTION test.by_table(cond text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off;
    SET LOCAL enable_bitmapscan = off;
    EXECUTE 'SELECT count(*) FROM psk.codes WHERE ' || cond INTO n;
    RETURN n;
END $$;

-- the cache filled by a first reserve and release in this session
SELECT code FROM psk_reserve('osv@example.com', 'first');
SELECT code FROM psk_release('osv@example.com', 'IC-1');

-- an index made now is written by the next calls of the same session
CREATE INDEX codes_tester_test_idx ON psk.codes (tester_name) WHERE tester_name IS NOT NULL;
SELECT code FROM psk_reserve('osv@example.com', 'second');
SELECT test.by_index('tester_name = ''second''') AS in_index,
       test.by_table('tester_name = ''second''') AS in_table;

-- its predicate changed (dropped and made again under the same name)
DROP INDEX psk.codes_tester_test_idx;
CREATE INDEX codes_tester_test_idx ON psk.codes (tester_name) WHERE tester_name LIKE 't%';
SELECT code FROM psk_reserve('osv@example.com', 'third');
SELECT code FROM psk_reserve('osv@example.com', 'second again');
SELECT test.by_index('tester_name LIKE ''t%''') AS in_index,
       test.by_table('tester_name LIKE ''t%''') AS in_table;

-- an expression index
CREATE INDEX codes_tester_lower_test_idx ON psk.codes (lower(tester_name));
SELECT code FROM psk_release('osv@example.com', 'IC-2');
SELECT code FROM psk_reserve('osv@example.com', 'Fourth');
SELECT test.by_index('lower(tester_name) = ''fourth''') AS in_index,
       test.by_table('lower(tester_name) = ''fourth''') AS in_table;

-- the table's relcache invalidated in the middle of a call (an ANALYZE of
-- psk.codes from a BEFORE trigger, as another session's VACUUM or ANALYZE
-- reaches a call at its next lock): the entries in use are dropped, their
-- compiled predicates kept to the end of the transaction
CREATE FUNCTION test.analyze_codes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.tester_name = 'analyze me' THEN
        ANALYZE psk.codes;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER analyze_codes BEFORE UPDATE ON psk.codes
    FOR EACH ROW EXECUTE FUNCTION test.analyze_codes();
SELECT code FROM psk_release('osv@example.com', 'IC-3');
SELECT code FROM psk_reserve('osv@example.com', 'analyze me');
SELECT code FROM psk_reserve('osv@example.com', 'analyze me');
DROP TRIGGER analyze_codes ON psk.codes;
SELECT test.by_index('tester_name = ''analyze me''') AS in_index,
       test.by_table('tester_name = ''analyze me''') AS in_table;

-- psk's own partial indexes after all that: every free code in the free
-- list, every held code in the holder and held-since indexes
SELECT test.by_index('status = ''CAN_BE_USED'' AND pool = ''OSV''') = test.by_table('status = ''CAN_BE_USED'' AND pool = ''OSV''') AS free_list,
       test.by_index('holder_id IS NOT NULL') = test.by_table('holder_id IS NOT NULL') AS holders;
DROP INDEX psk.codes_tester_test_idx, psk.codes_tester_lower_test_idx;
