-- E-mail notices about a business's subscription (trial warnings, renewal reminders, expiry,
-- suspension) and payment receipts: an outbox, so a notice is decided in the transaction that
-- sees its cause and sent afterwards, once, with retries. `notice_key` makes each notice
-- unique: kaunter-core's Notice::key (kind and the period it is about), or RECEIPT:<payment>.
CREATE TABLE notice_outbox (
    tenant_id       uuid        NOT NULL REFERENCES tenants (tenant_id),
    notice_id       uuid        NOT NULL,
    notice_key      text        NOT NULL,
    kind            text        NOT NULL,
    -- The end of the trial or period a subscription notice is about (NULL for a receipt).
    period_end      timestamptz NULL,
    recipient       text        NOT NULL,
    subject         text        NOT NULL,
    body            text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz NULL,
    last_error      text        NULL,
    PRIMARY KEY (tenant_id, notice_id),
    UNIQUE (tenant_id, notice_key)
);
CREATE INDEX notice_outbox_unsent ON notice_outbox (tenant_id, next_attempt_at)
    WHERE sent_at IS NULL;
ALTER TABLE notice_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE notice_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON notice_outbox
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON notice_outbox TO kaunter_app;

-- When the business's notices were last looked at: a desk's licence fetch (every sync round)
-- claims the next look at most once an hour.
ALTER TABLE subscriptions ADD COLUMN notices_checked_at timestamptz NULL;
