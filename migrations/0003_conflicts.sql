-- Conflicts that a domain rule finds when desks' changes meet on the server, kept for a person to
-- resolve. Nothing is dropped: both rows stay as they are, and each version is kept here as it
-- was when the conflict was found.
--
-- duplicate_id_number: two live patients of one business with the same identity document
-- (typically registered offline on two desks). row_a is the earlier registration.

CREATE TABLE conflicts (
    tenant_id          uuid        NOT NULL,
    conflict_id        uuid        NOT NULL,
    kind               text        NOT NULL CHECK (kind IN ('duplicate_id_number')),
    entity             text        NOT NULL CHECK (entity IN ('patient')),
    -- The branch whose desks see and resolve it: the later row's.
    branch_id          uuid        NOT NULL,
    row_a              uuid        NOT NULL,
    row_b              uuid        NOT NULL CHECK (row_b <> row_a),
    version_a          jsonb       NOT NULL,
    version_b          jsonb       NOT NULL,
    detected_at        timestamptz NOT NULL DEFAULT now(),
    -- The device whose push revealed it.
    detected_by        uuid        NOT NULL,
    resolution         text        NULL CHECK (resolution IN ('keep_both', 'keep_a', 'keep_b', 'merge_into_a')),
    resolved_at        timestamptz NULL,
    resolved_by        uuid        NULL,
    CHECK ((resolution IS NULL) = (resolved_at IS NULL) AND (resolved_at IS NULL) = (resolved_by IS NULL)),
    PRIMARY KEY (tenant_id, conflict_id),
    UNIQUE (tenant_id, kind, row_a, row_b),
    FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, branch_id),
    FOREIGN KEY (tenant_id, detected_by) REFERENCES devices (tenant_id, device_id),
    FOREIGN KEY (tenant_id, resolved_by) REFERENCES devices (tenant_id, device_id)
);
CREATE INDEX conflicts_open ON conflicts (tenant_id, branch_id) WHERE resolution IS NULL;

ALTER TABLE conflicts ENABLE ROW LEVEL SECURITY;
ALTER TABLE conflicts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conflicts
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE ON conflicts TO kaunter_app;
