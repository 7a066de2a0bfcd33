//! Payments as the server keeps them: one code path from "money arrived" to a changed
//! subscription, shared by the providers' webhooks (`routes/webhooks.rs`) and the operator's
//! `admin record-payment`, and the log of every webhook delivery.
//!
//! [`settle`] runs inside the business's [`TenantTx`] with its subscription row locked, so two
//! payments of one business (or two deliveries of one event) are applied one after the other:
//! the amount is checked against kaunter-core's price list, kaunter-core's
//! `Subscription::apply_payment` decides what the payment buys (a payment delivered after a
//! later one counts as made at the later one's time, never refused), and the new facts and the
//! payment row are written in that same transaction. A provider's transaction is counted once
//! (`payments` is unique per business, provider and external id), whatever events announce it.
//!
//! No card data ever reaches this module: only the provider's ids.

use chrono::{DateTime, Utc};
use kaunter_core::subscription::{
    BillingCycle, PaymentRefused, Plan, PricingModel, Subscription, expected_amount_sen,
};
use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::ids::{DeliveryId, PaymentId, TenantId};
use crate::subscription;

/// The only currency Kaunter charges in.
pub const CURRENCY: &str = "MYR";

/// Most payments `GET /v1/payments` lists.
pub const LIST_LIMIT: i64 = 200;

/// Longest id or detail kept from a provider's body.
const ID_MAX_CHARS: usize = 255;
const DETAIL_MAX_CHARS: usize = 500;

/// Where a payment came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Stripe's webhook (cards, and FPX through Stripe).
    Stripe,
    /// An FPX / e-wallet gateway's callback (Billplz's shape).
    Fpx,
    /// An operator, by hand (`sync-server admin record-payment`): a bank transfer, a demo.
    Operator,
}

impl Provider {
    /// The stored spelling. FROZEN: payments and webhook deliveries hold it.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Stripe => "stripe",
            Provider::Fpx => "fpx",
            Provider::Operator => "operator",
        }
    }
}

/// What a payment row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Money a provider took from the business.
    Charge,
    /// Access an operator granted (money received outside the providers, or none for a demo).
    Credit,
}

impl Kind {
    /// The stored spelling (the schema also knows REFUND and ADJUSTMENT, which nothing makes
    /// yet).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Charge => "CHARGE",
            Kind::Credit => "CREDIT",
        }
    }
}

/// What became of one webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The payment was applied to the subscription.
    Applied,
    /// The event (or its transaction) was processed before: nothing was done.
    Duplicate,
    /// The signature was missing or wrong.
    BadSignature,
    /// Signed too long before or after the server's clock.
    Stale,
    /// The amount or currency is not the price of what the event names.
    AmountMismatch,
    /// The event names no business that exists.
    UnknownBusiness,
    /// The body could not be read, or names no purchase.
    Invalid,
    /// An event type Kaunter does not act on.
    Ignored,
    /// kaunter-core refused to apply the payment (a perpetual licence already).
    Refused,
    /// The provider reported the payment as failed.
    PaymentFailed,
    /// The server has no secret for this provider.
    NotConfigured,
}

impl Outcome {
    /// The stored and wire spelling. FROZEN: webhook deliveries hold it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::BadSignature => "bad_signature",
            Outcome::Stale => "stale",
            Outcome::AmountMismatch => "amount_mismatch",
            Outcome::UnknownBusiness => "unknown_business",
            Outcome::Invalid => "invalid",
            Outcome::Ignored => "ignored",
            Outcome::Refused => "refused",
            Outcome::PaymentFailed => "payment_failed",
            Outcome::NotConfigured => "not_configured",
        }
    }

    /// Whether a delivery with this outcome claims its event id, so the event is never
    /// processed again (the partial unique index `webhook_deliveries_claim`, whose predicate
    /// [`CLAIM_PREDICATE`] repeats). Refusals before the event was trusted claim nothing: a
    /// forged body naming an event must not keep the genuine delivery out, and a provider's
    /// retry of a stale delivery comes freshly signed.
    pub fn claims(self) -> bool {
        !matches!(
            self,
            Outcome::Duplicate | Outcome::BadSignature | Outcome::Stale | Outcome::NotConfigured
        )
    }
}

/// The predicate of the index `webhook_deliveries_claim` (migration 0019), word for word, so
/// `ON CONFLICT` infers it.
const CLAIM_PREDICATE: &str = "event_id IS NOT NULL \
     AND outcome NOT IN ('duplicate', 'bad_signature', 'stale', 'not_configured')";

/// What a payment buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purchase {
    pub plan: Plan,
    pub cycle: BillingCycle,
    pub pricing: PricingModel,
}

