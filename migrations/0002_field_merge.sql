-- Per-field merge (hybrid logical clock stamps), tombstones and rejected entries.
--
-- A patient row is the merge of every change to it: each replicated field keeps the value with
-- the greatest stamp. `stamps` holds those stamps, {"field": {"hlc": "...", "device_id": "..."}},
-- so the next change can be merged without reading the change log. `deleted` is the tombstone
-- field's value, kept as a column so queries can skip deleted rows.

ALTER TABLE patients
    ADD COLUMN stamps  jsonb   NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN deleted boolean NOT NULL DEFAULT false;

-- Changes now carry only the fields they set, so the change log no longer needs the desk's
-- recorded_at as a column of its own (it stays inside `change`).
ALTER TABLE changes ALTER COLUMN recorded_at DROP NOT NULL;

-- Entries the server handled but refused (validation, another branch's row, a clock far ahead).
-- They count towards the device's high-water mark, so they never block the outbox behind them,
-- and a replayed batch gets the same refusals back from here.
CREATE TABLE rejected_changes (
    tenant_id   uuid        NOT NULL,
    device_id   uuid        NOT NULL,
    device_seq  bigint      NOT NULL CHECK (device_seq > 0),
    code        text        NOT NULL,
    message     text        NOT NULL,
    fields      jsonb       NOT NULL DEFAULT '[]'::jsonb,
    change      jsonb       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, device_id, device_seq),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, device_id)
);

ALTER TABLE rejected_changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE rejected_changes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON rejected_changes
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT ON rejected_changes TO kaunter_app;
