-- Client schema version 3: appointments, the cash ledger, and the tombstone horizon.

-- The change log and conflicts now hold the new entities and rule.
ALTER TABLE changes DROP CONSTRAINT changes_entity_check;
ALTER TABLE changes ADD CONSTRAINT changes_entity_check
    CHECK (entity IN ('patient', 'appointment', 'cash_movement'));
ALTER TABLE conflicts DROP CONSTRAINT conflicts_kind_check;
ALTER TABLE conflicts ADD CONSTRAINT conflicts_kind_check
    CHECK (kind IN ('duplicate_id_number', 'appointment_overlap'));
ALTER TABLE conflicts DROP CONSTRAINT conflicts_entity_check;
ALTER TABLE conflicts ADD CONSTRAINT conflicts_entity_check
    CHECK (entity IN ('patient', 'appointment'));

-- A booking: merged per field like a patient. patient_id and practitioner_id are references
-- without foreign keys: the patient may arrive from another desk's push later, and the staff
-- catalogue is not on the server yet.
CREATE TABLE appointments (
    tenant_id        uuid        NOT NULL,
    appointment_id   uuid        NOT NULL,
    branch_id        uuid        NOT NULL,
    patient_id       uuid        NOT NULL,
    practitioner_id  uuid        NOT NULL,
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    status           text        NOT NULL CHECK (status IN ('booked', 'arrived', 'completed', 'cancelled', 'no_show')),
    note             text        NULL,
    stamps           jsonb       NOT NULL,
    deleted          boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    origin_device_id uuid        NOT NULL,
    last_change_seq  bigint      NOT NULL,
    CHECK (ends_at > starts_at),
    PRIMARY KEY (tenant_id, appointment_id),
    FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, branch_id),
    FOREIGN KEY (tenant_id, origin_device_id) REFERENCES devices (tenant_id, device_id)
);
-- The overlap rule looks up one practitioner's live bookings around a time.
CREATE INDEX appointments_practitioner ON appointments (tenant_id, practitioner_id, starts_at)
    WHERE NOT deleted AND status IN ('booked', 'arrived');

-- The cash ledger: one row per movement, written once. The drawer's balance is the sum of
-- signed amounts, never a stored number.
CREATE TABLE cash_movements (
    tenant_id        uuid        NOT NULL,
    movement_id      uuid        NOT NULL,
    branch_id        uuid        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('payment', 'refund', 'float_in', 'pay_out')),
    amount_sen       bigint      NOT NULL CHECK (amount_sen > 0),
    patient_id       uuid        NULL,
    note             text        NULL,
    stamps           jsonb       NOT NULL,
    recorded_at      timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    origin_device_id uuid        NOT NULL,
    last_change_seq  bigint      NOT NULL,
    PRIMARY KEY (tenant_id, movement_id),
    FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, branch_id),
    FOREIGN KEY (tenant_id, origin_device_id) REFERENCES devices (tenant_id, device_id)
);
CREATE INDEX cash_movements_branch ON cash_movements (tenant_id, branch_id, recorded_at);

-- The tombstone horizon. A purge removes deleted rows whose last change is at or below
-- purged_seq, with their changes; their ids stay here so a late change from a desk that never
-- heard of the delete is refused instead of bringing the row back.
ALTER TABLE tenants ADD COLUMN purged_seq bigint NOT NULL DEFAULT 0 CHECK (purged_seq >= 0);

CREATE TABLE purged_rows (
    tenant_id  uuid        NOT NULL,
    entity     text        NOT NULL CHECK (entity IN ('patient', 'appointment')),
    row_id     uuid        NOT NULL,
    branch_id  uuid        NOT NULL,
    purged_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, entity, row_id),
    FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, branch_id)
);
-- A purge finds a tenant's old tombstones through these.
CREATE INDEX patients_tombstones ON patients (tenant_id, last_change_seq) WHERE deleted;
CREATE INDEX appointments_tombstones ON appointments (tenant_id, last_change_seq) WHERE deleted;
-- ... the horizon's seq by time (from the index alone) ...
CREATE INDEX changes_received ON changes (tenant_id, received_at) INCLUDE (seq);
-- ... and the change-log entries of the rows it removes.
CREATE INDEX changes_row ON changes (tenant_id, row_id);

ALTER TABLE appointments ENABLE ROW LEVEL SECURITY;
ALTER TABLE appointments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON appointments
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE cash_movements ENABLE ROW LEVEL SECURITY;
ALTER TABLE cash_movements FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON cash_movements
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE purged_rows ENABLE ROW LEVEL SECURITY;
ALTER TABLE purged_rows FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON purged_rows
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- The ledger is insert-only for the app. DELETE exists only for the purge, which removes
-- tombstones past the horizon and their change-log entries (nothing live is ever deleted).
GRANT SELECT, INSERT, UPDATE ON appointments TO kaunter_app;
GRANT SELECT, INSERT ON cash_movements, purged_rows TO kaunter_app;
GRANT DELETE ON patients, appointments, changes TO kaunter_app;
-- The purge also blanks the personal data a refused change of a purged row still carries.
GRANT UPDATE ON rejected_changes TO kaunter_app;
