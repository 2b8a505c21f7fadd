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
