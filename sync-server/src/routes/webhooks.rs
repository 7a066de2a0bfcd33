//! The payment providers' webhooks: `POST /v1/webhooks/stripe` and `POST /v1/webhooks/fpx`
//! (anyone may call them; the signature is the credential). Every call is recorded in
//! `webhook_deliveries`, whatever becomes of it.
//!
//! A delivery is checked in this order, each refusal recorded: the body is read raw (the
//! signature covers its exact bytes) under the usual size limit; the provider's secret must be
//! configured (503 `webhook_not_configured`); the signature must match (400
//! `webhook_signature_invalid`) and, for Stripe, the signing time be within the tolerance (400
//! `webhook_stale`; FPX signs no delivery time, see `webhook.rs`).
//! Only then is the event trusted and claimed by its id, in the transaction that applies it, so
//! a replay, or a second delivery racing the first, is answered 200 `duplicate` and changes
//! nothing. A claimed event that cannot be used is 422 (`webhook_invalid`,
//! `webhook_unknown_business`, `webhook_amount_mismatch`, with a FAILED payment row for the
//! last), one kaunter-core refuses is 409 with its code, and one applied is 200 `applied` with
//! the subscription's new state.
//!
//! A Stripe `charge.refunded` is a refund ([`payments::refund`]) of the CHARGE whose payment
//! intent it names: applied (200 `applied`, with the state after what was taken back), nothing
//! new (200 `duplicate`: that total was refunded before), or refused and recorded with its own
//! outcome: a payment the business never made is `unknown_payment` (422 `webhook_invalid`), a
//! refund larger than what was paid `refund_exceeds_payment` (422 `webhook_amount_mismatch`,
//! with a FAILED REFUND row).
//!
//! Finding the business: a verified event names its business's uuid (Kaunter put it in the
//! checkout's metadata or the bill's reference). No lookup policy is needed before the tenant
//! is known: a [`TenantTx`] is opened for the uuid named, and under row-level security a uuid
//! that is no business sees no subscription row, which is the "unknown business" answer. The
//! signature has been checked first, so nobody can use this to probe for businesses.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use kaunter_core::subscription::Subscription;
use serde::Serialize;

use crate::AppState;
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::payments::{
    self, Delivery, Incoming, Kind, Original, Outcome, Provider, RefundAmount, RefundIncoming,
    RefundSettled, Settled,
};
use crate::webhook::{self, EventBody, PaymentNotice, RefundNotice, VerifiedEvent};

/// What a webhook is answered when it was taken (refusals are error bodies).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct WebhookAnswer {
    /// applied, duplicate, ignored or payment_failed.
    pub outcome: String,
    /// The subscription's state once applied: TRIAL, ACTIVE, GRACE or SUSPENDED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// When the access paid for ends, once applied (absent for a perpetual licence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_ends_at: Option<DateTime<Utc>>,
}

impl WebhookAnswer {
    fn only(outcome: Outcome) -> Json<Self> {
        Json(Self {
            outcome: outcome.as_str().to_owned(),
            state: None,
            period_ends_at: None,
        })
    }
}

