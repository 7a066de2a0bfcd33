-- Invoices and refund notes for what businesses pay Kaunter (issue 5: head office shows its
-- invoices beside its payments). Every payment that moved money and completed gets the next
-- number of one Kaunter-wide sequence: a CHARGE or CREDIT is an invoice (INV-000123), a
-- REFUND a refund note (RN-000124). Adjustments move no money and get none. The number is
-- given by a trigger whenever a row becomes such a payment, whichever code path wrote it, and
-- never changes afterwards (a refunded CHARGE keeps its invoice).
CREATE SEQUENCE invoice_numbers;
GRANT USAGE ON SEQUENCE invoice_numbers TO kaunter_app;

ALTER TABLE payments ADD COLUMN invoice_no bigint NULL UNIQUE;

CREATE FUNCTION number_invoice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.invoice_no IS NULL
       AND NEW.status IN ('COMPLETED', 'REFUNDED')
       AND NEW.kind IN ('CHARGE', 'CREDIT', 'REFUND')
       AND coalesce(NEW.amount_sen, 0) > 0 THEN
        NEW.invoice_no := nextval('invoice_numbers');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER payments_number_invoice BEFORE INSERT OR UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION number_invoice();

-- What completed before: numbered one by one in the order it completed (the trigger numbers
-- each row as it is touched).
ALTER TABLE payments NO FORCE ROW LEVEL SECURITY;
DO $$
DECLARE
    earlier record;
BEGIN
    FOR earlier IN
        SELECT tenant_id, payment_id FROM payments
        WHERE status IN ('COMPLETED', 'REFUNDED') AND kind IN ('CHARGE', 'CREDIT', 'REFUND')
          AND coalesce(amount_sen, 0) > 0
        ORDER BY coalesce(completed_at, created_at), payment_id
    LOOP
        UPDATE payments SET status = status
        WHERE tenant_id = earlier.tenant_id AND payment_id = earlier.payment_id;
    END LOOP;
END
$$;
ALTER TABLE payments FORCE ROW LEVEL SECURITY;
