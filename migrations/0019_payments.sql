-- Payments (issue 5): what each business paid (or tried to pay) for its subscription, and a log
-- of every call the payment providers' webhooks made.
--
-- NO CARD DATA, EVER: a payment row keeps only the provider's own ids (its transaction or
-- checkout session id, its event id) and what was bought. Card numbers, bank accounts and
-- tokens that could charge a card stay with the provider (PCI DSS scope stays there too).

-- One row per provider transaction (a Stripe checkout session, an FPX bill, an operator's
-- reference), so a transaction is never counted twice, whatever events announce it: a FAILED
-- row is turned COMPLETED when the same transaction later succeeds.
CREATE TABLE payments (
    tenant_id      uuid        NOT NULL REFERENCES tenants (tenant_id),
    payment_id     uuid        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('CHARGE', 'REFUND', 'CREDIT', 'ADJUSTMENT')),
    status         text        NOT NULL
        CHECK (status IN ('PENDING', 'COMPLETED', 'FAILED', 'REFUNDED')),
    -- Sen (RM 1 = 100 sen). NULL only for a FAILED payment in another currency, whose amount
    -- is not a number of sen (its failure_reason says what it was).
    amount_sen     bigint      NULL,
    currency       text        NOT NULL DEFAULT 'MYR' CHECK (currency = 'MYR'),
    -- What was bought; NULL only for kinds other than CHARGE.
    plan           text        NULL CHECK (plan IN ('STARTER', 'GROWTH', 'PRO', 'ENTERPRISE')),
    cycle          text        NULL CHECK (cycle IN ('MONTHLY', 'YEARLY', 'ONE_TIME')),
    pricing        text        NULL CHECK (pricing IN ('SUBSCRIPTION', 'PERPETUAL')),
    provider       text        NOT NULL CHECK (provider IN ('stripe', 'fpx', 'operator')),
    -- The provider's transaction id (Stripe's checkout session, the FPX gateway's bill, the
    -- operator's reference).
    external_id    text        NOT NULL CHECK (length(external_id) BETWEEN 1 AND 255),
    -- The webhook event that wrote the row last; NULL for an operator's.
    event_id       text        NULL,
    failure_reason text        NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz NULL,
    PRIMARY KEY (tenant_id, payment_id),
    UNIQUE (tenant_id, provider, external_id),
    CHECK (kind <> 'CHARGE' OR (plan IS NOT NULL AND cycle IS NOT NULL AND pricing IS NOT NULL)),
    CHECK (kind = 'ADJUSTMENT' OR amount_sen >= 0),
    CHECK (amount_sen IS NOT NULL OR status = 'FAILED'),
    CHECK ((status = 'FAILED') = (failure_reason IS NOT NULL)),
    CHECK (status <> 'COMPLETED' OR completed_at IS NOT NULL)
);
CREATE INDEX payments_newest ON payments (tenant_id, created_at DESC, payment_id DESC);

ALTER TABLE payments ENABLE ROW LEVEL SECURITY;
ALTER TABLE payments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON payments
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON payments TO kaunter_app;

-- Every call a provider's webhook made, whatever became of it: the operator's record of what
-- arrived. No tenant_id: a webhook arrives before any tenant is known, and a forged or garbled
-- one names none (`business` is only what a verified event named, and may not exist).
--
-- A verified event is processed once: the first delivery of (provider, event_id) that gets
-- past the signature and the clock claims it (the partial unique index), in the same
-- transaction that applies the payment; a replay, or a second delivery racing the first,
-- finds it claimed and is recorded as a duplicate. Deliveries refused before that (a bad
-- signature, a stale time, no secret configured) and the duplicates themselves claim nothing,
-- so a forged body naming an event cannot keep the genuine one out.
CREATE TABLE webhook_deliveries (
    delivery_id uuid        NOT NULL PRIMARY KEY,
    provider    text        NOT NULL CHECK (provider IN ('stripe', 'fpx')),
    -- NULL when the body could not be read.
    event_id    text        NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    outcome     text        NOT NULL CHECK (outcome IN ('applied', 'duplicate', 'bad_signature',
        'stale', 'amount_mismatch', 'unknown_business', 'invalid', 'ignored', 'refused',
        'payment_failed', 'not_configured')),
    detail      text        NOT NULL DEFAULT '',
    business    uuid        NULL,
    amount_sen  bigint      NULL
);
CREATE UNIQUE INDEX webhook_deliveries_claim ON webhook_deliveries (provider, event_id)
    WHERE event_id IS NOT NULL
      AND outcome NOT IN ('duplicate', 'bad_signature', 'stale', 'not_configured');
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);

-- The server writes the log; it reads only what finding its own row again and the claim's
-- ON CONFLICT need (ids and outcomes), never the details, businesses or amounts.
GRANT INSERT, UPDATE ON webhook_deliveries TO kaunter_app;
GRANT SELECT (delivery_id, provider, event_id, outcome) ON webhook_deliveries TO kaunter_app;
