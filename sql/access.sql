-- Access control of every psk_* function with an acting user: unknown,
-- NULL and wrong-role callers, and non-holders of a holder's code.  One row
-- per cell: the expected SQLSTATE, what the call raised, and whether psk's
-- state is unchanged (test.state()).
\i test/fixtures/reset.sql

-- O1 held by osv (OSV), F1 free, N1 non-usable; osv2 is osv's peer in OSV
SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['O1', 'F1', 'N1']);
SELECT count(*) FROM psk_add_codes('admin@example.com', 'HSV', ARRAY['H1']);
SELECT code, reservation_token AS o1_token FROM psk_reserve('osv@example.com', 'alice') \gset
SELECT code FROM psk_mark_non_usable('admin@example.com', 'N1', 'broken');
SELECT id AS peer_id FROM psk_create_user('admin@example.com', 'Trillium', 'osv2', 'osv2@example.com', 'Rdl@12345', pool => 'OSV') \gset
SELECT code, code_type, status, holder FROM psk_codes() ORDER BY code;

-- Callers: unknown, null, admin, user (osv, the holder of O1), other (hsv,
-- another pool), peer (osv2, the same pool); %1$L in a call is the caller.
CREATE TABLE test.cells (n int GENERATED ALWAYS AS IDENTITY, fn text, caller text,
                         expected text, call text);
INSERT INTO test.cells (fn, caller, expected, call)
SELECT f.fn, c.caller, c.expected, f.call
  FROM (VALUES
        ('psk_reserve', 'SELECT * FROM psk_reserve(%1$L, ''x'')'),
        ('psk_confirm', format('SELECT * FROM psk_confirm(%%1$L, ''O1'', %L)', :'o1_token')),
        ('psk_release', 'SELECT * FROM psk_release(%1$L, ''O1'')'),
        ('psk_comment', 'SELECT * FROM psk_comment(%1$L, ''O1'', ''x'')'),
        ('psk_mark_non_usable', 'SELECT * FROM psk_mark_non_usable(%1$L, ''O1'', ''x'')'),
        ('psk_my_codes', 'SELECT * FROM psk_my_codes(%1$L)'),
        ('psk_user_log', 'SELECT * FROM psk_user_log(%1$L)')) AS f(fn, call)
 CROSS JOIN (VALUES ('unknown', 'PK003'), ('null', 'PK007'), ('admin', 'PK003')) AS c(caller, expected)
 WHERE NOT (f.fn = 'psk_mark_non_usable' AND c.caller = 'admin')  -- an admin may: below
 UNION ALL
SELECT f.fn, c.caller, 'PK003', f.call
  FROM (VALUES
        ('psk_confirm', format('SELECT * FROM psk_confirm(%%1$L, ''O1'', %L)', :'o1_token')),
        ('psk_release', 'SELECT * FROM psk_release(%1$L, ''O1'')'),
        ('psk_comment', 'SELECT * FROM psk_comment(%1$L, ''O1'', ''x'')'),
        ('psk_mark_non_usable', 'SELECT * FROM psk_mark_non_usable(%1$L, ''O1'', ''x'')')) AS f(fn, call)
 CROSS JOIN (VALUES ('other'), ('peer')) AS c(caller)
 UNION ALL
SELECT f.fn, c.caller, c.expected, f.call
  FROM (VALUES
        ('psk_disassociate', 'SELECT * FROM psk_disassociate(%1$L, ''O1'')'),
        ('psk_restore', 'SELECT * FROM psk_restore(%1$L, ''N1'')'),
        ('psk_add_codes', 'SELECT * FROM psk_add_codes(%1$L, ''OSV'', ARRAY[''Z1''])'),
        ('psk_delete_code', 'SELECT * FROM psk_delete_code(%1$L, ''F1'')'),
        ('psk_add_region', 'SELECT * FROM psk_add_region(%1$L, ''Mars'')'),
        ('psk_add_country', 'SELECT * FROM psk_add_country(%1$L, ''FR'', ''Europe'')'),
        ('psk_create_user', 'SELECT * FROM psk_create_user(%1$L, ''T'', ''u'', ''u@example.com'', ''S3cret-pass'')'),
        ('psk_update_user', format('SELECT * FROM psk_update_user(%%1$L, %s, user_name => ''x'')', :peer_id)),
        ('psk_delete_user', format('SELECT * FROM psk_delete_user(%%1$L, %s)', :peer_id))) AS f(fn, call)
 CROSS JOIN (VALUES ('unknown', 'PK003'), ('null', 'PK007'), ('user', 'PK003')) AS c(caller, expected)
 UNION ALL
-- a code nobody holds: not the caller's to confirm, release, comment or mark
SELECT f.fn, 'user', f.expected, f.call
  FROM (VALUES
        ('psk_confirm', 'PK004', format('SELECT * FROM psk_confirm(%%1$L, ''F1'', %L)', :'o1_token')),
        ('psk_release', 'PK004', 'SELECT * FROM psk_release(%1$L, ''F1'')'),
        ('psk_comment', 'PK004', 'SELECT * FROM psk_comment(%1$L, ''F1'', ''x'')'),
        ('psk_mark_non_usable', 'PK003', 'SELECT * FROM psk_mark_non_usable(%1$L, ''F1'', ''x'')')) AS f(fn, expected, call)
 UNION ALL
-- no acting admin: only for the first admin
SELECT 'psk_create_user', 'null', 'PK003',
       'SELECT * FROM psk_create_user(%1$L, ''T'', ''u'', ''u@example.com'', ''S3cret-pass'', is_admin => true)';
-- allowed, last (they change the state): a user reserves from another
-- pool; an admin marks a code it does not hold
INSERT INTO test.cells (fn, caller, expected, call) VALUES
    ('psk_reserve', 'other', 'no error', 'SELECT * FROM psk_reserve(%1$L, ''x'', code_type => ''OSV'')'),
    ('psk_reserve', 'user', 'no error', 'SELECT * FROM psk_reserve(%1$L, ''x'', code_type => ''HSV'')'),
    ('psk_mark_non_usable', 'admin', 'no error', 'SELECT * FROM psk_mark_non_usable(%1$L, ''O1'', ''x'')');

-- Run each cell, with the state before and after.
CREATE FUNCTION test.run_cells()
RETURNS TABLE (fn text, caller text, expected text, got text, unchanged boolean)
LANGUAGE plpgsql AS $$
DECLARE
    c test.cells;
    before text;
BEGIN
    FOR c IN SELECT * FROM test.cells ORDER BY n LOOP
        before := test.state();
        fn := c.fn;
        caller := c.caller;
        expected := c.expected;
        got := test.err(format(c.call, CASE c.caller
                                         WHEN 'unknown' THEN 'nobody@example.com'
                                         WHEN 'admin' THEN 'admin@example.com'
                                         WHEN 'user' THEN 'osv@example.com'
                                         WHEN 'other' THEN 'hsv@example.com'
                                         WHEN 'peer' THEN 'osv2@example.com'
                                       END));
        unchanged := test.state() = before;
        RETURN NEXT;
    END LOOP;
END
$$;
CREATE TABLE test.results AS SELECT * FROM test.run_cells() WITH ORDINALITY AS r(fn, caller, expected, got, unchanged, n);
SELECT fn, caller, expected, got, unchanged FROM test.results ORDER BY n;
SELECT count(*) AS cells,
       count(*) FILTER (WHERE split_part(got, ':', 1) <> expected
                           OR unchanged <> (expected <> 'no error')) AS wrong
  FROM test.results;
-- the allowed calls did what they say
SELECT code, code_type, status, holder FROM psk_codes() ORDER BY code;
