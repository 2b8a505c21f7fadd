-- psk_log: pages of the whole audit trail, with filters.
\i test/fixtures/reset.sql
\i test/fixtures/engine.sql
SELECT FROM psk_create_user('admin@example.com', 'Lab', 'Dr. 100%', 'dr@example.com', 'Rdl@12345', pool => 'COMMON');
SELECT count(*) FROM psk_add_codes('admin@example.com', 'COMMON',
    ARRAY['AB12', '12AB', 'XAB12X', 'ZAB12', 'A_1', 'AX1', '50%', 'BANG!']);
SELECT code FROM psk_reserve('dr@example.com', 'doc', how_many => 2);
SELECT code FROM psk_release('dr@example.com', 'AB12', note => 'ok');
SELECT code FROM psk_reserve('osv@example.com', 'tess', 'UK');
SELECT code FROM psk_reserve('hsv@example.com', 'hank', 'IN');
SELECT code FROM psk_release('osv@example.com', 'XAB12X', 'CL-9');
SELECT count(*) FROM psk_add_codes('admin@example.com', 'HSV', ARRAY['P1', 'P2', 'P3', 'P4', 'P5']);

-- the first page: 20 rows, newest first (logged_at, then id), and the
-- number of all rows
SELECT total_count, action, code, user_name, contact_email, tester_name, country, region, note
  FROM psk_log();
SELECT count(*) AS all_rows FROM psk.audit_log;
-- pages of 7: the pages together are the whole log in order; past the end: empty
SELECT page, count(*) AS n, min(total_count) AS total FROM
  (SELECT 1 AS page, * FROM psk_log(1, 7) UNION ALL SELECT 2, * FROM psk_log(2, 7)
   UNION ALL SELECT 3, * FROM psk_log(3, 7) UNION ALL SELECT 4, * FROM psk_log(4, 7)
   UNION ALL SELECT 5, * FROM psk_log(5, 7)) p
 GROUP BY page ORDER BY page;
SELECT (SELECT array_agg(id) FROM (SELECT id FROM psk_log(1, 7) UNION ALL SELECT id FROM psk_log(2, 7)
                                   UNION ALL SELECT id FROM psk_log(3, 7) UNION ALL SELECT id FROM psk_log(4, 7)) p)
     = (SELECT array_agg(id ORDER BY logged_at DESC, id DESC) FROM psk.audit_log) AS pages_cover_log;
SELECT count(*) AS past_the_end FROM psk_log(5, 7);
SELECT count(*) AS far_past_the_end FROM psk_log(1000000, 100);
SELECT count(*) AS defaults, min(total_count) AS total FROM psk_log(NULL, NULL);

-- code: normalised, matches as prefix or suffix, wildcards taken literally
SELECT total_count, action, code, user_name FROM psk_log(code => ' ab ');
SELECT total_count, action, code FROM psk_log(code => 'ab12');
SELECT total_count, action, code FROM psk_log(code => 'a_');
SELECT total_count, action, code FROM psk_log(code => '%');
SELECT total_count, action, code FROM psk_log(code => '!');
SELECT total_count, action, code FROM psk_log(code => 'zzz');
-- user_name: case-insensitive substring, wildcards taken literally
SELECT DISTINCT user_name, contact_email FROM psk_log(user_name => 'SV', page_size => 100) ORDER BY 1;
SELECT total_count, action, code, user_name FROM psk_log(user_name => '%');
SELECT DISTINCT total_count, user_name FROM psk_log(user_name => 'DR. ');
SELECT count(*) FROM psk_log(user_name => '_');
-- action: any audit action, case-insensitive
SELECT total_count, action, code, user_name, tester_name, note FROM psk_log(action => 'released');
SELECT total_count, action, note FROM psk_log(action => 'User_Created');
SELECT total_count, action, code FROM psk_log(code => 'ab', action => 'ADDED');
-- since inclusive, until exclusive
SELECT logged_at AS t FROM psk.audit_log WHERE action = 'RELEASED' AND code = 'AB12' \gset
SELECT action, code FROM psk_log(since => :'t', page_size => 100) ORDER BY id LIMIT 1;
SELECT (SELECT count(*) FROM psk_log(since => :'t', page_size => 100))
     + (SELECT count(*) FROM psk_log(until => :'t', page_size => 100)) = (SELECT count(*) FROM psk.audit_log) AS split_exactly,
       (SELECT min(total_count) FROM psk_log(since => :'t')) = (SELECT count(*) FROM psk.audit_log WHERE logged_at >= :'t') AS since_count,
       (SELECT bool_and(logged_at < :'t') FROM psk_log(until => :'t', page_size => 100)) AS until_before;
SELECT count(*) AS empty_window FROM psk_log(since => :'t', until => :'t');
SELECT total_count, action, code FROM psk_log(since => :'t', until => :'t'::timestamptz + interval '1 microsecond');

-- refusals
SELECT test.state() AS before \gset
SELECT test.err($$SELECT psk_log(0)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_log(-1)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_log(1000001)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_log(1, 0)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_log(1, 101)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_log(action => 'NOPE')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_log(since => '2030-01-02', until => '2030-01-01')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_log(code => repeat('c', 129))$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_log(user_name => repeat('u', 129))$$) AS error, test.state() = :'before' AS unchanged;
