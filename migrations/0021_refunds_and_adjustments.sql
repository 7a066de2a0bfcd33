-- Refunds and adjustments (issue 5): a REFUND payment names the payment it gives money back
-- for; an ADJUSTMENT is an operator moving a business's period by whole days, with a reason.
-- To take back exactly what a refunded payment bought, each applied payment keeps it: the span
-- its days were added at (`covers_from`, `covers_until`; NULL for a perpetual licence, whose
-- plan and cycle say what it was). Stripe refunds name the charge's payment intent, not the
-- checkout session a CHARGE is kept under, so a Stripe CHARGE keeps its payment intent too.
ALTER TABLE payments
    -- The payment a REFUND gives money back for; set for refunds and only for them.
    ADD COLUMN refund_of            uuid        NULL,
    -- Why: an adjustment's reason (required), an operator's refund's (optional).
    ADD COLUMN reason               text        NULL
        CHECK (reason IS NULL OR length(reason) BETWEEN 1 AND 500),
    -- The whole days an ADJUSTMENT moved the period's end by (negative: taken away).
    ADD COLUMN adjust_days          integer     NULL CHECK (adjust_days <> 0),
    -- The provider's payment reference later events name (Stripe's payment intent).
    ADD COLUMN provider_payment_ref text        NULL
        CHECK (provider_payment_ref IS NULL OR length(provider_payment_ref) BETWEEN 1 AND 255),
    ADD COLUMN covers_from          timestamptz NULL,
    ADD COLUMN covers_until         timestamptz NULL,
    ADD CONSTRAINT payments_refund_of_fkey
        FOREIGN KEY (tenant_id, refund_of) REFERENCES payments (tenant_id, payment_id),
    ADD CONSTRAINT payments_refund_names_its_payment CHECK ((kind = 'REFUND') = (refund_of IS NOT NULL)),
    ADD CONSTRAINT payments_adjustment_days_and_reason
        CHECK ((kind = 'ADJUSTMENT') = (adjust_days IS NOT NULL)
               AND (kind <> 'ADJUSTMENT' OR reason IS NOT NULL)),
    ADD CONSTRAINT payments_covers_a_span
        CHECK ((covers_from IS NULL) = (covers_until IS NULL) AND covers_from <= covers_until);

CREATE INDEX payments_refunds ON payments (tenant_id, refund_of) WHERE refund_of IS NOT NULL;
CREATE INDEX payments_provider_ref ON payments (tenant_id, provider, provider_payment_ref)
    WHERE provider_payment_ref IS NOT NULL;

-- Payments applied before this migration did not keep their span: each gets its cycle's days
-- from its completion (one paid during a trial really began at the trial's end, so a refund of
-- it takes back up to the trial's days less than it added). Their payment intents are unknown:
-- a Stripe refund of one is refused as naming no payment, and is settled by hand.
ALTER TABLE payments NO FORCE ROW LEVEL SECURITY;
UPDATE payments
SET covers_from = completed_at,
    covers_until = completed_at + CASE cycle WHEN 'MONTHLY' THEN interval '30 days'
                                             ELSE interval '365 days' END
WHERE status = 'COMPLETED' AND kind IN ('CHARGE', 'CREDIT') AND cycle IN ('MONTHLY', 'YEARLY');
ALTER TABLE payments FORCE ROW LEVEL SECURITY;

-- Refund deliveries' own refusals: a refund naming no payment the business made, and one
-- larger than what was paid.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_outcome_check;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_outcome_check
    CHECK (outcome IN ('applied', 'duplicate', 'bad_signature', 'stale', 'amount_mismatch',
        'unknown_business', 'invalid', 'ignored', 'refused', 'payment_failed', 'not_configured',
        'unknown_payment', 'refund_exceeds_payment'));
