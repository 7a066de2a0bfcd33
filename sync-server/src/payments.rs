//! Payments as the server keeps them: one code path from "money arrived" to a changed
//! subscription, shared by the providers' webhooks (`routes/webhooks.rs`) and the operator's
//! `admin record-payment`; one from "money went back" ([`refund`]: Stripe's `charge.refunded`,
//! `admin refund-payment`); an operator's [`adjust`]ment of the period; and the log of every
//! webhook delivery.
//!
//! [`settle`] runs inside the business's [`TenantTx`] with its subscription row locked, so two
//! payments of one business (or two deliveries of one event) are applied one after the other:
//! the amount is checked against kaunter-core's price list, kaunter-core's
//! `Subscription::apply_payment` decides what the payment buys (a payment delivered after a
//! later one counts as made at the later one's time, never refused), and the new facts and the
//! payment row are written in that same transaction. A provider's transaction is counted once
//! (`payments` is unique per business, provider and external id), whatever events announce it.
//! Each applied payment keeps what it bought (kaunter-core's `Bought`: the span of its days, or
//! its licence), so that a refund can take back exactly that.
//!
//! A refund is a REFUND row linked to the payment it gives money back for, of the amount newly
//! refunded: a provider reports the total refunded so far, so two events announcing the same
//! total are one refund (its external id is the payment's with `:refund:<total>`), and an older
//! total arriving after a newer one adds nothing. Partial refunds change no access: the payment
//! stays COMPLETED and the business keeps what it bought (a partial refund is a concession on
//! the price). Once the refunds reach what was paid, the payment becomes REFUNDED and
//! kaunter-core's `Subscription::take_back` takes back what it still gives (the days still to
//! come, never before now; the licence, if it is the one held); the spans of days bought after
//! it move up. A refund of a payment the business never made (or never completed) and one
//! larger than what was paid are refused; the second leaves a FAILED REFUND row.
//!
//! No card data ever reaches this module: only the provider's ids.

use chrono::{DateTime, Utc};
use kaunter_core::subscription::{
    AdjustRefused, BillingCycle, Bought, PaymentRefused, Plan, PricingModel, Subscription,
    TakenBack, expected_amount_sen,
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
    /// Money given back for a CHARGE or a CREDIT.
    Refund,
    /// An operator moved the period's end by whole days, for a reason.
    Adjustment,
}

