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

-- Failed logins, one row each, by lower-cased e-mail whether or not an
-- account has it (so that a wrong e-mail and a wrong password look alike).
-- Written by a short-lived background worker in its own transaction, so a
-- row survives the rollback of the login that failed.  Rows older than
-- psk.login_lockout are swept by later failures.  The id is there so that
-- the table has a primary key, which logical replication and change data
-- capture need to replicate its deletes (a publication FOR ALL TABLES
-- otherwise refuses every login); last, as the 0.2.1 update adds it.
CREATE TABLE psk.login_failures (
    email     text NOT NULL CHECK (pg_catalog.length(email) BETWEEN 1 AND 254),
    failed_at timestamptz NOT NULL DEFAULT pg_catalog.statement_timestamp(),
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY
);
CREATE INDEX login_failures_email_idx ON psk.login_failures (email, failed_at);
CREATE INDEX login_failures_time_idx ON psk.login_failures (failed_at);

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

