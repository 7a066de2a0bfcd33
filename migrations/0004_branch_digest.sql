-- Each branch's state digest: the wrapping sum of its patient rows' digests (see
-- kaunter_protocol::merge::row_digest), kept up to date by push in the same transaction as the
-- rows, and handed to desks with the last page of a pull so a desk whose rows differ from the
-- server's notices and repairs itself. Stored as the u64's bits.
ALTER TABLE branches ADD COLUMN state_digest bigint NOT NULL DEFAULT 0;