impl Purchase {
    /// `plan:cycle:pricing` as the providers' metadata spell it, e.g.
    /// `STARTER:MONTHLY:SUBSCRIPTION`.
    pub fn describe(&self) -> String {
        format!(
            "{}:{}:{}",
            self.plan.as_str(),
            self.cycle.as_str(),
            self.pricing.as_str()
        )
    }
}

/// The pricing model a cycle goes with (kaunter-core refuses any other pairing).
pub fn pricing_for(cycle: BillingCycle) -> PricingModel {
    match cycle {
        BillingCycle::OneTime => PricingModel::Perpetual,
        BillingCycle::Monthly | BillingCycle::Yearly => PricingModel::Subscription,
    }
}

/// A payment as it arrived, before anything was decided about it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub provider: Provider,
    pub kind: Kind,
    /// The provider's transaction id.
    pub external_id: &'a str,
    /// The webhook event that announced it; `None` for an operator's.
    pub event_id: Option<&'a str>,
    pub purchase: Purchase,
    /// The amount in the currency's smallest unit (sen for MYR).
    pub amount: i64,
    /// The currency, upper-case (ISO 4217).
    pub currency: &'a str,
    /// Whether the provider says the money was taken.
    pub paid: bool,
    /// When it was paid (the event's time): the paid period is counted from it.
    pub paid_at: DateTime<Utc>,
    /// Refuse an amount or currency other than the purchase's price (providers); an operator's
    /// amount stands as given (a discount, a demo).
    pub check_amount: bool,
}

impl Incoming<'_> {
    /// The amount in sen, when it is in ringgit.
    pub fn amount_sen(&self) -> Option<i64> {
        (self.currency == CURRENCY).then_some(self.amount)
    }
}

/// What [`settle`] did.
#[derive(Debug, Clone)]
pub enum Settled {
    /// The payment was applied: the subscription's new facts, already saved.
    Applied {
        payment_id: PaymentId,
        subscription: Subscription,
    },
    /// The provider's transaction was applied before: nothing was written.
    AlreadyApplied,
    /// No business has this id (or none is visible under it): nothing was written.
    UnknownBusiness,
    /// The provider reported the payment as failed: a FAILED payment row was written.
    ProviderFailed { payment_id: PaymentId },
    /// The amount or currency is not the price: a FAILED payment row says why.
    AmountMismatch { reason: String },
    /// kaunter-core refused it: a FAILED payment row says why.
    Refused(PaymentRefused),
}

