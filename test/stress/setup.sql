-- The stress database: psk with the demo accounts (test/fixtures/tap.sql
-- runs first), the stress accounts and small pools, and schema "stress"
-- where the clients' acknowledgements are loaded for invariants.sql.
--
-- psql variables: clients (client 0 is the expirer and has no account),
-- admins (clients 1..admins are admins; the others are users, pool by
-- client number modulo 3 as psk-load counts them).
\set ON_ERROR_STOP on
\set QUIET on
SET client_min_messages = warning;

-- Accounts c01..cNN@stress.test and the janitor; and c01b..cNNb, the
-- second accounts a client of the HTTP crash round comes back as after
-- the shim died under one of its calls (psk-load -R).
SELECT count(*) AS accounts FROM (
    SELECT psk_create_user('admin@example.com',
                           CASE WHEN i <= :admins THEN 'Stress admins' ELSE 'Stress' END,
                           format('c%s%s', lpad(i::text, 2, '0'), b),
                           format('c%s%s@stress.test', lpad(i::text, 2, '0'), b),
                           'Rdl@12345', i <= :admins,
                           CASE WHEN i > :admins THEN (ARRAY['OSV', 'HSV', 'COMMON'])[i % 3 + 1] END)
      FROM generate_series(1, :clients - 1) i, unnest(ARRAY['', 'b']) b
    UNION ALL
    SELECT psk_create_user('admin@example.com', 'Stress admins', 'janitor',
                           'janitor@stress.test', 'Rdl@12345', true)) s \gset

-- Small pools, so that they run dry: 20 OSV, 20 HSV, 30 COMMON.  Half of
-- the OSV and HSV codes are valid in UK and DE, the other half in UK only
-- (OSV) or DE only (HSV); none in IN, where OSV and HSV users always fall
-- back on COMMON.
SELECT count(*) FILTER (WHERE outcome = 'inserted') AS inserted FROM (
    SELECT * FROM psk_add_codes('admin@example.com', 'OSV',
        ARRAY(SELECT format('OSV-%s', lpad(i::text, 3, '0')) FROM generate_series(1, 10) i),
        ARRAY['UK', 'DE'])
    UNION ALL
    SELECT * FROM psk_add_codes('admin@example.com', 'OSV',
        ARRAY(SELECT format('OSV-%s', lpad(i::text, 3, '0')) FROM generate_series(11, 20) i),
        ARRAY['UK'])
    UNION ALL
    SELECT * FROM psk_add_codes('admin@example.com', 'HSV',
        ARRAY(SELECT format('HSV-%s', lpad(i::text, 3, '0')) FROM generate_series(1, 10) i),
        ARRAY['UK', 'DE'])
    UNION ALL
    SELECT * FROM psk_add_codes('admin@example.com', 'HSV',
        ARRAY(SELECT format('HSV-%s', lpad(i::text, 3, '0')) FROM generate_series(11, 20) i),
        ARRAY['DE'])
    UNION ALL
    SELECT * FROM psk_add_codes('admin@example.com', 'COMMON',
        ARRAY(SELECT format('CMN-%s', lpad(i::text, 3, '0')) FROM generate_series(1, 30) i))) a \gset
\echo setup: :accounts stress accounts, :inserted codes

CREATE EXTENSION amcheck;
CREATE SCHEMA stress;

-- What the clients were told (psk-load's ack files, see write_line there).
CREATE TABLE stress.acks (
    round     int NOT NULL,
    client    text NOT NULL,
    actor     text,
    seq       int NOT NULL,
    sub       int NOT NULL,
    op        text NOT NULL,
    result    text NOT NULL CHECK (result IN ('ok', 'err', 'lost')),
    sqlstate  text,
    code      text,
    token     uuid,
    code_pool text,
    how_many  int,
    req_pool  text,
    country   text,
    ttl       int NOT NULL,
    t_send    bigint NOT NULL,
    t_recv    bigint NOT NULL
);

-- Rounds of load; an audit row belongs to the last round that began
-- before it (audit ids only grow, across crashes too).
CREATE TABLE stress.rounds (
    round          int PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('load', 'crash')),
    first_audit_id bigint NOT NULL
);

-- The pool sizes filled above.
CREATE TABLE stress.pool_sizes (pool text PRIMARY KEY, n bigint NOT NULL);
INSERT INTO stress.pool_sizes VALUES ('OSV', 20), ('HSV', 20), ('COMMON', 30);

-- The refusals each call may meet under this load (psk-load.c: expected).
CREATE TABLE stress.expected_errors (op text, sqlstate text, PRIMARY KEY (op, sqlstate));
INSERT INTO stress.expected_errors VALUES
    ('reserve', 'PK001'),
    ('confirm', 'PK006'), ('confirm', 'PK004'), ('confirm', 'PK003'),
    ('confirm_bad', 'PK005'), ('confirm_bad', 'PK004'), ('confirm_bad', 'PK003'),
    ('release', 'PK004'), ('release', 'PK003'),
    ('mark', 'PK004'), ('mark', 'PK003'),
    ('admin_mark', 'PK004'),
    ('disassociate', 'PK004'),
    ('restore', 'PK004');

-- The audit action of each successful call.
CREATE TABLE stress.op_actions (op text PRIMARY KEY, action text NOT NULL);
INSERT INTO stress.op_actions VALUES
    ('reserve', 'RESERVED'), ('confirm', 'CONFIRMED'),
    ('confirm_bad', 'CONFIRMED'), ('release', 'RELEASED'),
    ('mark', 'MARKED_NON_USABLE'), ('admin_mark', 'MARKED_NON_USABLE'),
    ('disassociate', 'DISASSOCIATED'), ('restore', 'RESTORED'),
    ('expire', 'EXPIRED');
CREATE INDEX ON stress.acks (round, client, code);
CREATE INDEX ON stress.acks (round, code) WHERE result = 'ok';
