//! The payment providers' webhooks before any database: their secrets, how each signs a
//! delivery, the clock check, and what a verified body says. Pure functions of the bytes, the
//! headers and the time, so every rule is tested here without a server.
//!
//! - Stripe signs `"<t>.<raw body>"` with HMAC-SHA256 under the endpoint's secret and sends
//!   `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]` (several `v1` while a secret
//!   is being rolled); the signature is over the exact bytes, so the body is read raw.
//! - The FPX / e-wallet gateway (Billplz's X-Signature scheme) posts a JSON object of string
//!   fields and sends `X-Signature: <hex HMAC-SHA256>` of the fields sorted by key, each written
//!   `key` + `value`, joined with `|`.
//!
//! A Stripe delivery is fresh when its signing time `t` is within the tolerance of the server's
//! clock, either way (Stripe signs every retry afresh). The FPX shape signs no delivery time
//! and its `paid_at` never changes, so a gateway's retry after downtime would be stale for
//! ever: FPX deliveries have no freshness check, and a replay is kept out by the event id's
//! claim and the payment's unique external id instead. Signatures are compared in constant
//! time (`verify_slice`).
//!
//! Refunds: Stripe's `charge.refunded` carries the Charge, whose `amount_refunded` is the total
//! refunded so far (so events arriving out of order or twice settle to the same total), whose
//! `payment_intent` is the one the checkout session named (kept with the CHARGE), and whose
//! `metadata.tenant_id` must name the business (a checkout sets it in
//! `payment_intent_data.metadata` besides its own metadata, for its charge to carry it): the
//! business must be known before anything is looked up, and a charge that names none is refused
//! as an unknown business, recorded. `refund.created` and
//! `refund.updated` name no business (a Refund's metadata is its own) and are ignored, like
//! `charge.refund.updated`. The FPX gateway's callback (Billplz's) has no refund shape: a bill
//! is paid or not, and refunds are made outside it, so an operator records them with
//! `admin refund-payment --payment <payment_id>`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use kaunter_core::subscription::{BillingCycle, Plan, PricingModel};
use serde::Deserialize;
use sha2::Sha256;

use crate::ids::TenantId;
use crate::payments::{Outcome, Purchase, clean_id};

/// How far a delivery's time may be from the server's clock, either way, by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// The Stripe event type that says a checkout was paid.
pub const STRIPE_CHECKOUT_COMPLETED: &str = "checkout.session.completed";
/// A delayed payment method (FPX through Stripe) that succeeded, or failed, after checkout.
pub const STRIPE_ASYNC_SUCCEEDED: &str = "checkout.session.async_payment_succeeded";
pub const STRIPE_ASYNC_FAILED: &str = "checkout.session.async_payment_failed";
/// A charge was refunded, in part or in full: its `amount_refunded` is the total so far.
pub const STRIPE_CHARGE_REFUNDED: &str = "charge.refunded";

/// A webhook signing secret, kept as the HMAC keyed with it. Debug never shows it.
#[derive(Clone)]
pub struct WebhookSecret(Hmac<Sha256>);

impl WebhookSecret {
    fn mac(&self) -> Hmac<Sha256> {
        self.0.clone()
    }
}

impl FromStr for WebhookSecret {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().is_empty() {
            return Err("a webhook secret cannot be empty".to_owned());
        }
        // Providers use the secret's text itself as the key (Stripe's `whsec_...` included).
        Hmac::<Sha256>::new_from_slice(text.as_bytes())
            .map(Self)
            .map_err(|_| "a webhook secret cannot be used as an HMAC key".to_owned())
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// A delivery refused before its event was trusted: its outcome (bad signature, stale, or a
/// body that could not be read) and what the log keeps of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub outcome: Outcome,
    /// The event id the body claims, unverified (for the operator's log only).
    pub event_id: Option<String>,
    pub detail: String,
}

impl Refusal {
    fn new(outcome: Outcome, event_id: Option<String>, detail: impl Into<String>) -> Self {
        Self {
            outcome,
            event_id,
            detail: detail.into(),
        }
    }
}