impl Kind {
    /// The stored spelling. FROZEN: payments hold it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Charge => "CHARGE",
            Kind::Credit => "CREDIT",
            Kind::Refund => "REFUND",
            Kind::Adjustment => "ADJUSTMENT",
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
    /// A refund names no payment the business made (or one never completed).
    UnknownPayment,
    /// A refund larger than what was paid.
    RefundExceedsPayment,
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
            Outcome::UnknownPayment => "unknown_payment",
            Outcome::RefundExceedsPayment => "refund_exceeds_payment",
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
    /// The reference the provider's later events (refunds) name the payment by: Stripe's
    /// payment intent; `None` when there is none.
    pub payment_ref: Option<&'a str>,
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
    let Some(mut current) = lock_subscription(tx).await? else {
        return Ok(Settled::UnknownBusiness);
    };
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
    let bought = match current.apply_payment(plan, cycle, pricing, paid_at) {
        Ok(bought) => bought,
        Err(refused) => {
            write(tx, incoming, Some(&refusal_reason(refused))).await?;
            return Ok(Settled::Refused(refused));
        }
    };
    subscription::save(tx, tenant, &current).await?;
    let payment_id = write_applied(tx, incoming, bought).await?;
    // The receipt goes out after the transaction commits (crate::notices).
    crate::notices::enqueue_receipt(
        tx,
        tenant,
        payment_id.as_uuid(),
        incoming.amount,
        &incoming.purchase,
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

/// Writes the FAILED payment row of `incoming`, with `failure` as its reason.
async fn write(
    tx: &TenantTx<'_>,
    incoming: &Incoming<'_>,
    failure: Option<&str>,
) -> Result<PaymentId> {
    write_row(tx, incoming, failure, None).await
}

/// Writes the COMPLETED payment row of `incoming`, with what it `bought`.
async fn write_applied(
    tx: &TenantTx<'_>,
    incoming: &Incoming<'_>,
    bought: Bought,
) -> Result<PaymentId> {
    write_row(tx, incoming, None, Some(bought)).await
}

/// The span a payment's days cover, as the columns `covers_from` and `covers_until` keep it
/// (`None` for a licence).
fn covers(bought: Option<Bought>) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    match bought {
        Some(Bought::Days { from, until }) => (Some(from), Some(until)),
        Some(Bought::Licence { .. }) | None => (None, None),
    }
}

/// Writes the payment row of `incoming`: COMPLETED with what it `bought`, or FAILED with
/// `failure`. A FAILED row of the same transaction is overwritten (a later attempt that
/// succeeded, or failed again); [`settle`] never calls this for a transaction already
/// COMPLETED.
async fn write_row(
    tx: &TenantTx<'_>,
    incoming: &Incoming<'_>,
    failure: Option<&str>,
    bought: Option<Bought>,
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
    let (covers_from, covers_until) = covers(bought);
    let payment_ref = incoming.payment_ref.and_then(clean_id);
    let row = tx
        .query_opt(
            "INSERT INTO payments (tenant_id, payment_id, kind, status, amount_sen, currency,
                 plan, cycle, pricing, provider, external_id, event_id, failure_reason,
                 completed_at, provider_payment_ref, covers_from, covers_until)
             VALUES ($1, $2, $3, $4, $5, 'MYR', $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                     $16)
             ON CONFLICT (tenant_id, provider, external_id) DO UPDATE SET
                 kind = EXCLUDED.kind, status = EXCLUDED.status,
                 amount_sen = EXCLUDED.amount_sen, plan = EXCLUDED.plan,
                 cycle = EXCLUDED.cycle, pricing = EXCLUDED.pricing,
                 event_id = EXCLUDED.event_id, failure_reason = EXCLUDED.failure_reason,
                 completed_at = EXCLUDED.completed_at,
                 provider_payment_ref = coalesce(EXCLUDED.provider_payment_ref,
                                                 payments.provider_payment_ref),
                 covers_from = EXCLUDED.covers_from, covers_until = EXCLUDED.covers_until
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
                &payment_ref,
                &covers_from,
                &covers_until,
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

/// Which payment a refund gives money back for.
#[derive(Debug, Clone, Copy)]
pub enum Original<'a> {
    /// The reference the provider's later events name it by (Stripe's payment intent).
    PaymentRef(&'a str),
    /// Its own transaction id (an operator's reference).
    ExternalId(&'a str),
    /// Its payment id, whichever provider took it (an operator recording a refund made at the
    /// FPX gateway, which sends no refund callback).
    PaymentId(PaymentId),
}

/// How much a refund gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundAmount {
    /// The total refunded of the payment so far, as the provider reports it (Stripe's
    /// `amount_refunded`), in the currency's smallest unit.
    Total(i64),
    /// This much more, in sen; `None`: everything not refunded yet.
    More(Option<i64>),
}

/// A refund as it arrived, before anything was decided about it.
#[derive(Debug, Clone, Copy)]
pub struct RefundIncoming<'a> {
    /// Who refunded: the original payment's provider.
    pub provider: Provider,
    pub original: Original<'a>,
    /// The webhook event that announced it; `None` for an operator's.
    pub event_id: Option<&'a str>,
    pub amount: RefundAmount,
    /// Upper-case ISO 4217.
    pub currency: &'a str,
    /// Why, when someone said (an operator).
    pub reason: Option<&'a str>,
}

/// What [`refund`] did.
#[derive(Debug, Clone)]
pub enum RefundSettled {
    /// A REFUND row was written, and when it completed the refunds of the payment, the payment
    /// became REFUNDED and what it bought was taken back.
    Applied {
        payment_id: PaymentId,
        /// The payment refunded.
        refund_of: PaymentId,
        /// Newly refunded, in sen.
        amount_sen: i64,
        /// Whether the payment is now refunded in full.
        in_full: bool,
        taken_back: TakenBack,
        subscription: Subscription,
    },
    /// Nothing new: this total (or a larger one) was refunded before. Nothing was written.
    AlreadyApplied,
    /// No business has this id: nothing was written.
    UnknownBusiness,
    /// The business made no such payment, or never completed it: nothing was written.
    UnknownPayment { detail: String },
    /// More than was paid: a FAILED REFUND row says so.
    Exceeds { reason: String },
    /// Not in ringgit: a FAILED REFUND row says so.
    WrongCurrency { reason: String },
}

/// The refunded payment, as [`refund`] reads it.
struct Refundable {
    payment_id: PaymentId,
    status: String,
    amount_sen: Option<i64>,
    external_id: String,
    /// Who took it (an operator may refund another provider's payment).
    provider: String,
    bought: Option<Bought>,
}

/// Decides and writes the refund `incoming` for the business `tx` is scoped to, at `now`: see
/// the module's documentation. Like [`settle`], inside the business's transaction with its
/// subscription row locked; commit to keep what it wrote (a FAILED row too), roll back after
/// [`RefundSettled::AlreadyApplied`], [`RefundSettled::UnknownBusiness`] or
/// [`RefundSettled::UnknownPayment`], which wrote nothing.
pub async fn refund(
    tx: &TenantTx<'_>,
    incoming: &RefundIncoming<'_>,
    now: DateTime<Utc>,
) -> Result<RefundSettled> {
    let tenant = tx.tenant();
    let Some(current) = lock_subscription(tx).await? else {
        return Ok(RefundSettled::UnknownBusiness);
    };
    // Only CHARGE and CREDIT rows are refunded; a completed payment is preferred should a
    // failed attempt share its reference.
    const SELECT: &str = "SELECT payment_id, status, amount_sen, external_id, plan, cycle,
                                 covers_from, covers_until, provider
                          FROM payments
                          WHERE tenant_id = $1 AND kind IN ('CHARGE', 'CREDIT')";
    const LOCK: &str = "ORDER BY status = 'FAILED', created_at LIMIT 1 FOR UPDATE";
    let provider = incoming.provider.as_str();
    let (row, named) = match incoming.original {
        Original::PaymentRef(reference) => (
            tx.query_opt(
                &format!("{SELECT} AND provider = $2 AND provider_payment_ref = $3 {LOCK}"),
                &[&tenant, &provider, &reference],
            )
            .await?,
            format!("{provider} payment {reference:?}"),
        ),
        Original::ExternalId(reference) => (
            tx.query_opt(
                &format!("{SELECT} AND provider = $2 AND external_id = $3 {LOCK}"),
                &[&tenant, &provider, &reference],
            )
            .await?,
            format!("{provider} payment {reference:?}"),
        ),
        Original::PaymentId(payment_id) => (
            tx.query_opt(
                &format!("{SELECT} AND payment_id = $2 {LOCK}"),
                &[&tenant, &payment_id],
            )
            .await?,
            format!("payment {payment_id}"),
        ),
    };
    let Some(row) = row else {
        return Ok(RefundSettled::UnknownPayment {
            detail: format!("the business made no {named}"),
        });
    };
    let original = refundable(&row)?;
    match original.status.as_str() {
        "COMPLETED" => {}
        "REFUNDED" => return Ok(RefundSettled::AlreadyApplied),
        status => {
            return Ok(RefundSettled::UnknownPayment {
                detail: format!(
                    "payment {} is {status}: nothing was paid to refund",
                    original.external_id
                ),
            });
        }
    }
    let paid = original.amount_sen.unwrap_or(0);
    let already: i64 = tx
        .query_one(
            "SELECT coalesce(sum(amount_sen), 0)::bigint FROM payments
             WHERE tenant_id = $1 AND refund_of = $2 AND status = 'COMPLETED'",
            &[&tenant, &original.payment_id],
        )
        .await?
        .try_get(0)?;
    let total = match incoming.amount {
        RefundAmount::Total(total) => Some(total),
        RefundAmount::More(Some(more)) => already.checked_add(more),
        RefundAmount::More(None) => Some(paid),
    };
    let row = |amount: Option<i64>, total: Option<i64>, reason: String| RefundRow {
        original: &original,
        amount,
        total,
        reason,
    };
    if incoming.currency != CURRENCY {
        let reason = format!(
            "Refunded in {}, not {CURRENCY}: payment {} was in ringgit.",
            incoming.currency, original.external_id
        );
        write_refund(tx, incoming, &row(None, total, reason.clone())).await?;
        return Ok(RefundSettled::WrongCurrency { reason });
    }
    let Some(total) = total.filter(|total| *total <= paid) else {
        let reason = match total {
            Some(total) => format!(
                "Refunds of {total} sen in total exceed the {paid} sen paid for {}.",
                original.external_id
            ),
            None => format!(
                "The refund exceeds the {paid} sen paid for {}.",
                original.external_id
            ),
        };
        let amount = total.map(|total| total - already);
        write_refund(tx, incoming, &row(amount, total, reason.clone())).await?;
        return Ok(RefundSettled::Exceeds { reason });
    };
    // An older total arriving after a newer one, or the same total announced again. (A
    // payment of nothing, a demo's, is refunded once, for nothing.)
    if total <= already && paid > 0 {
        return Ok(RefundSettled::AlreadyApplied);
    }
    let amount = total - already;
    let Some(payment_id) =
        write_refund(tx, incoming, &row(Some(amount), Some(total), String::new())).await?
    else {
        return Ok(RefundSettled::AlreadyApplied);
    };
    let in_full = total == paid;
    let mut subscription = current;
    let mut taken_back = TakenBack::Nothing;
    if in_full {
        tx.execute(
            "UPDATE payments SET status = 'REFUNDED' WHERE tenant_id = $1 AND payment_id = $2",
            &[&tenant, &original.payment_id],
        )
        .await?;
        if let Some(bought) = original.bought {
            let bought = still_its_own(tx, original.payment_id, bought).await?;
            taken_back = subscription.take_back(bought, now);
        }
        if taken_back != TakenBack::Nothing {
            subscription::save(tx, tenant, &subscription).await?;
            move_later_spans(tx, taken_back).await?;
        }
    }
    if amount > 0 {
        crate::notices::enqueue_refund(
            tx,
            tenant,
            payment_id.as_uuid(),
            amount,
            &original.external_id,
            in_full,
            // When full access now ends, if anything was taken back.
            (taken_back != TakenBack::Nothing)
                .then_some(subscription.facts().period_ends_at)
                .flatten(),
        )
        .await?;
    }
    Ok(RefundSettled::Applied {
        payment_id,
        refund_of: original.payment_id,
        amount_sen: amount,
        in_full,
        taken_back,
        subscription,
    })
}

/// The business's subscription, locked until the transaction ends; `None` when no business
/// has the transaction's tenant id. The business is looked up under its own tenant setting: a
/// uuid that names no business (or one not visible to it, the same thing under row-level
/// security) finds no subscription row. Every business has one from its first transaction.
async fn lock_subscription(tx: &TenantTx<'_>) -> Result<Option<Subscription>> {
    tx.query_opt(
        &format!(
            "SELECT {} FROM subscriptions s WHERE s.tenant_id = $1 FOR UPDATE",
            subscription::COLUMNS
        ),
        &[&tx.tenant()],
    )
    .await?
    .map(|row| subscription::decode(&row, 0))
    .transpose()
}

/// A payment row as [`refund`] selects it.
fn refundable(row: &tokio_postgres::Row) -> Result<Refundable> {
    let plan: Option<String> = row.try_get(4)?;
    let cycle: Option<String> = row.try_get(5)?;
    let covers_from: Option<DateTime<Utc>> = row.try_get(6)?;
    let covers_until: Option<DateTime<Utc>> = row.try_get(7)?;
    let bought = match (
        plan.as_deref().and_then(Plan::parse),
        cycle.as_deref().and_then(BillingCycle::parse),
        covers_from,
        covers_until,
    ) {
        (Some(plan), Some(BillingCycle::OneTime), _, _) => Some(Bought::Licence { plan }),
        (_, _, Some(from), Some(until)) => Some(Bought::Days { from, until }),
        // A failed payment bought nothing.
        _ => None,
    };
    Ok(Refundable {
        payment_id: row.try_get(0)?,
        status: row.try_get(1)?,
        amount_sen: row.try_get(2)?,
        external_id: row.try_get(3)?,
        provider: row.try_get(8)?,
        bought,
    })
}

/// What a refunded payment's days still are its own: kaunter-core's [`Bought::cut_at`] where
/// the next completed payment's days begin.
async fn still_its_own(tx: &TenantTx<'_>, payment: PaymentId, bought: Bought) -> Result<Bought> {
    let Bought::Days { from, .. } = bought else {
        return Ok(bought);
    };
    let next: Option<DateTime<Utc>> = tx
        .query_one(
            "SELECT min(covers_from) FROM payments
             WHERE tenant_id = $1 AND payment_id <> $2 AND status = 'COMPLETED'
               AND covers_from > $3",
            &[&tx.tenant(), &payment, &from],
        )
        .await?
        .try_get(0)?;
    Ok(bought.cut_at(next))
}

/// Days bought after the refunded ones move up by what was taken back (kaunter-core's
/// `TakenBack::moved`), so a later refund of them takes back what they really still give.
async fn move_later_spans(tx: &TenantTx<'_>, taken_back: TakenBack) -> Result<()> {
    let TakenBack::Days { after, .. } = taken_back else {
        return Ok(());
    };
    let rows = tx
        .query(
            "SELECT payment_id, covers_from, covers_until FROM payments
             WHERE tenant_id = $1 AND status = 'COMPLETED' AND covers_from >= $2",
            &[&tx.tenant(), &after],
        )
        .await?;
    for row in rows {
        let payment_id: PaymentId = row.try_get(0)?;
        let bought = Bought::Days {
            from: row.try_get(1)?,
            until: row.try_get(2)?,
        };
        let (from, until) = covers(Some(taken_back.moved(bought)));
        tx.execute(
            "UPDATE payments SET covers_from = $3, covers_until = $4
             WHERE tenant_id = $1 AND payment_id = $2",
            &[&tx.tenant(), &payment_id, &from, &until],
        )
        .await?;
    }
    Ok(())
}

/// What a REFUND row records beyond its [`RefundIncoming`].
struct RefundRow<'a> {
    original: &'a Refundable,
    /// Newly refunded, in sen; `None` when not in ringgit.
    amount: Option<i64>,
    /// The total refunded it brings the payment to, which names the refund.
    total: Option<i64>,
    /// Why it failed; empty for a COMPLETED refund.
    reason: String,
}