/// Decides and writes `incoming` for the business `tx` is scoped to: see the module's
/// documentation. Commit `tx` to keep what it wrote (a FAILED row is worth keeping too); roll
/// back after [`Settled::AlreadyApplied`] or [`Settled::UnknownBusiness`], which wrote nothing.
pub async fn settle(tx: &TenantTx<'_>, incoming: &Incoming<'_>) -> Result<Settled> {
    let tenant = tx.tenant();
    // The business is looked up under its own tenant setting: a uuid that names no business
    // (or one that is not visible to it, which is the same thing under row-level security)
    // finds no subscription row. Every business has one from its first transaction.
    let Some(row) = tx
        .query_opt(
            &format!(
                "SELECT {} FROM subscriptions s WHERE s.tenant_id = $1 FOR UPDATE",
                subscription::COLUMNS
            ),
            &[&tenant],
        )
        .await?
    else {
        return Ok(Settled::UnknownBusiness);
    };
    let mut current = subscription::decode(&row, 0)?;
    let existing: Option<String> = tx
        .query_opt(
            "SELECT status FROM payments
             WHERE tenant_id = $1 AND provider = $2 AND external_id = $3",
            &[&tenant, &incoming.provider.as_str(), &incoming.external_id],
        )
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    if existing.is_some_and(|status| status != "FAILED") {
        return Ok(Settled::AlreadyApplied);
    }
    if !incoming.paid {
        let payment_id = write(
            tx,
            incoming,
            Some("The payment provider reported this payment as not paid."),
        )
        .await?;
        return Ok(Settled::ProviderFailed { payment_id });
    }
    let Purchase {
        plan,
        cycle,
        pricing,
    } = incoming.purchase;
    if incoming.check_amount {
        let expected = match expected_amount_sen(plan, cycle, pricing) {
            Ok(expected) => expected,
            Err(mismatch) => {
                let refused = PaymentRefused::Billing(mismatch);
                write(tx, incoming, Some(&refusal_reason(refused))).await?;
                return Ok(Settled::Refused(refused));
            }
        };
        let reason = if incoming.currency != CURRENCY {
            Some(format!(
                "Paid {} in {}, not {CURRENCY}: Kaunter charges in ringgit only.",
                incoming.amount, incoming.currency
            ))
        } else if incoming.amount != expected {
            Some(format!(
                "Paid {} sen; {} costs {expected} sen.",
                incoming.amount,
                incoming.purchase.describe()
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            write(tx, incoming, Some(&reason)).await?;
            return Ok(Settled::AmountMismatch { reason });
        }
    }
    // Providers do not deliver in the order payments were made (and an operator may record an
    // older transfer late): a payment dated before the last one applied counts as made at that
    // time instead, so money received is never refused for arriving late.
    let paid_at = current
        .facts()
        .last_paid_at
        .map_or(incoming.paid_at, |last| last.max(incoming.paid_at));
    if let Err(refused) = current.apply_payment(plan, cycle, pricing, paid_at) {
        write(tx, incoming, Some(&refusal_reason(refused))).await?;
        return Ok(Settled::Refused(refused));
    }
    subscription::save(tx, tenant, &current).await?;
    let payment_id = write(tx, incoming, None).await?;
    // The receipt goes out after the transaction commits (crate::notices).
    crate::notices::enqueue_receipt(
        tx,
        tenant,
        payment_id.as_uuid(),
        incoming.amount,
        &incoming.purchase.describe(),
        current.facts().period_ends_at,
    )
    .await?;
    Ok(Settled::Applied {
        payment_id,
        subscription: current,
    })
}

/// `code: sentence`, as a FAILED payment keeps a refusal.
fn refusal_reason(refused: PaymentRefused) -> String {
    format!("{}: {refused}", refused.code())
}

/// Writes the payment row of `incoming`: COMPLETED, or FAILED with `failure`. A FAILED row of
/// the same transaction is overwritten (a later attempt that succeeded, or failed again);
/// [`settle`] never calls this for a transaction already COMPLETED.
async fn write(
    tx: &TenantTx<'_>,
    incoming: &Incoming<'_>,
    failure: Option<&str>,
) -> Result<PaymentId> {
    let status = if failure.is_some() {
        "FAILED"
    } else {
        "COMPLETED"
    };
    let completed_at = failure.is_none().then(Utc::now);
    let Purchase {
        plan,
        cycle,
        pricing,
    } = incoming.purchase;
    let row = tx
        .query_opt(
            "INSERT INTO payments (tenant_id, payment_id, kind, status, amount_sen, currency,
                 plan, cycle, pricing, provider, external_id, event_id, failure_reason,
                 completed_at)
             VALUES ($1, $2, $3, $4, $5, 'MYR', $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (tenant_id, provider, external_id) DO UPDATE SET
                 kind = EXCLUDED.kind, status = EXCLUDED.status,
                 amount_sen = EXCLUDED.amount_sen, plan = EXCLUDED.plan,
                 cycle = EXCLUDED.cycle, pricing = EXCLUDED.pricing,
                 event_id = EXCLUDED.event_id, failure_reason = EXCLUDED.failure_reason,
                 completed_at = EXCLUDED.completed_at
             WHERE payments.status = 'FAILED'
             RETURNING payment_id",
            &[
                &tx.tenant(),
                &PaymentId::new_v7(),
                &incoming.kind.as_str(),
                &status,
                &incoming.amount_sen(),
                &plan.as_str(),
                &cycle.as_str(),
                &pricing.as_str(),
                &incoming.provider.as_str(),
                &incoming.external_id,
                &incoming.event_id,
                &failure.map(clean_text),
                &completed_at,
            ],
        )
        .await?;
    match row {
        Some(row) => Ok(row.try_get(0)?),
        // The subscription row's lock makes this unreachable: settle looked first.
        None => Err(Error::Internal(
            "a completed payment's transaction was written again".to_owned(),
        )),
    }
}

/// One payment as head office sees it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PaymentView {
    pub payment_id: PaymentId,
    /// CHARGE, REFUND, CREDIT or ADJUSTMENT.
    pub kind: String,
    /// PENDING, COMPLETED, FAILED or REFUNDED.
    pub status: String,
    /// Sen; None only for a failed payment in another currency.
    pub amount_sen: Option<i64>,
    /// Always MYR.
    pub currency: String,
    pub plan: Option<String>,
    pub cycle: Option<String>,
    pub pricing: Option<String>,
    /// stripe, fpx or operator.
    pub provider: String,
    /// The provider's transaction id.
    pub external_id: String,
    /// Why a FAILED payment failed.
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// The business's payments, newest first, at most [`LIST_LIMIT`].
pub async fn list(tx: &TenantTx<'_>) -> Result<Vec<PaymentView>> {
    let rows = tx
        .query(
            "SELECT payment_id, kind, status, amount_sen, currency, plan, cycle, pricing,
                    provider, external_id, failure_reason, created_at, completed_at
             FROM payments WHERE tenant_id = $1
             ORDER BY created_at DESC, payment_id DESC LIMIT $2",
            &[&tx.tenant(), &LIST_LIMIT],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(PaymentView {
                payment_id: row.try_get(0)?,
                kind: row.try_get(1)?,
                status: row.try_get(2)?,
                amount_sen: row.try_get(3)?,
                currency: row.try_get(4)?,
                plan: row.try_get(5)?,
                cycle: row.try_get(6)?,
                pricing: row.try_get(7)?,
                provider: row.try_get(8)?,
                external_id: row.try_get(9)?,
                failure_reason: row.try_get(10)?,
                created_at: row.try_get(11)?,
                completed_at: row.try_get(12)?,
            })
        })
        .collect()
}

/// One webhook delivery, as the log keeps it.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub provider: Provider,
    /// `None` when the body could not be read.
    pub event_id: Option<&'a str>,
    pub outcome: Outcome,
    /// A sentence for the operator.
    pub detail: &'a str,
    /// The business a verified event named.
    pub business: Option<TenantId>,
    pub amount_sen: Option<i64>,
}

