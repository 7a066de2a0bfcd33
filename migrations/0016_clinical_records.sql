-- Client schema version 5: patients' clinical records, and the review of emergency openings.

-- One entry of a patient's clinical record: a note, an allergy, or an emergency opening of the
-- record by someone whose role does not read clinical records ("break-glass"; the body is the
-- reason they gave). Append-only like the cash ledger: a medical record is corrected by another
-- entry, never edited. Written at the patient's branch and sent to that branch's desks.
CREATE TABLE clinical_entries (
    tenant_id        uuid        NOT NULL,
    entry_id         uuid        NOT NULL,
    branch_id        uuid        NOT NULL,
    patient_id       uuid        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('note', 'allergy', 'emergency_access')),
    body             text        NOT NULL,
    -- The person signed in at the desk that wrote it (none at a desk nobody signs in to).
    author_id        uuid        NULL,
    stamps           bytea       NOT NULL,
    recorded_at      timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    origin_device_id uuid        NOT NULL,
    last_change_seq  bigint      NOT NULL,
    PRIMARY KEY (tenant_id, entry_id),
    FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, branch_id),
    FOREIGN KEY (tenant_id, origin_device_id) REFERENCES devices (tenant_id, device_id)
);
CREATE INDEX clinical_entries_branch_changed
    ON clinical_entries (tenant_id, branch_id, last_change_seq);
CREATE INDEX clinical_entries_changed ON clinical_entries (tenant_id, last_change_seq);
-- Head office's list of emergency openings, newest first.
CREATE INDEX clinical_entries_emergencies ON clinical_entries (tenant_id, recorded_at)
    WHERE kind = 'emergency_access';

ALTER TABLE clinical_entries ENABLE ROW LEVEL SECURITY;
ALTER TABLE clinical_entries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON clinical_entries
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT ON clinical_entries TO kaunter_app;

-- Head office's review of an emergency opening: whether it was justified, by whom, when. Not
-- replicated to desks; one review per opening, never changed.
CREATE TABLE emergency_access_reviews (
    tenant_id   uuid        NOT NULL,
    entry_id    uuid        NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('justified', 'not_justified')),
    note        text        NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    reviewed_by uuid        NOT NULL,
    reviewed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, entry_id),
    FOREIGN KEY (tenant_id, entry_id) REFERENCES clinical_entries (tenant_id, entry_id),
    FOREIGN KEY (tenant_id, reviewed_by) REFERENCES users (tenant_id, user_id)
);
ALTER TABLE emergency_access_reviews ENABLE ROW LEVEL SECURITY;
ALTER TABLE emergency_access_reviews FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON emergency_access_reviews
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT ON emergency_access_reviews TO kaunter_app;

ALTER TABLE changes DROP CONSTRAINT changes_entity_check;
ALTER TABLE changes ADD CONSTRAINT changes_entity_check
    CHECK (entity IN ('patient', 'appointment', 'cash_movement', 'catalogue_item',
                      'clinical_entry'));

-- The new permission access.review goes to the built-in ADMIN role of the clinics that exist
-- already (new businesses get it from their role templates). Row-level security is lifted for
-- these statements only, inside the migration's transaction, as in 0015.
ALTER TABLE roles NO FORCE ROW LEVEL SECURITY;
ALTER TABLE role_permissions NO FORCE ROW LEVEL SECURITY;
ALTER TABLE tenants NO FORCE ROW LEVEL SECURITY;
INSERT INTO role_permissions (tenant_id, role_id, permission)
SELECT r.tenant_id, r.role_id, 'access.review' FROM roles r
JOIN tenants t ON t.tenant_id = r.tenant_id
WHERE r.built_in AND r.name = 'ADMIN' AND t.industry = 'HEALTHCARE'
ON CONFLICT DO NOTHING;
ALTER TABLE roles FORCE ROW LEVEL SECURITY;
ALTER TABLE role_permissions FORCE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