/// Writes a REFUND row: COMPLETED when `row.reason` is empty, else FAILED with it. A FAILED
/// row of the same refund is overwritten; `None` when the refund was COMPLETED before.
async fn write_refund(
    tx: &TenantTx<'_>,
    incoming: &RefundIncoming<'_>,
    row: &RefundRow<'_>,
) -> Result<Option<PaymentId>> {
    let failure = (!row.reason.is_empty()).then(|| clean_text(&row.reason));
    let status = if failure.is_some() {
        "FAILED"
    } else {
        "COMPLETED"
    };
    let completed_at = failure.is_none().then(Utc::now);
    // One refund per total the payment reaches; a total that is not a number (an overflow)
    // is named by the event.
    let suffix = row.total.map_or_else(
        || format!("invalid:{}", incoming.event_id.unwrap_or("operator")),
        |total| total.to_string(),
    );
    // Named after the payment, and its provider when the refund comes from another (an
    // operator's refund of an FPX bill), so it never meets the refund of an operator's own
    // payment of the same reference.
    let original = &row.original;
    let prefix = if original.provider == incoming.provider.as_str() {
        String::new()
    } else {
        format!("{}:", original.provider)
    };
    let mut external_id = format!("{prefix}{}:refund:{suffix}", original.external_id);
    if external_id.chars().count() > ID_MAX_CHARS {
        external_id = format!("{}:refund:{suffix}", original.payment_id);
    }
    let external_id = clean_id(&external_id).unwrap_or_default();
    let payment = tx
        .query_opt(
            "INSERT INTO payments (tenant_id, payment_id, kind, status, amount_sen, currency,
                 provider, external_id, event_id, failure_reason, completed_at, refund_of,
                 reason)
             VALUES ($1, $2, 'REFUND', $3, $4, 'MYR', $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (tenant_id, provider, external_id) DO UPDATE SET
                 status = EXCLUDED.status, amount_sen = EXCLUDED.amount_sen,
                 event_id = EXCLUDED.event_id, failure_reason = EXCLUDED.failure_reason,
                 completed_at = EXCLUDED.completed_at, reason = EXCLUDED.reason
             WHERE payments.status = 'FAILED' AND payments.kind = 'REFUND'
             RETURNING payment_id",
            &[
                &tx.tenant(),
                &PaymentId::new_v7(),
                &status,
                &row.amount,
                &incoming.provider.as_str(),
                &external_id,
                &incoming.event_id,
                &failure,
                &completed_at,
                &row.original.payment_id,
                &incoming.reason.map(clean_text),
            ],
        )
        .await?;
    payment.map(|row| Ok(row.try_get(0)?)).transpose()
}

