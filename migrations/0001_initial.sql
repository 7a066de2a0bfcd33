-- Kaunter sync server, initial schema.
--
-- Append-only: once a migration has been applied anywhere, never edit it (the server refuses to
-- start when an applied migration's checksum changes); add 0002_... instead.
--
-- Rules every tenant table follows (tests/rls_catalog.rs checks them):
--   * tenant_id leads the primary key, every unique key and every foreign key;
--   * ROW LEVEL SECURITY is ENABLED and FORCED, with the policy tenant_isolation that reads the
--     tenant from set_config('app.tenant_id', ..., true); unset or '' means no rows;
--   * the migrating role owns the table; kaunter_app gets only the privileges it needs.
-- Each migration runs in one transaction, so nothing here may need autocommit
-- (no CREATE INDEX CONCURRENTLY).

-- The role the server connects as. Roles are cluster-wide: it may already exist (another database
-- in the cluster created it), and two databases being migrated at once may race to create it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'kaunter_app') THEN
        BEGIN
            CREATE ROLE kaunter_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO kaunter_app;

-- One row per business. change_seq is the tenant's change counter: push takes this row's lock to
-- number changes, which also serialises the commits of one tenant's pushes (see push.rs).
CREATE TABLE tenants (
    tenant_id  uuid        NOT NULL PRIMARY KEY,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    change_seq bigint      NOT NULL DEFAULT 0 CHECK (change_seq >= 0)
);

CREATE TABLE branches (
    tenant_id  uuid        NOT NULL REFERENCES tenants (tenant_id),
    branch_id  uuid        NOT NULL,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- Short code printed in document numbers (receipts, MRNs); unique within the business.
    code       text        NULL CHECK (code ~ '^[A-Z0-9]{1,16}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, branch_id),
    UNIQUE (tenant_id, code)
);

CREATE TABLE devices (
    tenant_id    uuid        NOT NULL,
    device_id    uuid        NOT NULL,
    branch_id    uuid        NOT NULL,
    name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- sha256 of the token's secret part; the token itself is never stored.
    token_hash   bytea       NOT NULL CHECK (length(token_hash) = 32),
    -- The last outbox seq of this device that the server has applied.
    high_water   bigint      NOT NULL DEFAULT 0 CHECK (high_water >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NULL,
    revoked_at   timestamptz NULL,
    PRIMARY KEY (tenant_id, device_id),
    FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, branch_id)
);

CREATE TABLE enrolment_codes (
    tenant_id      uuid        NOT NULL,
    -- sha256 of the normalised code; the code itself is shown once and never stored.
    code_hash      bytea       NOT NULL CHECK (length(code_hash) = 32),
    branch_id      uuid        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz NULL,
    used_by_device uuid        NULL,
    PRIMARY KEY (tenant_id, code_hash),
    FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, branch_id),
    FOREIGN KEY (tenant_id, used_by_device) REFERENCES devices (tenant_id, device_id),
    CHECK ((used_at IS NULL) = (used_by_device IS NULL))
);
-- Enrolment looks a code up before it knows the tenant.
CREATE INDEX enrolment_codes_code_hash ON enrolment_codes (code_hash);

CREATE TABLE patients (
    tenant_id        uuid        NOT NULL,
    patient_id       uuid        NOT NULL,
    branch_id        uuid        NOT NULL,
    full_name        text        NOT NULL,
    id_type          text        NOT NULL CHECK (id_type IN ('mykad', 'passport', 'army_police', 'old_ic')),
    id_number        text        NOT NULL,
    phone            text        NULL,
    date_of_birth    date        NULL,
    sex              text        NULL CHECK (sex IN ('male', 'female')),
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    origin_device_id uuid        NOT NULL,
    -- The tenant change seq that last wrote this row.
    last_change_seq  bigint      NOT NULL,
    PRIMARY KEY (tenant_id, patient_id),
    FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, branch_id),
    FOREIGN KEY (tenant_id, origin_device_id) REFERENCES devices (tenant_id, device_id)
);
CREATE INDEX patients_id_number ON patients (tenant_id, id_number);

-- The tenant's change log: what pull hands out, in seq order. Append-only.
CREATE TABLE changes (
    tenant_id   uuid        NOT NULL,
    seq         bigint      NOT NULL CHECK (seq > 0),
    device_id   uuid        NOT NULL,
    device_seq  bigint      NOT NULL CHECK (device_seq > 0),
    entity      text        NOT NULL CHECK (entity IN ('patient')),
    row_id      uuid        NOT NULL,
    branch_id   uuid        NOT NULL,
    -- kaunter_protocol::http::Change as JSON, exactly as pushed (nanosecond timestamps included;
    -- the recorded_at column below is rounded to microseconds and is for queries only).
    change      jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, seq),
    -- A second guard for exactly-once push, behind the device's high-water mark.
    UNIQUE (tenant_id, device_id, device_seq),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, device_id),
    FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, branch_id)
);
-- Pull reads one branch's changes in seq order.
CREATE INDEX changes_branch_seq ON changes (tenant_id, branch_id, seq);

-- Row-level security: one policy shape for every tenant table.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE branches ENABLE ROW LEVEL SECURITY;
ALTER TABLE branches FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON branches
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE devices ENABLE ROW LEVEL SECURITY;
ALTER TABLE devices FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON devices
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE enrolment_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE enrolment_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON enrolment_codes
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
-- Enrolment does not know the tenant yet: a caller that knows a code's hash (because it knows the
-- code) may see and lock that one row, and nothing else. Writing it still needs the tenant set:
-- the WITH CHECK only admits a row of the tenant in app.tenant_id.
CREATE POLICY enrolment_code_lookup ON enrolment_codes FOR SELECT
    USING (code_hash = decode(NULLIF(current_setting('app.enrolment_code_hash', true), ''), 'hex'));
CREATE POLICY enrolment_code_claim ON enrolment_codes FOR UPDATE
    USING (code_hash = decode(NULLIF(current_setting('app.enrolment_code_hash', true), ''), 'hex'))
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE patients ENABLE ROW LEVEL SECURITY;
ALTER TABLE patients FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON patients
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE changes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON changes
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- Least privilege: no DELETE anywhere yet (deletes will be tombstones), and the change log is
-- append-only. There are no sequences (ids are UUIDv7 made by the caller; change numbers come
-- from tenants.change_seq), so no USAGE on sequences is needed.
GRANT SELECT, INSERT, UPDATE ON tenants, branches, devices, enrolment_codes, patients TO kaunter_app;
GRANT SELECT, INSERT ON changes TO kaunter_app;
