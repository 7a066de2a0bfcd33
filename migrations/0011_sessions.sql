-- Head-office web sessions. The cookie holds `ks1.<tenant>.<session>.<secret>`; the server keeps
-- sha256(secret). A session ends at expires_at (absolute), after a long idle time, or when it
-- is revoked (logout, a new login from the same browser).
CREATE TABLE sessions (
    tenant_id    uuid        NOT NULL,
    session_id   uuid        NOT NULL,
    user_id      uuid        NOT NULL,
    secret_hash  bytea       NOT NULL CHECK (length(secret_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz NULL,
    PRIMARY KEY (tenant_id, session_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, user_id)
);

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sessions
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON sessions TO kaunter_app;