/// An operator's adjustment of a business's period.
#[derive(Debug, Clone, Copy)]
pub struct Adjustment<'a> {
    /// Whole days the period's end moves by; negative takes days away.
    pub days: i64,
    /// Why (kept with the ADJUSTMENT row, required).
    pub reason: &'a str,
    /// Money that went with it, in sen (0 for none; negative for money given back).
    pub amount_sen: i64,
    /// The adjustment's reference: the same reference is never applied twice.
    pub reference: &'a str,
}

/// What [`adjust`] did.
#[derive(Debug, Clone)]
pub enum Adjusted {
    /// The period moved and the ADJUSTMENT row was written.
    Applied {
        payment_id: PaymentId,
        /// The period's end before.
        ended_at: Option<DateTime<Utc>>,
        subscription: Subscription,
    },
    /// An adjustment with this reference was applied before: nothing was written.
    AlreadyApplied,
    /// No business has this id: nothing was written.
    UnknownBusiness,
    /// kaunter-core refused it: nothing was written.
    Refused(AdjustRefused),
}

/// Moves the period of the business `tx` is scoped to by `adjustment.days` at `now` with
/// kaunter-core's `Subscription::adjust`, and records an ADJUSTMENT row of provider `operator`
/// with the reason, in the same transaction (with its subscription row locked). An empty
/// reason is refused before anything is read.
pub async fn adjust(
    tx: &TenantTx<'_>,
    adjustment: &Adjustment<'_>,
    now: DateTime<Utc>,
) -> Result<Adjusted> {
    let reason = adjustment.reason.trim();
    if reason.is_empty() || reason.chars().count() > DETAIL_MAX_CHARS {
        return Err(Error::InvalidInput(format!(
            "an adjustment needs a reason of 1 to {DETAIL_MAX_CHARS} characters"
        )));
    }
    let tenant = tx.tenant();
    let Some(mut subscription) = lock_subscription(tx).await? else {
        return Ok(Adjusted::UnknownBusiness);
    };
    let taken = tx
        .query_opt(
            "SELECT 1 FROM payments WHERE tenant_id = $1 AND provider = $2 AND external_id = $3",
            &[&tenant, &Provider::Operator.as_str(), &adjustment.reference],
        )
        .await?
        .is_some();
    if taken {
        return Ok(Adjusted::AlreadyApplied);
    }
    let ended_at = subscription.facts().period_ends_at;
    if let Err(refused) = subscription.adjust(adjustment.days, now) {
        return Ok(Adjusted::Refused(refused));
    }
    // kaunter-core bounds the days far below i32's range.
    let days = i32::try_from(adjustment.days)
        .map_err(|_| Error::Internal("an adjustment's days out of range".to_owned()))?;
    subscription::save(tx, tenant, &subscription).await?;
    let payment_id = PaymentId::new_v7();
    tx.execute(
        "INSERT INTO payments (tenant_id, payment_id, kind, status, amount_sen, currency,
             provider, external_id, completed_at, reason, adjust_days)
         VALUES ($1, $2, 'ADJUSTMENT', 'COMPLETED', $3, 'MYR', $4, $5, $6, $7, $8)",
        &[
            &tenant,
            &payment_id,
            &adjustment.amount_sen,
            &Provider::Operator.as_str(),
            &adjustment.reference,
            &now,
            &clean_text(reason),
            &days,
        ],
    )
    .await?;
    Ok(Adjusted::Applied {
        payment_id,
        ended_at,
        subscription,
    })
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
    /// For a REFUND: the payment_id of the payment it gives money back for.
    pub refund_of: Option<PaymentId>,
    /// Why, as the operator gave it: an ADJUSTMENT's (always) or a REFUND's.
    pub reason: Option<String>,
    /// For an ADJUSTMENT: the whole days the period's end moved by (negative: taken away).
    pub adjust_days: Option<i32>,
    /// The invoice (INV-…) or refund note (RN-…) of a payment that moved money and completed
    /// (`GET /v1/payments/invoice`); None for the others.
    pub invoice_number: Option<String>,
}

