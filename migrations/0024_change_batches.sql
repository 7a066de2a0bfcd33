-- The change log, a row per push instead of a row per change (issue 3, ingest): which device
-- write became which change seq of which row, by whom, as parallel arrays, one row per push's
-- applied entries. Writing 500 changes was 500 heap rows and three index entries each (about
-- a sixth of a push's database time); it is now one row. The per-change shape stays readable as
-- the view `changes` (with the caller's row-level security), so queries and reports read it
-- as before.
CREATE TABLE change_batches (
    tenant_id     uuid        NOT NULL,
    -- The first and last change seq of the batch (refused entries leave numbers unused).
    first_seq     bigint      NOT NULL CHECK (first_seq > 0),
    last_seq      bigint      NOT NULL,
    device_id     uuid        NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    -- Entry i of each array is one change.
    seqs          bigint[]    NOT NULL,
    device_seqs   bigint[]    NOT NULL,
    entities      text[]      NOT NULL,
    row_ids       uuid[]      NOT NULL,
    actor_ids     uuid[]      NOT NULL,
    approver_ids  uuid[]      NOT NULL,
    PRIMARY KEY (tenant_id, first_seq),
    CHECK (cardinality(seqs) >= 1
           AND cardinality(device_seqs) = cardinality(seqs)
           AND cardinality(entities) = cardinality(seqs)
           AND cardinality(row_ids) = cardinality(seqs)
           AND cardinality(actor_ids) = cardinality(seqs)
           AND cardinality(approver_ids) = cardinality(seqs)
           AND seqs[1] = first_seq AND seqs[cardinality(seqs)] = last_seq),
    CHECK (entities <@ ARRAY['patient', 'appointment', 'cash_movement', 'catalogue_item',
                              'clinical_entry']::text[])
);
-- A second guard for exactly-once push, behind the device's high-water mark: no two batches
-- start with the same write of one device.
CREATE UNIQUE INDEX change_batches_device ON change_batches (tenant_id, device_id, (device_seqs[1]));
-- Purge finds the last change received before its horizon.
CREATE INDEX change_batches_received ON change_batches (tenant_id, received_at) INCLUDE (last_seq);

ALTER TABLE change_batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE change_batches FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON change_batches
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT ON change_batches TO kaunter_app;

-- What was logged so far: each change a batch of its own.
ALTER TABLE changes NO FORCE ROW LEVEL SECURITY;
ALTER TABLE change_batches NO FORCE ROW LEVEL SECURITY;
INSERT INTO change_batches (tenant_id, first_seq, last_seq, device_id, received_at, seqs,
                            device_seqs, entities, row_ids, actor_ids, approver_ids)
SELECT tenant_id, seq, seq, device_id, received_at, ARRAY[seq], ARRAY[device_seq],
       ARRAY[entity], ARRAY[row_id], ARRAY[actor_id], ARRAY[approver_id]
FROM changes;
ALTER TABLE change_batches FORCE ROW LEVEL SECURITY;
DROP TABLE changes;

-- The log change by change, as it read before.
CREATE VIEW changes WITH (security_invoker = true) AS
SELECT b.tenant_id, c.seq, b.device_id, c.device_seq, c.entity, c.row_id, b.received_at,
       c.actor_id, c.approver_id
FROM change_batches b,
     unnest(b.seqs, b.device_seqs, b.entities, b.row_ids, b.actor_ids, b.approver_ids)
         AS c(seq, device_seq, entity, row_id, actor_id, approver_id);
GRANT SELECT ON changes TO kaunter_app;
