-- Readers: psk_my_codes, psk_recent_releases, psk_user_log, psk_counts,
-- psk_codes, psk_countries.
\i test/fixtures/reset.sql
\i test/fixtures/engine.sql
SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['O1', 'O2'], ARRAY['UK', 'DE']);
SELECT count(*) FROM psk_add_codes('admin@example.com', 'OSV', ARRAY['O3', 'O4', 'O5'], ARRAY['UK', 'DE', 'IN']);
SELECT count(*) FROM psk_add_codes('admin@example.com', 'HSV', ARRAY['H1', 'H2']);
SELECT count(*) FROM psk_add_codes('admin@example.com', 'COMMON', ARRAY['C1', 'C2']);
-- osv: O1 reserved in UK and released with a clearance; O2 reserved and
-- confirmed; then O3 and O4 in one call.  hsv: H1 reserved and released with
-- a note, H2 held.  C2 non-usable.
SELECT code FROM psk_reserve('osv@example.com', 'tess', 'uk');
SELECT code FROM psk_release('osv@example.com', 'O1', 'CL-1');
SELECT code FROM psk_reserve('hsv@example.com', 'hank');
SELECT code FROM psk_reserve('osv@example.com', 'tom');
SELECT reservation_token AS token FROM psk.codes WHERE code = 'O2' \gset
SELECT code, status FROM psk_confirm('osv@example.com', 'O2', :'token');
SELECT code FROM psk_release('hsv@example.com', 'h1', note => 'done');
SELECT code FROM psk_reserve('hsv@example.com', 'hank');
SELECT code FROM psk_reserve('osv@example.com', 'tess', how_many => 2);
SELECT code, status FROM psk_mark_non_usable('admin@example.com', 'C2', 'broken');
SELECT code, note FROM psk_comment('osv@example.com', 'O3', 'rack 7');
-- and O5 with an expiry
SET psk.reservation_ttl = '1h';
SELECT code FROM psk_reserve('osv@example.com', 'tina');
RESET psk.reservation_ttl;

--
-- psk_my_codes: the caller's RESERVED and IN_USE codes, newest first (O3 and
-- O4 were reserved together: the later id first); countries and regions
-- sorted, without repeats
--
SELECT code, code_type, status, tester_name, reserved_at IS NOT NULL AS reserved,
       expires_at - reserved_at AS ttl, reservation_token = (SELECT c.reservation_token FROM psk.codes c WHERE c.code = m.code) AS own_token,
       note, countries, regions
  FROM psk_my_codes('OSV@example.com') m;
SELECT code, code_type, status, tester_name, countries, regions FROM psk_my_codes('hsv@example.com');
-- nothing held: no rows
SELECT code FROM psk_release('hsv@example.com', 'H2');
SELECT count(*) AS hsv_holds FROM psk_my_codes('hsv@example.com');
SELECT test.state() AS before \gset
SELECT test.err($$SELECT psk_my_codes(NULL)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_my_codes('admin@example.com')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_my_codes('nobody@example.com')$$) AS error, test.state() = :'before' AS unchanged;

--
-- psk_recent_releases: the last n RELEASED events, newest first
--
SELECT code, code_type, released_at IS NOT NULL AS released, released_by, note FROM psk_recent_releases();
SELECT code, code_type, released_by, note FROM psk_recent_releases(2);
SELECT code, code_type, released_by, note FROM psk_recent_releases(NULL, 'hsv');
SELECT code, code_type, released_by, note FROM psk_recent_releases(code_type => 'COMMON');
-- released_at is the time of the release
SELECT bool_and(r.released_at = c.released_at) AS at_release
  FROM psk_recent_releases(1) r JOIN psk.codes c ON c.code = r.code;
SELECT test.state() AS before \gset
SELECT test.err($$SELECT psk_recent_releases(0)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_recent_releases(101)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_recent_releases(5, 'XSV')$$) AS error, test.state() = :'before' AS unchanged;
SELECT count(*) AS max_n FROM psk_recent_releases(100);

--
-- psk_user_log: the caller's own audit rows, newest first
--
SELECT action, code, tester_name, country, region, note FROM psk_user_log('osv@example.com');
SELECT action, code, tester_name, country, region, note FROM psk_user_log('hsv@example.com', 2);
SELECT array_agg(id) = array_agg(id ORDER BY logged_at DESC, id DESC) AS newest_first,
       bool_and(id IN (SELECT a.id FROM psk.audit_log a JOIN psk.users u ON u.id = a.user_id
                        WHERE u.email = 'osv@example.com')) AS own_rows
  FROM psk_user_log('osv@example.com', NULL);
SELECT test.state() AS before \gset
SELECT test.err($$SELECT psk_user_log(NULL)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_user_log('admin@example.com')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_user_log('nobody@example.com')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_user_log('osv@example.com', 0)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_user_log('osv@example.com', 101)$$) AS error, test.state() = :'before' AS unchanged;

--
-- psk_counts: every pool and status, zeros included
--
SELECT * FROM psk_counts();
SELECT bool_and(k.n = (SELECT count(*) FROM psk.codes c WHERE c.pool = k.code_type AND c.status = k.status)) AS exact
  FROM psk_counts() k;

--
-- psk_codes: keyset pages in code order
--
SELECT code, code_type, status, holder, tester_name, reserved_at IS NOT NULL AS reserved,
       expires_at - reserved_at AS ttl, released_at IS NOT NULL AS released, note, countries
  FROM psk_codes();
SELECT code, status, holder FROM psk_codes('osv', 'reserved');
SELECT code, status FROM psk_codes(status => 'Non_Usable');
SELECT code FROM psk_codes(page_size => 3);
SELECT code FROM psk_codes(after => ' h2 ', page_size => 3);
SELECT code FROM psk_codes(after => 'O5', page_size => 3);
SELECT code FROM psk_codes('HSV', after => 'A');
SELECT test.state() AS before \gset
SELECT test.err($$SELECT psk_codes('XSV')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_codes(status => 'FREE')$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_codes(page_size => 0)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_codes(page_size => 10001)$$) AS error, test.state() = :'before' AS unchanged;
SELECT test.err($$SELECT psk_codes(after => repeat('A', 129))$$) AS error, test.state() = :'before' AS unchanged;
SELECT count(*) AS max_page FROM psk_codes(page_size => 10000);

--
-- psk_countries: every country with its region, by id
--
SELECT country, region FROM psk_countries();
SELECT array_agg(id) = array_agg(id ORDER BY id) AS by_id,
       array_agg(id) = (SELECT array_agg(k.id ORDER BY k.id) FROM psk.countries k) AS all_ids
  FROM psk_countries();