/// The business's payments, newest first, at most [`LIST_LIMIT`].
pub async fn list(tx: &TenantTx<'_>) -> Result<Vec<PaymentView>> {
    let rows = tx
        .query(
            "SELECT payment_id, kind, status, amount_sen, currency, plan, cycle, pricing,
                    provider, external_id, failure_reason, created_at, completed_at,
                    refund_of, reason, adjust_days, invoice_no
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
                refund_of: row.try_get(13)?,
                reason: row.try_get(14)?,
                adjust_days: row.try_get(15)?,
                invoice_number: row
                    .try_get::<_, Option<i64>>(16)?
                    .map(|number| invoice_number(&row.try_get::<_, String>(1)?, number))
                    .transpose()?,
            })
        })
        .collect()
}

/// How an invoice's number is written: `INV-000123` for a CHARGE or CREDIT, `RN-000124` for a
/// REFUND's refund note (one sequence for both, migration 0025).
fn invoice_number(kind: &str, number: i64) -> Result<String> {
    let prefix = match kind {
        "CHARGE" | "CREDIT" => "INV",
        "REFUND" => "RN",
        other => {
            return Err(Error::Internal(format!(
                "a {other} payment has an invoice number"
            )));
        }
    };
    Ok(format!("{prefix}-{number:06}"))
}

