-- Pull hands out row states instead of replaying the change log: a desk is sent every row of
-- its branch whose last change is past its cursor, as the row stands (its winning field writes,
-- grouped by stamp). The rows are found by these indexes, in last-change order.
CREATE INDEX patients_branch_changed ON patients (tenant_id, branch_id, last_change_seq);
CREATE INDEX appointments_branch_changed ON appointments (tenant_id, branch_id, last_change_seq);
CREATE INDEX cash_movements_branch_changed
    ON cash_movements (tenant_id, branch_id, last_change_seq);

-- The change log no longer feeds pull, so it no longer keeps each change's body: it stays the
-- record of which device's write (device_id, device_seq) became which change seq of which row,
-- when it arrived (the purge's horizon is found by time through it), and the second guard of
-- exactly-once push (its unique key).
DROP INDEX changes_branch_seq;
ALTER TABLE changes DROP COLUMN change, DROP COLUMN branch_id, DROP COLUMN recorded_at;