/// A delivery whose signature and time checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent {
    /// The provider's event id: what makes a replay a duplicate. `None` only for a body so
    /// unreadable that it names none (its body is [`EventBody::Invalid`]).
    pub event_id: Option<String>,
    /// When the event happened: a payment is applied as made then.
    pub occurred_at: DateTime<Utc>,
    pub body: EventBody,
}

/// What a verified event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventBody {
    /// A payment (or a failed attempt) for a purchase.
    Payment(PaymentNotice),
    /// Money given back for a payment.
    Refund(RefundNotice),
    /// An event Kaunter does not act on; the sentence says which.
    Ignored(String),
    /// Signed, but not usable; the sentence says why.
    Invalid(String),
}

/// A provider's word about one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentNotice {
    /// The provider's transaction id (Stripe's checkout session, the gateway's bill).
    pub external_id: String,
    /// What later events (refunds) name the payment by: Stripe's payment intent.
    pub payment_ref: Option<String>,
    /// The business the event names; `None` when what it names is not a business id at all.
    pub business: Option<TenantId>,
    pub purchase: Purchase,
    /// In the currency's smallest unit.
    pub amount: i64,
    /// Upper-case ISO 4217.
    pub currency: String,
    /// Whether the money was taken.
    pub paid: bool,
}

/// A provider's word that money went back for a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundNotice {
    /// The payment refunded, as the provider names it: Stripe's payment intent.
    pub payment_ref: String,
    /// The provider's id of what was refunded (Stripe's charge), for the log.
    pub charge: String,
    /// The business the event names; `None` when what it names is not a business id at all.
    pub business: Option<TenantId>,
    /// The total refunded of the payment so far, in the currency's smallest unit.
    pub amount_refunded: i64,
    /// Upper-case ISO 4217.
    pub currency: String,
}

/// Whether `at` is within `tolerance` of `now`, either way, in whole seconds (as Stripe's own
/// libraries count: its timestamps have no fractions).
fn check_fresh(
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    tolerance: Duration,
    event_id: Option<&str>,
) -> Result<(), Refusal> {
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    let off = now.timestamp().abs_diff(at.timestamp());
    if off > tolerance.unsigned_abs() {
        return Err(Refusal::new(
            Outcome::Stale,
            event_id.and_then(clean_id),
            format!(
                "signed {off} s {} the server's clock; the tolerance is {tolerance} s",
                if at < now { "before" } else { "after" },
            ),
        ));
    }
    Ok(())
}

