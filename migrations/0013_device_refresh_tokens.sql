-- Rotating desk credentials: a desk that asks for them at enrolment gets a short-lived access
-- token (its hash stays in devices.token_hash, its end in token_expires_at) and a refresh
-- token that is replaced every time it is used. A refresh token used a second time means it
-- was copied: the desk is revoked (it keeps its data and outbox and is enrolled again), unless
-- the second use comes within a short grace of the first and the token that replaced it was
-- never used (the desk retrying after a lost answer).

-- NULL: a long-lived token (desks enrolled before this, or desks that did not ask to rotate).
ALTER TABLE devices ADD COLUMN token_expires_at timestamptz NULL;

CREATE TABLE device_refresh_tokens (
    tenant_id   uuid        NOT NULL,
    token_id    uuid        NOT NULL,
    device_id   uuid        NOT NULL,
    -- sha256 of the secret; the token itself is shown once.
    secret_hash bytea       NOT NULL CHECK (length(secret_hash) = 32),
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    -- When it was exchanged (or withdrawn by a retry within the grace), and for what.
    used_at     timestamptz NULL,
    replaced_by uuid        NULL,
    PRIMARY KEY (tenant_id, token_id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, device_id),
    CHECK (replaced_by IS NULL OR used_at IS NOT NULL)
);
CREATE INDEX device_refresh_tokens_device ON device_refresh_tokens (tenant_id, device_id);

ALTER TABLE device_refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE device_refresh_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON device_refresh_tokens
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON device_refresh_tokens TO kaunter_app;