pub async fn stripe(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<WebhookAnswer>> {
    receive(&state, Provider::Stripe, &headers, body).await
}

pub async fn fpx(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<WebhookAnswer>> {
    receive(&state, Provider::Fpx, &headers, body).await
}

async fn receive(
    state: &AppState,
    provider: Provider,
    headers: &HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<WebhookAnswer>> {
    let refused = |outcome, event_id: Option<String>, detail: String| Refused {
        provider,
        outcome,
        event_id,
        detail,
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let too_large = rejection.status() == StatusCode::PAYLOAD_TOO_LARGE;
            let detail = if too_large {
                "the body is over the size limit"
            } else {
                "the body could not be read"
            };
            refused(Outcome::Invalid, None, detail.to_owned())
                .record(state)
                .await?;
            return Err(if too_large {
                Error::PayloadTooLarge
            } else {
                Error::BadRequest(detail.to_owned())
            });
        }
    };
    // A body compressed with zstd (every answer says the server reads it) is checked as the
    // sender signed it, decompressed.
    let body = match crate::extract::decoded(headers, body, state.body_limit_bytes()) {
        Ok(body) => body,
        Err(error) => {
            refused(Outcome::Invalid, None, error.to_string())
                .record(state)
                .await?;
            return Err(error);
        }
    };
    let (secret, header) = match provider {
        Provider::Stripe => (state.stripe_webhook_secret(), "Stripe-Signature"),
        Provider::Fpx => (state.fpx_webhook_secret(), "X-Signature"),
        Provider::Operator => return Err(Error::NotFound),
    };
    let Some(secret) = secret else {
        let detail = format!("no secret is configured for {}", provider.as_str());
        refused(Outcome::NotConfigured, None, detail)
            .record(state)
            .await?;
        return Err(Error::WebhookNotConfigured);
    };
    let header = headers.get(header).and_then(|value| value.to_str().ok());
    let (now, tolerance) = (Utc::now(), state.webhook_tolerance());
    let verified = match provider {
        Provider::Stripe => webhook::verify_stripe(secret, header, &body, now, tolerance),
        _ => webhook::verify_fpx(secret, header, &body, now),
    };
    match verified {
        Ok(event) => process(state, provider, event).await,
        Err(refusal) => {
            let error = match refusal.outcome {
                Outcome::BadSignature => Error::WebhookSignatureInvalid,
                Outcome::Stale => Error::WebhookStale,
                _ => Error::WebhookInvalid(refusal.detail.clone()),
            };
            refused(refusal.outcome, refusal.event_id, refusal.detail)
                .record(state)
                .await?;
            Err(error)
        }
    }
}

/// A delivery refused before its event was trusted: it claims nothing.
struct Refused {
    provider: Provider,
    outcome: Outcome,
    event_id: Option<String>,
    detail: String,
}

impl Refused {
    async fn record(self, state: &AppState) -> Result<()> {
        let client = state.pool().get().await?;
        payments::record_delivery(
            &**client,
            &Delivery {
                provider: self.provider,
                event_id: self.event_id.as_deref(),
                outcome: self.outcome,
                detail: &self.detail,
                business: None,
                amount_sen: None,
            },
        )
        .await?;
        tracing::warn!(provider = self.provider.as_str(), outcome = self.outcome.as_str(),
                       detail = %self.detail, "webhook refused");
        Ok(())
    }
}

/// A verified event: claimed, then applied, refused or ignored.
async fn process(
    state: &AppState,
    provider: Provider,
    event: VerifiedEvent,
) -> Result<Json<WebhookAnswer>> {
    let event_id = event.event_id.as_deref();
    let mut client = state.pool().get().await?;
    let claim = |outcome, detail, business, amount_sen| Delivery {
        provider,
        event_id,
        outcome,
        detail,
        business,
        amount_sen,
    };
    // Outcomes decided without a business are claimed on their own.
    let (business, currency, amount) = match &event.body {
        EventBody::Ignored(detail) => {
            let claimed = claim(Outcome::Ignored, detail.as_str(), None, None);
            return match payments::record_delivery(&**client, &claimed).await? {
                Some(_) => Ok(WebhookAnswer::only(Outcome::Ignored)),
                None => duplicate(&client, provider, event_id, None).await,
            };
        }
        EventBody::Invalid(detail) => {
            let claimed = claim(Outcome::Invalid, detail.as_str(), None, None);
            return match payments::record_delivery(&**client, &claimed).await? {
                Some(_) => Err(Error::WebhookInvalid(detail.clone())),
                None => duplicate(&client, provider, event_id, None).await,
            };
        }
        EventBody::Payment(notice) => (notice.business, &notice.currency, notice.amount),
        EventBody::Refund(notice) => (notice.business, &notice.currency, notice.amount_refunded),
    };
    let amount_sen = (currency == payments::CURRENCY).then_some(amount);
    let Some(business) = business else {
        let detail = "the event's business id is not a uuid";
        let claimed = claim(Outcome::UnknownBusiness, detail, None, amount_sen);
        return match payments::record_delivery(&**client, &claimed).await? {
            Some(_) => Err(Error::WebhookUnknownBusiness),
            None => duplicate(&client, provider, event_id, None).await,
        };
    };
    let tx = TenantTx::begin(&mut client, business).await?;
    // The claim, provisionally `applied`: a concurrent delivery of the same event waits here
    // for this transaction and then finds the event claimed (or, if this one rolls back, takes
    // the claim itself).
    let claimed = claim(Outcome::Applied, "", Some(business), amount_sen);
    let Some(delivery_id) = payments::record_delivery(&*tx, &claimed).await? else {
        drop(tx);
        return duplicate(&client, provider, event_id, Some(business)).await;
    };
    let decided = match &event.body {
        EventBody::Payment(notice) => pay(&tx, provider, &event, notice).await?,
        EventBody::Refund(notice) => refund(&tx, provider, event_id, notice).await?,
        // Answered above.
        EventBody::Ignored(_) | EventBody::Invalid(_) => Decided::Duplicate,
    };
    let (outcome, detail, answer) = match decided {
        Decided::Duplicate => {
            drop(tx);
            return duplicate(&client, provider, event_id, Some(business)).await;
        }
        Decided::Done(outcome, detail, answer) => (outcome, detail, answer),
    };
    payments::finish_delivery(&*tx, delivery_id, outcome, &detail).await?;
    tx.commit().await?;
    tracing::info!(provider = provider.as_str(), tenant = %business,
                   outcome = outcome.as_str(), %detail, "webhook processed");
    if outcome == Outcome::Applied {
        crate::notices::deliver_later(state.pool(), business, state.mailer());
    }
    answer
}

/// What became of a claimed event: nothing new (a duplicate: roll back), or an outcome for the
/// log with its detail and the answer.
enum Decided {
    Duplicate,
    Done(Outcome, String, Result<Json<WebhookAnswer>>),
}

/// The answer to an event that changed the subscription.
fn applied(subscription: &Subscription) -> Json<WebhookAnswer> {
    Json(WebhookAnswer {
        outcome: Outcome::Applied.as_str().to_owned(),
        state: Some(subscription.state_at(Utc::now()).as_str().to_owned()),
        period_ends_at: subscription.facts().period_ends_at,
    })
}

/// A payment: settled by [`payments::settle`].
async fn pay(
    tx: &TenantTx<'_>,
    provider: Provider,
    event: &VerifiedEvent,
    notice: &PaymentNotice,
) -> Result<Decided> {
    let incoming = Incoming {
        provider,
        kind: Kind::Charge,
        external_id: &notice.external_id,
        payment_ref: notice.payment_ref.as_deref(),
        event_id: event.event_id.as_deref(),
        purchase: notice.purchase,
        amount: notice.amount,
        currency: &notice.currency,
        paid: notice.paid,
        paid_at: event.occurred_at,
        check_amount: true,
    };
    Ok(match payments::settle(tx, &incoming).await? {
        Settled::AlreadyApplied => Decided::Duplicate,
        Settled::Applied { subscription, .. } => {
            let detail = format!("{} applied", notice.purchase.describe());
            Decided::Done(Outcome::Applied, detail, Ok(applied(&subscription)))
        }
        Settled::ProviderFailed { .. } => Decided::Done(
            Outcome::PaymentFailed,
            "the provider reported the payment as not paid".to_owned(),
            Ok(WebhookAnswer::only(Outcome::PaymentFailed)),
        ),
        Settled::UnknownBusiness => Decided::Done(
            Outcome::UnknownBusiness,
            "no business has the event's business id".to_owned(),
            Err(Error::WebhookUnknownBusiness),
        ),
        Settled::AmountMismatch { reason } => Decided::Done(
            Outcome::AmountMismatch,
            reason.clone(),
            Err(Error::WebhookAmountMismatch(reason)),
        ),
        Settled::Refused(refused) => Decided::Done(
            Outcome::Refused,
            format!("{}: {refused}", refused.code()),
            Err(Error::PaymentRefused(refused)),
        ),
    })
}

/// A refund: settled by [`payments::refund`], at the server's time (a refund never ends a
/// period before the moment it is applied).
async fn refund(
    tx: &TenantTx<'_>,
    provider: Provider,
    event_id: Option<&str>,
    notice: &RefundNotice,
) -> Result<Decided> {
    let incoming = RefundIncoming {
        provider,
        original: Original::PaymentRef(&notice.payment_ref),
        event_id,
        amount: RefundAmount::Total(notice.amount_refunded),
        currency: &notice.currency,
        reason: None,
    };
    Ok(match payments::refund(tx, &incoming, Utc::now()).await? {
        RefundSettled::AlreadyApplied => Decided::Duplicate,
        RefundSettled::Applied {
            amount_sen,
            in_full,
            subscription,
            ..
        } => {
            let detail = format!(
                "refund of {amount_sen} sen of {} ({}) applied{}",
                notice.payment_ref,
                notice.charge,
                if in_full { ", refunded in full" } else { "" }
            );
            Decided::Done(Outcome::Applied, detail, Ok(applied(&subscription)))
        }
        RefundSettled::UnknownBusiness => Decided::Done(
            Outcome::UnknownBusiness,
            "no business has the event's business id".to_owned(),
            Err(Error::WebhookUnknownBusiness),
        ),
        RefundSettled::UnknownPayment { detail } => Decided::Done(
            Outcome::UnknownPayment,
            detail.clone(),
            Err(Error::WebhookInvalid(format!(
                "the refund names no payment Kaunter applied: {detail}"
            ))),
        ),
        RefundSettled::Exceeds { reason } => Decided::Done(
            Outcome::RefundExceedsPayment,
            reason.clone(),
            Err(Error::WebhookAmountMismatch(reason)),
        ),
        RefundSettled::WrongCurrency { reason } => Decided::Done(
            Outcome::AmountMismatch,
            reason.clone(),
            Err(Error::WebhookAmountMismatch(reason)),
        ),
    })
}

/// Records a delivery of an event already processed, and answers so.
async fn duplicate(
    client: &deadpool_postgres::Client,
    provider: Provider,
    event_id: Option<&str>,
    business: Option<crate::ids::TenantId>,
) -> Result<Json<WebhookAnswer>> {
    payments::record_delivery(
        &***client,
        &Delivery {
            provider,
            event_id,
            outcome: Outcome::Duplicate,
            detail: "this event was processed before; nothing was done",
            business,
            amount_sen: None,
        },
    )
    .await?;
    Ok(WebhookAnswer::only(Outcome::Duplicate))
}