/// Checks a Stripe delivery: its `Stripe-Signature` header over the raw `body`, then its time.
pub fn verify_stripe(
    secret: &WebhookSecret,
    header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<VerifiedEvent, Refusal> {
    let claimed_id = || peek_event_id(body);
    let bad = |detail: &str| Refusal::new(Outcome::BadSignature, claimed_id(), detail);
    let header = header.ok_or_else(|| bad("no Stripe-Signature header"))?;
    let mut timestamp: Option<&str> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" if timestamp.is_none() => timestamp = Some(value),
            "t" => return Err(bad("two timestamps in Stripe-Signature")),
            // A signature that is not hex cannot match; skip it like another scheme's.
            "v1" => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| bad("no timestamp in Stripe-Signature"))?;
    let signed_at = timestamp
        .parse::<i64>()
        .ok()
        .filter(|_| timestamp.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .ok_or_else(|| bad("the Stripe-Signature timestamp is not a time"))?;
    let mut mac = secret.mac();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let matches = signatures
        .iter()
        .any(|signature| mac.clone().verify_slice(signature).is_ok());
    if !matches {
        return Err(bad("no v1 signature matches the body"));
    }
    check_fresh(signed_at, now, tolerance, claimed_id().as_deref())?;
    Ok(parse_stripe(body, signed_at))
}

/// The `id` a body claims, read without trusting it (for the log of a refused delivery).
fn peek_event_id(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Peek {
        id: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Peek>(body).ok()?.id? {
        serde_json::Value::String(id) => clean_id(&id),
        _ => None,
    }
}

#[derive(Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    /// When Stripe made the event (unix seconds).
    created: Option<i64>,
    data: Option<StripeData>,
}

#[derive(Deserialize)]
struct StripeData {
    object: serde_json::Value,
}

#[derive(Deserialize)]
struct StripeCheckoutSession {
    id: String,
    amount_total: Option<i64>,
    currency: Option<String>,
    /// `paid`, `unpaid` (a delayed method such as FPX: its own event follows), or
    /// `no_payment_required`.
    payment_status: Option<String>,
    /// The payment intent the checkout made: what its refunds name (an id, or the object when
    /// expanded).
    payment_intent: Option<serde_json::Value>,
    #[serde(default)]
    metadata: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct StripeCharge {
    id: String,
    /// The total refunded so far.
    amount_refunded: Option<i64>,
    currency: Option<String>,
    payment_intent: Option<serde_json::Value>,
    #[serde(default)]
    metadata: BTreeMap<String, serde_json::Value>,
}

/// An id Stripe gives as a string, or as the object when expanded.
fn stripe_id(value: Option<&serde_json::Value>) -> Option<&str> {
    match value? {
        serde_json::Value::String(id) => Some(id),
        serde_json::Value::Object(object) => object.get("id")?.as_str(),
        _ => None,
    }
}

/// What a `charge.refunded` event's charge says.
fn parse_stripe_refund(object: serde_json::Value) -> EventBody {
    let charge: StripeCharge = match serde_json::from_value(object) {
        Ok(charge) => charge,
        Err(error) => {
            return EventBody::Invalid(format!("data.object is not a charge: {error}"));
        }
    };
    let notice = (|| -> Result<RefundNotice, String> {
        let payment_ref = stripe_id(charge.payment_intent.as_ref()).ok_or_else(|| {
            "the charge names no payment_intent: it is not from a Kaunter checkout".to_owned()
        })?;
        Ok(RefundNotice {
            payment_ref: checked_id("the payment intent id", payment_ref)?,
            charge: checked_id("the charge id", &charge.id)?,
            business: match charge.metadata.get("tenant_id") {
                Some(serde_json::Value::String(text)) => business_id(text),
                _ => None,
            },
            amount_refunded: charge
                .amount_refunded
                .filter(|amount| *amount >= 0)
                .ok_or_else(|| "amount_refunded is missing or negative".to_owned())?,
            currency: charge
                .currency
                .ok_or_else(|| "currency is missing".to_owned())?
                .to_ascii_uppercase(),
        })
    })();
    match notice {
        Ok(notice) => EventBody::Refund(notice),
        Err(detail) => EventBody::Invalid(detail),
    }
}

/// What a verified Stripe body says.
fn parse_stripe(body: &[u8], signed_at: DateTime<Utc>) -> VerifiedEvent {
    let event: StripeEvent = match serde_json::from_slice(body) {
        Ok(event) => event,
        Err(error) => {
            return VerifiedEvent {
                event_id: None,
                occurred_at: signed_at,
                body: EventBody::Invalid(format!("not a Stripe event: {error}")),
            };
        }
    };
    let occurred_at = event
        .created
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .unwrap_or(signed_at);
    let verified = |body| VerifiedEvent {
        event_id: Some(event.id.clone()),
        occurred_at,
        body,
    };
    if clean_id(&event.id).as_deref() != Some(event.id.as_str()) {
        return VerifiedEvent {
            event_id: None,
            ..verified(EventBody::Invalid("the event id is not an id".to_owned()))
        };
    }
    let paid = match event.event_type.as_str() {
        STRIPE_CHECKOUT_COMPLETED | STRIPE_ASYNC_SUCCEEDED => true,
        STRIPE_ASYNC_FAILED => false,
        STRIPE_CHARGE_REFUNDED => {
            return verified(match event.data {
                Some(data) => parse_stripe_refund(data.object),
                None => EventBody::Invalid("the event has no data".to_owned()),
            });
        }
        other => {
            return verified(EventBody::Ignored(format!(
                "Kaunter does not act on {other:?} events"
            )));
        }
    };
    let Some(data) = event.data else {
        return verified(EventBody::Invalid("the event has no data".to_owned()));
    };
    let session: StripeCheckoutSession = match serde_json::from_value(data.object) {
        Ok(session) => session,
        Err(error) => {
            return verified(EventBody::Invalid(format!(
                "data.object is not a checkout session: {error}"
            )));
        }
    };
    if event.event_type == STRIPE_CHECKOUT_COMPLETED
        && session.payment_status.as_deref() == Some("unpaid")
    {
        return verified(EventBody::Ignored(
            "the checkout is not paid yet: its async_payment event follows".to_owned(),
        ));
    }
    let metadata = |key: &str| match session.metadata.get(key) {
        Some(serde_json::Value::String(value)) => Ok(value.as_str()),
        _ => Err(format!("metadata.{key} is missing")),
    };
    let notice = (|| -> Result<PaymentNotice, String> {
        let purchase = purchase(metadata("plan")?, metadata("cycle")?, metadata("pricing")?)?;
        let amount = session
            .amount_total
            .ok_or_else(|| "amount_total is missing".to_owned())?;
        let currency = session
            .currency
            .ok_or_else(|| "currency is missing".to_owned())?
            .to_ascii_uppercase();
        let payment_ref = stripe_id(session.payment_intent.as_ref())
            .map(|id| checked_id("the payment intent id", id))
            .transpose()?;
        Ok(PaymentNotice {
            external_id: checked_id("the checkout session id", &session.id)?,
            payment_ref,
            business: metadata("tenant_id").ok().and_then(business_id),
            purchase,
            amount,
            currency,
            paid,
        })
    })();
    verified(match notice {
        Ok(notice) => EventBody::Payment(notice),
        Err(detail) => EventBody::Invalid(detail),
    })
}

/// Checks an FPX gateway's delivery: its `X-Signature` over the body's fields. Its `paid_at`
/// is not checked against the clock (see the module's documentation), however old: a retry
/// comes with the same fields. A `paid_at` after `now` counts as `now`.
pub fn verify_fpx(
    secret: &WebhookSecret,
    header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<VerifiedEvent, Refusal> {
    let fields = fpx_fields(body).map_err(|detail| Refusal::new(Outcome::Invalid, None, detail))?;
    let claimed_id = || fields.get("id").and_then(|id| clean_id(id));
    let bad = |detail: &str| Refusal::new(Outcome::BadSignature, claimed_id(), detail);
    let header = header.ok_or_else(|| bad("no X-Signature header"))?;
    let signature = hex::decode(header.trim()).map_err(|_| bad("X-Signature is not hex"))?;
    let mut mac = secret.mac();
    mac.update(fpx_source(&fields).as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| bad("X-Signature does not match the fields"))?;
    // From here on the fields are the gateway's own.
    let field = |key: &str| {
        fields
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("{key} is missing"))
    };
    let invalid = |event_id: Option<String>, occurred_at, detail: String| VerifiedEvent {
        event_id,
        occurred_at,
        body: EventBody::Invalid(detail),
    };
    let id = match field("id").and_then(|id| checked_id("id", id)) {
        Ok(id) => id,
        Err(detail) => return Ok(invalid(None, now, detail)),
    };
    let paid = match field("paid") {
        Ok("true") => true,
        Ok("false") => false,
        Ok(_) => {
            let detail = "paid is neither true nor false".to_owned();
            return Ok(invalid(Some(id), now, detail));
        }
        Err(detail) => return Ok(invalid(Some(id), now, detail)),
    };
    // One event per state of a bill: a failed attempt and the payment that follows are two.
    let event_id = format!("{id}:{}", if paid { "paid" } else { "failed" });
    let paid_at = match field("paid_at").and_then(|text| {
        DateTime::parse_from_rfc3339(text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|_| "paid_at is not an RFC 3339 time".to_owned())
    }) {
        // A gateway's clock ahead of ours buys no days paid in the future.
        Ok(at) => at.min(now),
        Err(detail) => return Ok(invalid(Some(event_id), now, detail)),
    };
    let notice = (|| -> Result<PaymentNotice, String> {
        let reference = field("reference_2")?;
        let mut parts = reference.split(':');
        let (Some(plan), Some(cycle), Some(pricing), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("reference_2 is not PLAN:CYCLE:PRICING".to_owned());
        };
        let amount = field("amount")?;
        let amount = kaunter_protocol::records::ringgit::parse(amount)
            .and_then(kaunter_protocol::records::ringgit::to_sen)
            .ok_or_else(|| "amount is not ringgit with two decimals".to_owned())?;
        Ok(PaymentNotice {
            external_id: id.clone(),
            payment_ref: None,
            business: business_id(field("reference_1")?),
            purchase: purchase(plan, cycle, pricing)?,
            amount,
            currency: crate::payments::CURRENCY.to_owned(),
            paid,
        })
    })();
    Ok(VerifiedEvent {
        event_id: Some(event_id),
        occurred_at: paid_at,
        body: match notice {
            Ok(notice) => EventBody::Payment(notice),
            Err(detail) => EventBody::Invalid(detail),
        },
    })
}

/// The FPX body: a JSON object whose every value is a string.
fn fpx_fields(body: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let object: BTreeMap<String, serde_json::Value> = serde_json::from_slice(body)
        .map_err(|_| "the body is not a JSON object of string fields".to_owned())?;
    object
        .into_iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(text) => Ok((key, text)),
            _ => Err(format!("field {key:?} is not a string")),
        })
        .collect()
}