/// Who issues Kaunter's invoices, as they print.
pub const INVOICE_SELLER: &str = "Kaunter";

/// The business an invoice is made out to, as its profile has it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct InvoiceBuyer {
    pub name: String,
    /// Street lines, then `postcode city`, then the state; lines the profile lacks left out.
    pub address: Vec<String>,
    pub email: Option<String>,
    /// The business's id: the reference its payments quote.
    pub business_id: TenantId,
}

/// An invoice for money a business paid Kaunter (a CHARGE or CREDIT), or the refund note for
/// money Kaunter gave back (a REFUND), as head office reads and prints it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct InvoiceView {
    /// `INV-000123` or `RN-000124`.
    pub number: String,
    /// INVOICE or REFUND_NOTE.
    pub document: String,
    /// When the payment or refund completed.
    pub issued_at: DateTime<Utc>,
    pub seller: String,
    pub buyer: InvoiceBuyer,
    /// What was paid for (the plan and its cycle), or what a refund gives back.
    pub description: String,
    /// The span of access the payment bought, when it bought one (not a perpetual licence).
    pub period_from: Option<DateTime<Utc>>,
    pub period_until: Option<DateTime<Utc>>,
    /// Sen.
    pub amount_sen: i64,
    /// Always MYR.
    pub currency: String,
    pub payment_id: PaymentId,
    /// COMPLETED, or REFUNDED for a CHARGE whose money went back in full.
    pub status: String,
    /// stripe, fpx or operator, and the provider's transaction id.
    pub provider: String,
    pub reference: String,
    /// A refund note: the invoice whose money it gives back.
    pub refunds_invoice: Option<String>,
    /// A refund note: why, as the operator gave it.
    pub reason: Option<String>,
}

