-- When the server's own sweep next looks at each business's notices (issue 5), so that a
-- business none of whose desks syncs any more still gets its trial warnings, its expiry and
-- suspension notices, and retries of what its relay refused.
--
-- Row-level security keeps the sweep out of every business's rows until it has entered one,
-- so it needs a list of whom to enter: this table, ids and times only, no business's data,
-- and therefore no tenant_id column and no row-level security (like `webhook_deliveries`; the
-- RLS catalogue test lists it as a decision). The sweep then looks at each business inside
-- that business's own transaction, row-level security and all.
CREATE TABLE notice_schedule (
    business   uuid        NOT NULL PRIMARY KEY,
    look_after timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notice_schedule_due ON notice_schedule (look_after);
GRANT SELECT, INSERT, UPDATE ON notice_schedule TO kaunter_app;

-- Every business has a row: those there now, and each new one as it is made (sign-up and the
-- operator's create-business alike).
ALTER TABLE tenants NO FORCE ROW LEVEL SECURITY;
INSERT INTO notice_schedule (business) SELECT tenant_id FROM tenants;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;

CREATE FUNCTION schedule_notices() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notice_schedule (business) VALUES (NEW.tenant_id) ON CONFLICT DO NOTHING;
    RETURN NEW;
END
$$;
CREATE TRIGGER tenants_schedule_notices AFTER INSERT ON tenants
    FOR EACH ROW EXECUTE FUNCTION schedule_notices();
