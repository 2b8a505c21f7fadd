-- Sessions and the brute-force guard (sessions.c, login_guard.c).

-- A session is known by the SHA-256 of its token only: the token itself is
-- handed to the caller once and never stored.  Ended sessions (expired, or
-- revoked and then expired) are swept by later logins.
CREATE TABLE psk.sessions (
    token_hash bytea PRIMARY KEY CHECK (pg_catalog.length(token_hash) = 32),
    user_id    bigint NOT NULL REFERENCES psk.users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX sessions_user_idx ON psk.sessions (user_id);
CREATE INDEX sessions_expires_idx ON psk.sessions (expires_at);

-- Failed logins, one row each, against the account (user_id) when the
-- e-mail has one, else against the e-mail (so that a wrong e-mail and a
-- wrong password look alike), as email_hmac: HMAC-SHA256 of the e-mail
-- (trimmed, lower-cased) under the key of psk.login_key.  No typed text is
-- stored: a password typed into the e-mail field is not readable here.
-- Written by the login guard, a background worker, in its own transaction,
-- so a row survives the rollback of the login that failed (login_guard.c).
-- Rows older than psk.login_lockout are swept by later failures.  The id
-- is there so that the table has a primary key, which logical replication
-- and change data capture need to replicate its deletes (a publication FOR
-- ALL TABLES otherwise refuses every login).  No foreign key on user_id:
-- the guard must never fail on a user deleted meanwhile.
CREATE TABLE psk.login_failures (
    failed_at  timestamptz NOT NULL DEFAULT pg_catalog.statement_timestamp(),
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint,
    email_hmac bytea CHECK (pg_catalog.length(email_hmac) = 32),
    CHECK ((user_id IS NULL) <> (email_hmac IS NULL))
);
CREATE INDEX login_failures_user_idx ON psk.login_failures (user_id, failed_at);
CREATE INDEX login_failures_hmac_idx ON psk.login_failures (email_hmac, failed_at);
CREATE INDEX login_failures_time_idx ON psk.login_failures (failed_at);

-- The key of email_hmac: one random row, made here (gen_random_uuid is
-- pg_strong_random's), read only by psk.  Not dumped (90_backup.sql): a
-- restore makes a key of its own, so that no dump holds anything from
-- which a typed e-mail could be tried back; failures of e-mails without an
-- account do not survive a restore (an account's do).
CREATE TABLE psk.login_key (
    id  int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    key bytea NOT NULL CHECK (pg_catalog.length(key) = 32)
);
INSERT INTO psk.login_key (key)
SELECT pg_catalog.decode(pg_catalog.replace(
           pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text,
           '-', ''), 'hex');

-- Logins of one e-mail are serialised on a row of this table, the slot of
-- the e-mail's hash, locked for the login's transaction (sessions.c).  A
-- lock any role may take, as an advisory lock, would let every role that
-- can connect lock an account out of logging in; locking these rows needs
-- a privilege on psk that no caller has.  E-mails that share a slot wait on
-- each other, as rarely as 1024 slots make it.  Its rows are the install
-- script's, not data: pg_dump leaves it out (90_backup.sql).
CREATE TABLE psk.login_slots (
    slot int PRIMARY KEY CHECK (slot BETWEEN 0 AND 1023)
);
INSERT INTO psk.login_slots SELECT pg_catalog.generate_series(0, 1023);

