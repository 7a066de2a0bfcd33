-- Subscriptions (issue 5): what a business has paid for and until when. The rules over these
-- facts (trial, expiry, grace, suspension, payments) live in kaunter-core's subscription.rs;
-- the server stores the facts and asks the rules with the time of each request.
CREATE TABLE subscriptions (
    tenant_id            uuid        NOT NULL PRIMARY KEY REFERENCES tenants (tenant_id),
    plan                 text        NOT NULL
        CHECK (plan IN ('STARTER', 'GROWTH', 'PRO', 'ENTERPRISE')),
    -- The last payment's cycle and pricing model; NULL while nothing has been paid.
    cycle                text        NULL CHECK (cycle IN ('MONTHLY', 'YEARLY', 'ONE_TIME')),
    pricing              text        NULL CHECK (pricing IN ('SUBSCRIPTION', 'PERPETUAL')),
    trial_ends_at        timestamptz NULL,
    -- When the access already granted ends; NULL only for a perpetual licence.
    period_ends_at       timestamptz NULL,
    cancel_at_period_end boolean     NOT NULL DEFAULT false,
    last_paid_at         timestamptz NULL,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- The modules a business has switched on, within its plan's limit.
CREATE TABLE subscription_modules (
    tenant_id  uuid        NOT NULL REFERENCES tenants (tenant_id),
    module     text        NOT NULL
        CHECK (module IN ('RETAIL_POS', 'CLINIC', 'SALON', 'EDUCATION', 'LOGISTICS')),
    enabled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, module)
);

-- Every business that exists already is a live customer, not a new trial: it gets 30 days
-- from now to choose a plan (or keeps a later trial end it had), so none turns read-only or is
-- suspended by the arrival of subscriptions; the operator can record its payments before then
-- (`admin record-payment`). Its industry's module is switched on.
ALTER TABLE tenants NO FORCE ROW LEVEL SECURITY;
INSERT INTO subscriptions (tenant_id, plan, trial_ends_at, period_ends_at)
SELECT tenant_id, 'PRO', greatest(trial_ends_at, now() + interval '30 days'),
       greatest(trial_ends_at, now() + interval '30 days')
FROM tenants;
INSERT INTO subscription_modules (tenant_id, module)
SELECT tenant_id, CASE industry WHEN 'RETAIL' THEN 'RETAIL_POS' WHEN 'BEAUTY' THEN 'SALON'
                                WHEN 'EDUCATION' THEN 'EDUCATION' WHEN 'LOGISTICS' THEN 'LOGISTICS'
                                ELSE 'CLINIC' END
FROM tenants;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;

-- Row-level security once the rows above are in (the backfill sees every business).
ALTER TABLE subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON subscriptions
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON subscriptions TO kaunter_app;

ALTER TABLE subscription_modules ENABLE ROW LEVEL SECURITY;
ALTER TABLE subscription_modules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON subscription_modules
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, DELETE ON subscription_modules TO kaunter_app;