/// The invoice or refund note of the business's payment `payment_id`; None when the business
/// has no such payment or the payment has none (failed, pending, an adjustment).
pub async fn invoice(tx: &TenantTx<'_>, payment_id: PaymentId) -> Result<Option<InvoiceView>> {
    let Some(row) = tx
        .query_opt(
            "SELECT p.kind, p.status, p.amount_sen, p.currency, p.plan, p.cycle, p.provider,
                    p.external_id, coalesce(p.completed_at, p.created_at), p.invoice_no,
                    p.covers_from, p.covers_until, p.reason,
                    r.kind, r.invoice_no,
                    t.name, t.address_line1, t.address_line2, t.postcode, t.city, t.state,
                    t.email
             FROM payments p
             JOIN tenants t ON t.tenant_id = p.tenant_id
             LEFT JOIN payments r ON r.tenant_id = p.tenant_id AND r.payment_id = p.refund_of
             WHERE p.tenant_id = $1 AND p.payment_id = $2 AND p.invoice_no IS NOT NULL",
            &[&tx.tenant(), &payment_id],
        )
        .await?
    else {
        return Ok(None);
    };
    let kind: String = row.try_get(0)?;
    let plan: Option<String> = row.try_get(4)?;
    let cycle: Option<String> = row.try_get(5)?;
    let refunded: Option<String> = match (
        row.try_get::<_, Option<String>>(13)?,
        row.try_get::<_, Option<i64>>(14)?,
    ) {
        (Some(kind), Some(number)) => Some(invoice_number(&kind, number)?),
        _ => None,
    };
    let description = match (kind.as_str(), &refunded) {
        ("REFUND", Some(number)) => format!("Refund of invoice {number}"),
        ("REFUND", None) => "Refund of an earlier payment".to_owned(),
        _ => {
            let plan = plan
                .as_deref()
                .and_then(Plan::parse)
                .map_or("Kaunter".to_owned(), |plan| {
                    format!("Kaunter {} plan", plan.name())
                });
            match cycle.as_deref() {
                Some("MONTHLY") => format!("{plan}, monthly"),
                Some("YEARLY") => format!("{plan}, yearly"),
                Some("ONE_TIME") => format!("{plan}, perpetual licence"),
                _ => plan,
            }
        }
    };
    let text = |at: usize| row.try_get::<_, Option<String>>(at);
    let mut address: Vec<String> = [text(16)?, text(17)?]
        .into_iter()
        .flatten()
        .filter(|line| !line.trim().is_empty())
        .collect();
    let town = [text(18)?, text(19)?]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if !town.trim().is_empty() {
        address.push(town);
    }
    address.extend(text(20)?.filter(|state| !state.trim().is_empty()));
    let number: i64 = row.try_get(9)?;
    Ok(Some(InvoiceView {
        number: invoice_number(&kind, number)?,
        document: if kind == "REFUND" {
            "REFUND_NOTE"
        } else {
            "INVOICE"
        }
        .to_owned(),
        issued_at: row.try_get(8)?,
        seller: INVOICE_SELLER.to_owned(),
        buyer: InvoiceBuyer {
            name: row.try_get(15)?,
            address,
            email: row.try_get(21)?,
            business_id: tx.tenant(),
        },
        description,
        period_from: row.try_get(10)?,
        period_until: row.try_get(11)?,
        amount_sen: row.try_get::<_, Option<i64>>(2)?.unwrap_or(0),
        currency: row.try_get(3)?,
        payment_id,
        status: row.try_get(1)?,
        provider: row.try_get(6)?,
        reference: row.try_get(7)?,
        refunds_invoice: refunded,
        reason: if kind == "REFUND" {
            row.try_get(12)?
        } else {
            None
        },
    }))
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
    if !delivery.outcome.claims() {
        prune_unclaimed(client).await?;
    }
    Ok((inserted == 1).then_some(delivery_id))
}

