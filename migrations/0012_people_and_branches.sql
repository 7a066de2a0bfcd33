-- Identity, part two: head office manages its branches and its people. A branch can be closed
-- (its data stays); a person is invited (PENDING until they choose a password with the
-- invitation's secret), set ACTIVE, INACTIVE or DISABLED, and given roles; anyone may add a
-- second factor (TOTP, RFC 6238), and a business may require one of its ADMINs.

-- A closed branch keeps every row; it gets no new enrolment codes, and the unused ones stop
-- working. Its desks keep syncing until head office revokes them, so no outbox is stranded.
ALTER TABLE branches ADD COLUMN closed_at timestamptz NULL;
GRANT UPDATE ON branches TO kaunter_app;

ALTER TABLE users
    -- Who invited this person (NULL for the person who signed the business up).
    ADD COLUMN invited_by            uuid        NULL,
    -- sha256 of the invitation's secret; the secret itself is shown once. Cleared on use.
    ADD COLUMN invitation_hash       bytea       NULL CHECK (length(invitation_hash) = 32),
    ADD COLUMN invitation_expires_at timestamptz NULL,
    ADD COLUMN status_changed_at     timestamptz NULL,
    -- The TOTP shared secret (20 random bytes, RFC 4226's recommended length). Set by setup and
    -- live once confirmed with a code (totp_enabled_at); totp_last_step is the time step of
    -- the last code accepted, so a code is never accepted twice.
    ADD COLUMN totp_secret           bytea       NULL CHECK (length(totp_secret) = 20),
    ADD COLUMN totp_enabled_at       timestamptz NULL,
    ADD COLUMN totp_last_step        bigint      NULL,
    ADD CONSTRAINT users_invitation_pair
        CHECK ((invitation_hash IS NULL) = (invitation_expires_at IS NULL)),
    ADD CONSTRAINT users_totp_enabled_has_secret
        CHECK (totp_enabled_at IS NULL OR totp_secret IS NOT NULL),
    ADD CONSTRAINT users_invited_by
        FOREIGN KEY (tenant_id, invited_by) REFERENCES users (tenant_id, user_id);

-- Businesses made before sign-up existed (`admin create-business`) have no settings row; they
-- get one with the defaults sign-up uses, so every business has exactly one. Row-level
-- security is forced on both tables, so even their owner (who runs migrations) would see no
-- rows: it is lifted for this statement only, inside the migration's transaction.
ALTER TABLE tenants NO FORCE ROW LEVEL SECURITY;
ALTER TABLE business_settings NO FORCE ROW LEVEL SECURITY;
INSERT INTO business_settings (tenant_id, time_zone, currency, date_format, language)
SELECT tenant_id, 'Asia/Kuala_Lumpur', 'MYR', 'DD/MM/YYYY', 'ms' FROM tenants
ON CONFLICT (tenant_id) DO NOTHING;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
ALTER TABLE business_settings FORCE ROW LEVEL SECURITY;

-- When true, a person with the ADMIN role must use a second factor: until they have set one
-- up, their session may do nothing but set it up.
ALTER TABLE business_settings
    ADD COLUMN require_admin_totp boolean NOT NULL DEFAULT false;

-- A person's sessions are looked up to revoke them all at a privilege change.
CREATE INDEX sessions_user ON sessions (tenant_id, user_id) WHERE revoked_at IS NULL;