/// What the gateway signs: every field but the signature itself (which Billplz also posts as
/// `x_signature`), sorted by key, `key` + `value`, joined with `|`.
pub fn fpx_source(fields: &BTreeMap<String, String>) -> String {
    fields
        .iter()
        .filter(|(key, _)| key.as_str() != "x_signature")
        .map(|(key, value)| format!("{key}{value}"))
        .collect::<Vec<_>>()
        .join("|")
}

fn purchase(plan: &str, cycle: &str, pricing: &str) -> Result<Purchase, String> {
    Ok(Purchase {
        plan: Plan::parse(plan).ok_or_else(|| format!("unknown plan {plan:?}"))?,
        cycle: BillingCycle::parse(cycle).ok_or_else(|| format!("unknown cycle {cycle:?}"))?,
        pricing: PricingModel::parse(pricing)
            .ok_or_else(|| format!("unknown pricing {pricing:?}"))?,
    })
}

/// A business id from a provider's metadata; `None` when it is not a uuid.
fn business_id(text: &str) -> Option<TenantId> {
    text.parse().ok()
}

/// An id that can be stored exactly as the provider wrote it.
fn checked_id(what: &str, id: &str) -> Result<String, String> {
    match clean_id(id) {
        Some(cleaned) if cleaned == id => Ok(cleaned),
        _ => Err(format!(
            "{what} is empty, too long or has control characters"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::TimeDelta;

    use super::*;

    fn secret() -> WebhookSecret {
        "whsec_test".parse().unwrap()
    }

    fn hmac_hex(key: &str, message: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(message);
        hex::encode(mac.finalize().into_bytes())
    }

    const TENANT: &str = "0190b2c4-0000-7000-8000-000000000001";

    fn stripe_body(kind: &str, amount: i64) -> Vec<u8> {
        serde_json::json!({"id": "evt_1", "type": kind, "data": {"object": {
            "id": "cs_1", "amount_total": amount, "currency": "myr",
            "metadata": {"tenant_id": TENANT, "plan": "STARTER", "cycle": "MONTHLY",
                         "pricing": "SUBSCRIPTION"}}}})
        .to_string()
        .into_bytes()
    }

    fn stripe_header(t: i64, body: &[u8], key: &str) -> String {
        let mut message = format!("{t}.").into_bytes();
        message.extend_from_slice(body);
        format!("t={t},v1={}", hmac_hex(key, &message))
    }

    #[test]
    fn a_stripe_checkout_signed_now_is_a_payment() {
        let now = Utc::now();
        let body = stripe_body(STRIPE_CHECKOUT_COMPLETED, 4900);
        let header = stripe_header(now.timestamp(), &body, "whsec_test");
        let event = verify_stripe(&secret(), Some(&header), &body, now, DEFAULT_TOLERANCE).unwrap();
        assert_eq!(event.event_id.as_deref(), Some("evt_1"));
        let EventBody::Payment(notice) = event.body else {
            panic!("{event:?}")
        };
        assert_eq!(notice.external_id, "cs_1");
        assert_eq!(notice.amount, 4900);
        assert_eq!(notice.currency, "MYR");
        assert_eq!(notice.business, Some(TENANT.parse().unwrap()));
        assert!(notice.paid);
    }

    #[test]
    fn stripe_signatures_must_match_the_exact_bytes_under_the_secret() {
        let now = Utc::now();
        let body = stripe_body(STRIPE_CHECKOUT_COMPLETED, 4900);
        let t = now.timestamp();
        let good = stripe_header(t, &body, "whsec_test");
        let wrong_key = stripe_header(t, &body, "whsec_other");
        let mut changed = body.clone();
        changed.push(b' ');
        for (header, body) in [
            (None, &body),
            (Some(wrong_key.clone()), &body),
            (Some(good.clone()), &changed),
            (
                Some(format!("v1={}", &good[good.find("v1=").unwrap() + 3..])),
                &body,
            ),
            (Some(format!("t=x{t},v1=00")), &body),
            (
                Some(format!("t={t},t={t},{}", &good[good.find("v1").unwrap()..])),
                &body,
            ),
        ] {
            let refusal = verify_stripe(&secret(), header.as_deref(), body, now, DEFAULT_TOLERANCE)
                .unwrap_err();
            assert_eq!(refusal.outcome, Outcome::BadSignature, "{header:?}");
        }
        // Several v1 (a secret being rolled): any one matching is enough.
        let both = format!("{wrong_key},{}", &good[good.find("v1").unwrap()..]);
        assert!(verify_stripe(&secret(), Some(&both), &body, now, DEFAULT_TOLERANCE).is_ok());
    }

    #[test]
    fn a_delivery_is_stale_one_second_past_the_tolerance_either_way() {
        let now = Utc::now();
        let body = stripe_body(STRIPE_CHECKOUT_COMPLETED, 4900);
        for (offset, fresh) in [(-300, true), (300, true), (-301, false), (301, false)] {
            let header = stripe_header(now.timestamp() + offset, &body, "whsec_test");
            let verified = verify_stripe(&secret(), Some(&header), &body, now, DEFAULT_TOLERANCE);
            match verified {
                Ok(_) => assert!(fresh, "{offset}"),
                Err(refusal) => {
                    assert!(!fresh, "{offset}");
                    assert_eq!(refusal.outcome, Outcome::Stale);
                    assert_eq!(refusal.event_id.as_deref(), Some("evt_1"));
                }
            }
        }
    }

    #[test]
    fn other_stripe_events_are_ignored_and_bad_metadata_is_invalid() {
        let now = Utc::now();
        let body = stripe_body("invoice.paid", 4900);
        let header = stripe_header(now.timestamp(), &body, "whsec_test");
        let event = verify_stripe(&secret(), Some(&header), &body, now, DEFAULT_TOLERANCE).unwrap();
        assert!(matches!(event.body, EventBody::Ignored(_)), "{event:?}");

        let body = serde_json::json!({"id": "evt_2", "type": STRIPE_CHECKOUT_COMPLETED,
            "data": {"object": {"id": "cs_2", "amount_total": 4900, "currency": "myr",
                                "metadata": {"tenant_id": "nobody", "plan": "GOLD",
                                             "cycle": "MONTHLY", "pricing": "SUBSCRIPTION"}}}})
        .to_string()
        .into_bytes();
        let header = stripe_header(now.timestamp(), &body, "whsec_test");
        let event = verify_stripe(&secret(), Some(&header), &body, now, DEFAULT_TOLERANCE).unwrap();
        assert_eq!(event.event_id.as_deref(), Some("evt_2"));
        assert_eq!(
            event.body,
            EventBody::Invalid("unknown plan \"GOLD\"".to_owned())
        );

        let body = b"not json".to_vec();
        let header = stripe_header(now.timestamp(), &body, "whsec_test");
        let event = verify_stripe(&secret(), Some(&header), &body, now, DEFAULT_TOLERANCE).unwrap();
        assert_eq!(event.event_id, None);
        assert!(matches!(event.body, EventBody::Invalid(_)));
    }

    fn charge_refunded(object: serde_json::Value) -> EventBody {
        let now = Utc::now();
        let body = serde_json::json!({"id": "evt_r", "type": STRIPE_CHARGE_REFUNDED,
                                      "data": {"object": object}})
        .to_string()
        .into_bytes();
        let header = stripe_header(now.timestamp(), &body, "whsec_test");
        let event = verify_stripe(&secret(), Some(&header), &body, now, DEFAULT_TOLERANCE).unwrap();
        assert_eq!(event.event_id.as_deref(), Some("evt_r"));
        event.body
    }

    #[test]
    fn a_charge_refunded_names_the_payment_intent_the_business_and_the_total() {
        let body = charge_refunded(serde_json::json!({
            "id": "ch_1", "object": "charge", "amount": 4900, "amount_refunded": 1000,
            "refunded": false, "currency": "myr", "payment_intent": "pi_1",
            "metadata": {"tenant_id": TENANT}}));
        assert_eq!(
            body,
            EventBody::Refund(RefundNotice {
                payment_ref: "pi_1".to_owned(),
                charge: "ch_1".to_owned(),
                business: Some(TENANT.parse().unwrap()),
                amount_refunded: 1000,
                currency: "MYR".to_owned(),
            })
        );
        // An expanded payment intent; a business that is not an id.
        let body = charge_refunded(serde_json::json!({
            "id": "ch_2", "amount_refunded": 4900, "currency": "myr",
            "payment_intent": {"id": "pi_2", "object": "payment_intent"},
            "metadata": {"tenant_id": "klinik"}}));
        let EventBody::Refund(notice) = body else {
            panic!("{body:?}")
        };
        assert_eq!(
            (notice.payment_ref.as_str(), notice.business),
            ("pi_2", None)
        );
        // No payment intent, no total: not usable.
        for object in [
            serde_json::json!({"id": "ch_3", "amount_refunded": 1, "currency": "myr"}),
            serde_json::json!({"id": "ch_4", "currency": "myr", "payment_intent": "pi_4"}),
            serde_json::json!({"id": "ch_5", "amount_refunded": -1, "currency": "myr",
                               "payment_intent": "pi_5"}),
            serde_json::json!("ch_6"),
        ] {
            let body = charge_refunded(object.clone());
            assert!(matches!(body, EventBody::Invalid(_)), "{object}: {body:?}");
        }
    }

    #[test]
    fn a_checkout_keeps_its_payment_intent() {
        let now = Utc::now();
        let mut event: serde_json::Value =
            serde_json::from_slice(&stripe_body(STRIPE_CHECKOUT_COMPLETED, 4900)).unwrap();
        event["data"]["object"]["payment_intent"] = serde_json::json!("pi_9");
        let body = event.to_string().into_bytes();
        let header = stripe_header(now.timestamp(), &body, "whsec_test");
        let event = verify_stripe(&secret(), Some(&header), &body, now, DEFAULT_TOLERANCE).unwrap();
        let EventBody::Payment(notice) = event.body else {
            panic!("{event:?}")
        };
        assert_eq!(notice.payment_ref.as_deref(), Some("pi_9"));
        // Other refund events name no business: ignored.
        for kind in ["refund.created", "refund.updated", "charge.refund.updated"] {
            let body = stripe_body(kind, 4900);
            let header = stripe_header(now.timestamp(), &body, "whsec_test");
            let event =
                verify_stripe(&secret(), Some(&header), &body, now, DEFAULT_TOLERANCE).unwrap();
            assert!(matches!(event.body, EventBody::Ignored(_)), "{kind}");
        }
    }

    fn fpx_body(paid: &str, paid_at: DateTime<Utc>) -> BTreeMap<String, String> {
        [
            ("id", "W_79pJDk"),
            ("paid", paid),
            ("amount", "49.00"),
            ("paid_at", &paid_at.to_rfc3339()),
            ("reference_1", TENANT),
            ("reference_2", "STARTER:MONTHLY:SUBSCRIPTION"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
    }

    #[test]
    fn the_fpx_source_string_is_sorted_key_value_pairs() {
        let at = DateTime::parse_from_rfc3339("2025-04-01T09:30:00+08:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            fpx_source(&fpx_body("true", at)),
            format!(
                "amount49.00|idW_79pJDk|paidtrue|paid_at2025-04-01T01:30:00+00:00|\
                 reference_1{TENANT}|reference_2STARTER:MONTHLY:SUBSCRIPTION"
            )
        );
    }

    #[test]
    fn fpx_callbacks_are_verified_over_their_fields() {
        let now = Utc::now();
        let fields = fpx_body("true", now);
        let body = serde_json::to_vec(&fields).unwrap();
        let signature = hmac_hex("whsec_test", fpx_source(&fields).as_bytes());
        let event = verify_fpx(&secret(), Some(&signature), &body, now).unwrap();
        assert_eq!(event.event_id.as_deref(), Some("W_79pJDk:paid"));
        let EventBody::Payment(notice) = event.body else {
            panic!("{event:?}")
        };
        assert_eq!((notice.amount, notice.paid), (4900, true));

        let wrong = hmac_hex("whsec_other", fpx_source(&fields).as_bytes());
        for header in [None, Some("zz"), Some(wrong.as_str())] {
            let refusal = verify_fpx(&secret(), header, &body, now).unwrap_err();
            assert_eq!(refusal.outcome, Outcome::BadSignature);
            assert_eq!(refusal.event_id.as_deref(), Some("W_79pJDk"));
        }

        // However old its paid_at (a retry after downtime), a callback is taken; one from a
        // clock ahead counts as paid now.
        let paid_at = now - TimeDelta::hours(3);
        let old = fpx_body("false", paid_at);
        let body = serde_json::to_vec(&old).unwrap();
        let signature = hmac_hex("whsec_test", fpx_source(&old).as_bytes());
        let event = verify_fpx(&secret(), Some(&signature), &body, now).unwrap();
        assert_eq!(event.event_id.as_deref(), Some("W_79pJDk:failed"));
        assert_eq!(event.occurred_at.timestamp(), paid_at.timestamp());
        let ahead = fpx_body("true", now + TimeDelta::hours(1));
        let body = serde_json::to_vec(&ahead).unwrap();
        let signature = hmac_hex("whsec_test", fpx_source(&ahead).as_bytes());
        let event = verify_fpx(&secret(), Some(&signature), &body, now).unwrap();
        assert_eq!(event.occurred_at, now);

        let refusal = verify_fpx(&secret(), None, b"{\"paid\": true}", now).unwrap_err();
        assert_eq!(refusal.outcome, Outcome::Invalid);
    }

    #[test]
    fn secrets_never_show_in_debug() {
        assert!(!format!("{:?}", secret()).contains("whsec"));
        assert!("  ".parse::<WebhookSecret>().is_err());
    }
}