/// How long the log keeps a delivery that claimed nothing (see [`prune_unclaimed`]).
pub const UNCLAIMED_KEPT_DAYS: i32 = 90;

/// At most this many old deliveries go with each new one that claims nothing: a flood of
/// forged calls then takes the old ones out as fast as it adds new ones, in small steps.
const PRUNE_STEP: i64 = 100;

/// Deletes deliveries that claimed nothing (bad signatures, stale times, no secret, duplicates:
/// what a flood of forged or replayed calls adds) received more than [`UNCLAIMED_KEPT_DAYS`]
/// ago, oldest first, at most [`PRUNE_STEP`] of them. A delivery that claimed its event stays:
/// it is what answers a later replay of the event as a duplicate.
async fn prune_unclaimed(client: &impl GenericClient) -> Result<()> {
    client
        .execute(
            &format!(
                "DELETE FROM webhook_deliveries WHERE delivery_id IN (
                     SELECT delivery_id FROM webhook_deliveries
                     WHERE received_at < now() - make_interval(days => $1)
                       AND NOT ({CLAIM_PREDICATE})
                     ORDER BY received_at
                     LIMIT $2)"
            ),
            &[&UNCLAIMED_KEPT_DAYS, &PRUNE_STEP],
        )
        .await?;
    Ok(())
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
            Outcome::UnknownPayment,
            Outcome::RefundExceedsPayment,
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
