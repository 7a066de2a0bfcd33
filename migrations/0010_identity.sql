-- Identity, part one: a business signs up (profile, settings, default roles), and it has users
-- with passwords (Argon2id PHC strings) who log in with the business's slug and their e-mail.

-- The business's profile. Columns are nullable for businesses made before sign-up existed
-- (`sync-server admin create-business`); sign-up fills all of them.
ALTER TABLE tenants
    ADD COLUMN slug          text NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$'),
    ADD COLUMN industry      text NULL
        CHECK (industry IN ('RETAIL', 'HEALTHCARE', 'EDUCATION', 'LOGISTICS', 'BEAUTY')),
    ADD COLUMN email         text NULL,
    ADD COLUMN phone         text NULL,
    ADD COLUMN address_line1 text NULL,
    ADD COLUMN address_line2 text NULL,
    ADD COLUMN postcode      text NULL CHECK (postcode ~ '^[0-9]{5}$'),
    ADD COLUMN city          text NULL,
    ADD COLUMN state         text NULL,
    -- An operator suspends, reactivates or terminates a business (issue 5 adds the billing side).
    ADD COLUMN status        text NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'suspended', 'terminated')),
    ADD COLUMN trial_ends_at timestamptz NULL;
-- Slugs and names are unique across businesses: they are how people find a business. The
-- index on the name ignores case, so "Klinik Aman" and "KLINIK AMAN" cannot both exist.
CREATE UNIQUE INDEX tenants_slug ON tenants (slug);
CREATE UNIQUE INDEX tenants_name ON tenants (lower(name));
-- Logging in names a business by its slug before the server knows the tenant: a caller that
-- knows a slug may read that one row (as enrolment does with a code's hash), nothing else.
CREATE POLICY tenant_by_slug ON tenants FOR SELECT
    USING (slug = NULLIF(current_setting('app.login_slug', true), ''));

CREATE TABLE business_settings (
    tenant_id   uuid NOT NULL PRIMARY KEY REFERENCES tenants (tenant_id),
    time_zone   text NOT NULL,
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    date_format text NOT NULL,
    language    text NOT NULL CHECK (language IN ('ms', 'en'))
);

-- Roles are per business: every business gets ADMIN, MANAGER, STAFF and VIEWER, a clinic also
-- clinical ones. Permissions are stable strings the code checks (kaunter_core::access).
CREATE TABLE roles (
    tenant_id uuid    NOT NULL REFERENCES tenants (tenant_id),
    role_id   uuid    NOT NULL,
    name      text    NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    -- Made at sign-up; a business may add its own beside them.
    built_in  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, role_id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE role_permissions (
    tenant_id  uuid NOT NULL,
    role_id    uuid NOT NULL,
    permission text NOT NULL CHECK (permission ~ '^[a-z_]+\.[a-z_]+$'),
    PRIMARY KEY (tenant_id, role_id, permission),
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, role_id)
);

CREATE TABLE users (
    tenant_id           uuid        NOT NULL REFERENCES tenants (tenant_id),
    user_id             uuid        NOT NULL,
    -- As typed; email_key (lowercase) is what must be unique and what login looks up.
    email               text        NOT NULL,
    email_key           text        NOT NULL CHECK (email_key = lower(email_key)),
    name                text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status              text        NOT NULL
        CHECK (status IN ('PENDING', 'ACTIVE', 'INACTIVE', 'DISABLED')),
    -- Argon2id PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash); NULL for a user who
    -- has not set one yet (PENDING).
    password_hash       text        NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at          timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NULL,
    last_login_at       timestamptz NULL,
    PRIMARY KEY (tenant_id, user_id),
    UNIQUE (tenant_id, email_key)
);

CREATE TABLE user_roles (
    tenant_id uuid NOT NULL,
    user_id   uuid NOT NULL,
    role_id   uuid NOT NULL,
    PRIMARY KEY (tenant_id, user_id, role_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, user_id),
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, role_id)
);

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['business_settings', 'roles', 'role_permissions', 'users',
                                'user_roles'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', name);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', name);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I
                 USING (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)
                 WITH CHECK (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)',
            name);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE ON business_settings, roles, users TO kaunter_app;
GRANT SELECT, INSERT, DELETE ON role_permissions, user_roles TO kaunter_app;

-- Failed logins, counted per key (an account, or an address) before any tenant is known, so
-- this table has no tenant_id and no row-level security. Keys are SHA-256 digests: no e-mail
-- address or IP address is stored here in the clear, and an unknown account is counted
-- exactly like a known one.
CREATE TABLE login_failures (
    key_hash     bytea       NOT NULL PRIMARY KEY CHECK (length(key_hash) = 32),
    failures     integer     NOT NULL CHECK (failures > 0),
    window_start timestamptz NOT NULL,
    locked_until timestamptz NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE ON login_failures TO kaunter_app;
