-- Every bcrypt hash psk makes has the cost PSK_BCRYPT_COST (psk.h): the
-- stored ones and the dummy hash a login without an account is checked
-- against, made once per backend.  So an unknown e-mail and a wrong
-- password each cost one bcrypt of the same cost.
\i test/fixtures/reset.sql
SELECT FROM psk_update_user('admin@example.com', (SELECT id FROM psk.users WHERE email = 'osv@example.com'),
                            password => 'Other-pass1');
-- the cost field ($2a$NN$) of every stored hash and of the dummy one
SELECT DISTINCT split_part(password_hash, '$', 3) AS stored_cost FROM psk.users;
SELECT split_part(psk.login_dummy_hash(), '$', 2) AS dummy_kind,
       split_part(psk.login_dummy_hash(), '$', 3) AS dummy_cost,
       length(psk.login_dummy_hash()) AS dummy_length;
SELECT ARRAY(SELECT DISTINCT split_part(password_hash, '$', 3) FROM psk.users)
       = ARRAY[split_part(psk.login_dummy_hash(), '$', 3)] AS same_cost;
-- made once per backend, not a constant of the source
SELECT psk.login_dummy_hash() = psk.login_dummy_hash() AS same_in_backend,
       psk.login_dummy_hash() <> '$2a$10$ipwpRfSPwXhz29HBUzrLC.SbCh7vtrMh52duM01qW8h5l2fm2QNwe' AS not_the_old_literal;
-- a real bcrypt hash: checking a password against it gives itself back only for its password
SELECT psk.crypt('Rdl@12345', psk.login_dummy_hash()) <> psk.login_dummy_hash() AS no_password_matches;
-- both failures are the same error
SELECT test.err($$SELECT * FROM psk_login('nobody@example.com', 'Rdl@12345')$$);
SELECT test.err($$SELECT * FROM psk_login('hsv@example.com', 'wrong-password')$$);