/// Records `delivery`. When its outcome [claims](Outcome::claims) its event id and another
/// delivery claimed it first, nothing is written and the answer is `None`: the event is a
/// duplicate. Inside a transaction, a claim by a concurrent transaction makes this wait for
/// it: if it commits this is a duplicate, if it rolls back this claim stands.
pub async fn record_delivery(
    client: &impl GenericClient,
    delivery: &Delivery<'_>,
) -> Result<Option<DeliveryId>> {
    let delivery_id = DeliveryId::new_v7();
    let event_id = delivery.event_id.and_then(clean_id);
    let inserted = client
        .execute(
            &format!(
                "INSERT INTO webhook_deliveries (delivery_id, provider, event_id, outcome,
                     detail, business, amount_sen)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (provider, event_id) WHERE {CLAIM_PREDICATE} DO NOTHING"
            ),
            &[
                &delivery_id,
                &delivery.provider.as_str(),
                &event_id,
                &delivery.outcome.as_str(),
                &clean_text(delivery.detail),
                &delivery.business,
                &delivery.amount_sen,
            ],
        )
        .await?;
    Ok((inserted == 1).then_some(delivery_id))
}

/// Sets the outcome of a delivery recorded (and claimed) in the same transaction before it was
/// decided. Both outcomes must claim, so the claim stays.
pub async fn finish_delivery(
    client: &impl GenericClient,
    delivery_id: DeliveryId,
    outcome: Outcome,
    detail: &str,
) -> Result<()> {
    if !outcome.claims() {
        return Err(Error::Internal(format!(
            "a claimed delivery cannot end as {}",
            outcome.as_str()
        )));
    }
    client
        .execute(
            "UPDATE webhook_deliveries SET outcome = $2, detail = $3 WHERE delivery_id = $1",
            &[&delivery_id, &outcome.as_str(), &clean_text(detail)],
        )
        .await?;
    Ok(())
}

/// An id from a provider's body as it may be stored: no control characters (PostgreSQL refuses
/// U+0000 in text), at most 255 characters; `None` when nothing is left.
pub fn clean_id(text: &str) -> Option<String> {
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(ID_MAX_CHARS)
        .collect();
    (!cleaned.trim().is_empty()).then_some(cleaned)
}

/// A detail sentence as it may be stored (it may quote a provider's body).
fn clean_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(DETAIL_MAX_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_before_trust_and_duplicates_leave_the_event_unclaimed() {
        for outcome in [
            Outcome::Duplicate,
            Outcome::BadSignature,
            Outcome::Stale,
            Outcome::NotConfigured,
        ] {
            assert!(!outcome.claims(), "{outcome:?}");
            assert!(CLAIM_PREDICATE.contains(&format!("'{}'", outcome.as_str())));
        }
        for outcome in [
            Outcome::Applied,
            Outcome::AmountMismatch,
            Outcome::UnknownBusiness,
            Outcome::Invalid,
            Outcome::Ignored,
            Outcome::Refused,
            Outcome::PaymentFailed,
        ] {
            assert!(outcome.claims(), "{outcome:?}");
        }
    }

    #[test]
    fn ids_and_details_lose_what_postgres_cannot_store() {
        assert_eq!(clean_id("evt_\u{0}1"), Some("evt_1".to_owned()));
        assert_eq!(clean_id("\u{0}"), None);
        assert_eq!(clean_id(&"x".repeat(300)).map(|id| id.len()), Some(255));
        assert_eq!(clean_text("a\u{0}b"), "a b");
    }

    #[test]
    fn each_cycle_goes_with_the_pricing_kaunter_core_accepts() {
        for cycle in BillingCycle::ALL {
            assert!(expected_amount_sen(Plan::Starter, cycle, pricing_for(cycle)).is_ok());
        }
    }
}
