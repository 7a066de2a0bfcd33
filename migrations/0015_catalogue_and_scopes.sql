-- Client schema version 4: the tenant-wide catalogue, and what a device may pull.

-- A product or service the business sells. Tenant-wide: every desk of every branch is sent the
-- same rows and may change them (merged per field like a patient); branch_id only says where an
-- item was first written. No uniqueness on code: two offline desks may both add "SVC-01", and
-- neither write may be lost; the desk shows both so a person can tidy them.
CREATE TABLE catalogue_items (
    tenant_id        uuid        NOT NULL,
    item_id          uuid        NOT NULL,
    branch_id        uuid        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('product', 'service')),
    code             text        NOT NULL,
    name             text        NOT NULL,
    price_sen        bigint      NOT NULL CHECK (price_sen >= 0),
    tax_code         text        NOT NULL CHECK (tax_code IN ('exempt', 'service_6', 'service_8')),
    duration_minutes integer     NULL CHECK (duration_minutes > 0),
    active           boolean     NOT NULL,
    stamps           bytea       NOT NULL,
    deleted          boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    origin_device_id uuid        NOT NULL,
    last_change_seq  bigint      NOT NULL,
    PRIMARY KEY (tenant_id, item_id),
    FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, branch_id),
    FOREIGN KEY (tenant_id, origin_device_id) REFERENCES devices (tenant_id, device_id)
);
-- Pull finds the business's changed items in last-change order; the purge its old tombstones.
CREATE INDEX catalogue_items_changed ON catalogue_items (tenant_id, last_change_seq);

ALTER TABLE catalogue_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalogue_items FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON catalogue_items
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE, DELETE ON catalogue_items TO kaunter_app;

ALTER TABLE changes DROP CONSTRAINT changes_entity_check;
ALTER TABLE changes ADD CONSTRAINT changes_entity_check
    CHECK (entity IN ('patient', 'appointment', 'cash_movement', 'catalogue_item'));
ALTER TABLE purged_rows DROP CONSTRAINT purged_rows_entity_check;
ALTER TABLE purged_rows ADD CONSTRAINT purged_rows_entity_check
    CHECK (entity IN ('patient', 'appointment', 'catalogue_item'));

-- Who approved a change at the desk with their own PIN (a STAFF member's refund, approved by a
-- manager), beside who made it.
ALTER TABLE changes ADD COLUMN approver_id uuid NULL;

-- The digest of the business's tenant-wide rows, beside each branch's digest of its own: a
-- desk's checkpoint is its branch's (or, with business scope, every branch's) plus this.
ALTER TABLE tenants ADD COLUMN catalogue_digest bigint NOT NULL DEFAULT 0;

-- What a device pulls. 'branch' (the default): its own branch's rows. 'business': every
-- branch's rows, for a desk whose role is to see them (head office, an owner's own laptop, a
-- practitioner working at several branches). Tenant-wide rows go to every device. A device
-- still writes only its own branch's rows whatever its scope. The scope is fixed when the
-- enrolment code is issued.
ALTER TABLE enrolment_codes ADD COLUMN scope text NOT NULL DEFAULT 'branch'
    CHECK (scope IN ('branch', 'business'));
ALTER TABLE devices ADD COLUMN scope text NOT NULL DEFAULT 'branch'
    CHECK (scope IN ('branch', 'business'));
-- A reconnect code: issued by head office for one removed (revoked) desk, it lets that desk
-- take its place again under its own device id and nothing else (a plain code enrols a new
-- desk and cannot reconnect one).
ALTER TABLE enrolment_codes ADD COLUMN replaces_device uuid NULL;
ALTER TABLE enrolment_codes ADD FOREIGN KEY (tenant_id, replaces_device)
    REFERENCES devices (tenant_id, device_id);
-- A business-scope pull finds every branch's changed rows in last-change order.
CREATE INDEX patients_changed ON patients (tenant_id, last_change_seq);
CREATE INDEX appointments_changed ON appointments (tenant_id, last_change_seq);
CREATE INDEX cash_movements_changed ON cash_movements (tenant_id, last_change_seq);

-- The new permission catalogue.manage goes to the built-in ADMIN and MANAGER roles of the
-- businesses that exist already (new businesses get it from their role templates). Row-level
-- security is lifted for these statements only, inside the migration's transaction, as in 0012.
ALTER TABLE roles NO FORCE ROW LEVEL SECURITY;
ALTER TABLE role_permissions NO FORCE ROW LEVEL SECURITY;
INSERT INTO role_permissions (tenant_id, role_id, permission)
SELECT tenant_id, role_id, 'catalogue.manage' FROM roles
WHERE built_in AND name IN ('ADMIN', 'MANAGER')
ON CONFLICT DO NOTHING;
ALTER TABLE roles FORCE ROW LEVEL SECURITY;
ALTER TABLE role_permissions FORCE ROW LEVEL SECURITY;
