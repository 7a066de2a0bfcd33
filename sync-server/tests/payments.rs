//! Payments over real HTTP against the real server and PostgreSQL: the Stripe and FPX webhooks
//! signed as the providers sign them (a good checkout activates the business, replays and
//! racing deliveries apply once, every refusal is recorded and touches nothing), head office's
//! list of its own payments, and cancelling. Refunds (Stripe's `charge.refunded` and an
//! operator's): in full they take back what the payment still buys, in part nothing; replays
//! and racing deliveries apply once; a payment of no such business (another business's
//! included) or more than was paid is refused with its own outcome. An operator's adjustments
//! move the period by whole days, with a reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use kaunter_protocol::http::{SessionView, SignUpResponse};
use kaunter_sync_server::AppState;
use kaunter_sync_server::test_support::{ADMIN_PASSWORD, TestDatabase, TestServer, sign_up_form};
use kaunter_sync_server::{db, payments};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

const STRIPE_SECRET: &str = "whsec_kaunter_test";
const FPX_SECRET: &str = "fpx-x-signature-key";

struct Setup {
    db: TestDatabase,
    server: TestServer,
    http: reqwest::Client,
}

impl Setup {
    /// A fresh database and the real server with both providers' secrets configured.
    async fn new() -> Setup {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        let db = TestDatabase::create().await.unwrap();
        let state = AppState::new(db::connect_pool(db.app_config().unwrap(), 8).unwrap())
            .with_stripe_webhook_secret(Some(STRIPE_SECRET.parse().unwrap()))
            .with_fpx_webhook_secret(Some(FPX_SECRET.parse().unwrap()));
        let server = TestServer::start(state).await.unwrap();
        Setup {
            db,
            server,
            http: reqwest::Client::new(),
        }
    }

    async fn finish(self) {
        drop(self.server);
        self.db.drop_db().await.unwrap();
    }

    /// Signs a clinic up and logs its ADMIN in.
    async fn business(&self, slug: &str) -> Business {
        let created: SignUpResponse = self
            .http
            .post(self.server.url("/v1/signup"))
            .json(&sign_up_form(
                slug,
                &format!("Klinik {slug}"),
                &format!("admin@{slug}.my"),
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let login = self
            .http
            .post(self.server.url("/v1/auth/login"))
            .json(
                &json!({"business": slug, "email": format!("admin@{slug}.my"),
                          "password": ADMIN_PASSWORD}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::OK);
        let cookie = login.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let view: SessionView = login.json().await.unwrap();
        Business {
            tenant_id: created.tenant_id,
            cookie,
            csrf: view.csrf_token,
        }
    }

    async fn office(&self, business: &Business, path: &str) -> Value {
        let answer = self
            .http
            .get(self.server.url(path))
            .header(COOKIE, &business.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        answer.json().await.unwrap()
    }

    async fn subscription(&self, business: &Business) -> Value {
        self.office(business, "/v1/subscription").await
    }

    async fn payments(&self, business: &Business) -> Vec<Value> {
        self.office(business, "/v1/payments").await["payments"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn cancel(&self, business: &Business, csrf: Option<&str>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(self.server.url("/v1/subscription/cancel"))
            .header(COOKIE, &business.cookie);
        if let Some(csrf) = csrf {
            request = request.header("X-CSRF-Token", csrf);
        }
        let answer = request.send().await.unwrap();
        (answer.status(), answer.json().await.unwrap())
    }

    /// Posts `body` to Stripe's webhook, signed at `t` with `secret` (no header if `None`).
    async fn stripe(&self, body: &[u8], signature: Option<String>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(self.server.url("/v1/webhooks/stripe"))
            .header("Content-Type", "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("Stripe-Signature", signature);
        }
        let answer = request.send().await.unwrap();
        (answer.status(), answer.json().await.unwrap())
    }

    /// Posts `body` to Stripe's webhook as sent, with `Content-Encoding: <encoding>`.
    async fn stripe_encoded(
        &self,
        body: Vec<u8>,
        encoding: &str,
        signature: Option<String>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(self.server.url("/v1/webhooks/stripe"))
            .header("Content-Type", "application/json")
            .header("Content-Encoding", encoding)
            .body(body);
        if let Some(signature) = signature {
            request = request.header("Stripe-Signature", signature);
        }
        let answer = request.send().await.unwrap();
        (answer.status(), answer.json().await.unwrap())
    }

    async fn fpx(
        &self,
        fields: &BTreeMap<String, String>,
        signature: Option<String>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(self.server.url("/v1/webhooks/fpx"))
            .json(fields);
        if let Some(signature) = signature {
            request = request.header("X-Signature", signature);
        }
        let answer = request.send().await.unwrap();
        (answer.status(), answer.json().await.unwrap())
    }

    /// Every delivery recorded, oldest first: (outcome, event id).
    async fn deliveries(&self) -> Vec<(String, Option<String>)> {
        self.db
            .owner_client()
            .await
            .unwrap()
            .query(
                "SELECT outcome, event_id FROM webhook_deliveries ORDER BY delivery_id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    }

    /// The business's payment rows as stored: (status, amount_sen, failure_reason).
    async fn stored_payments(
        &self,
        business: &Business,
    ) -> Vec<(String, Option<i64>, Option<String>)> {
        self.db
            .owner_client()
            .await
            .unwrap()
            .query(
                "SELECT status, amount_sen, failure_reason FROM payments WHERE tenant_id = $1
                 ORDER BY created_at, payment_id",
                &[&business.tenant_id],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect()
    }
}

struct Business {
    tenant_id: Uuid,
    cookie: String,
    csrf: String,
}

fn hmac_hex(key: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// `Stripe-Signature` as Stripe makes it: `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
fn stripe_signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut message = format!("{t}.").into_bytes();
    message.extend_from_slice(body);
    format!("t={t},v1={}", hmac_hex(secret, &message))
}

fn signed_now(body: &[u8]) -> Option<String> {
    Some(stripe_signature(
        STRIPE_SECRET,
        Utc::now().timestamp(),
        body,
    ))
}

/// A Stripe event about checkout session `session` of `tenant` buying `purchase`
/// (`PLAN:CYCLE:PRICING`) for `amount` sen of `currency`.
fn stripe_event(
    id: &str,
    kind: &str,
    session: &str,
    tenant: &str,
    purchase: &str,
    amount: i64,
    currency: &str,
) -> Vec<u8> {
    let mut parts = purchase.split(':');
    let (plan, cycle, pricing) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    json!({"id": id, "type": kind, "data": {"object": {
        "id": session, "amount_total": amount, "currency": currency,
        "metadata": {"tenant_id": tenant, "plan": plan, "cycle": cycle, "pricing": pricing}}}})
    .to_string()
    .into_bytes()
}

fn checkout(id: &str, session: &str, business: &Business, amount: i64) -> Vec<u8> {
    stripe_event(
        id,
        "checkout.session.completed",
        session,
        &business.tenant_id.to_string(),
        "STARTER:MONTHLY:SUBSCRIPTION",
        amount,
        "myr",
    )
}

fn at(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

fn outcomes(deliveries: &[(String, Option<String>)]) -> Vec<&str> {
    deliveries
        .iter()
        .map(|(outcome, _)| outcome.as_str())
        .collect()
}

#[tokio::test]
async fn a_stripe_checkout_activates_the_business_and_a_replay_changes_nothing() {
    let setup = Setup::new().await;
    let business = setup.business("klinik-bayar").await;
    let before = setup.subscription(&business).await;
    assert_eq!(before["state"], "TRIAL");
    let trial_ends_at = at(&before["trial_ends_at"]);

    let body = checkout("evt_1", "cs_1", &business, 4_900);
    let (status, answer) = setup.stripe(&body, signed_now(&body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "applied");
    assert_eq!(answer["state"], "ACTIVE");
    // Paid during the trial: the month starts when the trial ends, no free day is lost.
    assert_eq!(
        at(&answer["period_ends_at"]),
        trial_ends_at + TimeDelta::days(30)
    );
    let after = setup.subscription(&business).await;
    assert_eq!(after["state"], "ACTIVE");
    assert_eq!(after["plan"], "STARTER");
    assert_eq!(after["cycle"], "MONTHLY");
    assert_eq!(at(&after["period_ends_at"]), at(&answer["period_ends_at"]));

    // The same event again (Stripe retries; so can an attacker who saw it), freshly signed.
    let (status, answer) = setup.stripe(&body, signed_now(&body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, json!({"outcome": "duplicate"}));
    // Another event about the same checkout session is the same money: not applied again.
    let other = checkout("evt_2", "cs_1", &business, 4_900);
    let (status, answer) = setup.stripe(&other, signed_now(&other)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["outcome"], "duplicate");

    assert_eq!(
        setup.subscription(&business).await["period_ends_at"],
        after["period_ends_at"]
    );
    let payments = setup.payments(&business).await;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["kind"], "CHARGE");
    assert_eq!(payments[0]["status"], "COMPLETED");
    assert_eq!(payments[0]["amount_sen"], 4_900);
    assert_eq!(payments[0]["currency"], "MYR");
    assert_eq!(payments[0]["provider"], "stripe");
    assert_eq!(payments[0]["external_id"], "cs_1");
    assert_eq!(
        outcomes(&setup.deliveries().await),
        ["applied", "duplicate", "duplicate"]
    );
    setup.finish().await;
}

#[tokio::test]
async fn a_compressed_delivery_is_checked_as_it_was_signed() {
    let setup = Setup::new().await;
    let business = setup.business("klinik-mampat").await;
    let body = checkout("evt_zstd", "cs_zstd", &business, 4_900);
    let compressed = zstd::bulk::compress(&body, 1).unwrap();
    // Signed over the compressed bytes, it is not what was signed: refused.
    let (status, answer) = setup
        .stripe_encoded(compressed.clone(), "zstd", signed_now(&compressed))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["code"], "webhook_signature_invalid");
    // A coding the server does not read: refused as such, and recorded.
    let (status, answer) = setup
        .stripe_encoded(compressed.clone(), "gzip", signed_now(&body))
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{answer}");
    assert_eq!(answer["code"], "unsupported_content_encoding");
    assert_eq!(setup.subscription(&business).await["state"], "TRIAL");
    // Signed over the event itself, as the sender signs it: applied.
    let (status, answer) = setup
        .stripe_encoded(compressed, "zstd", signed_now(&body))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "applied");
    assert_eq!(setup.subscription(&business).await["state"], "ACTIVE");
    assert_eq!(
        outcomes(&setup.deliveries().await),
        ["bad_signature", "invalid", "applied"]
    );
    setup.finish().await;
}

#[tokio::test]
async fn two_concurrent_deliveries_of_one_event_apply_it_once() {
    let setup = Setup::new().await;
    let business = setup.business("klinik-serentak").await;
    let trial_ends_at = at(&setup.subscription(&business).await["trial_ends_at"]);
    for round in 0..5 {
        let body = checkout(
            &format!("evt_race_{round}"),
            &format!("cs_race_{round}"),
            &business,
            4_900,
        );
        let signature = signed_now(&body);
        let (first, second) = tokio::join!(
            setup.stripe(&body, signature.clone()),
            setup.stripe(&body, signature.clone())
        );
        let mut answers = [first.1["outcome"].clone(), second.1["outcome"].clone()];
        answers.sort_by_key(Value::to_string);
        assert_eq!(
            answers,
            [json!("applied"), json!("duplicate")],
            "round {round}"
        );
        assert_eq!((first.0, second.0), (StatusCode::OK, StatusCode::OK));
        // Each round bought one month, counted once.
        let subscription = setup.subscription(&business).await;
        assert_eq!(
            at(&subscription["period_ends_at"]),
            trial_ends_at + TimeDelta::days(30 * (round + 1))
        );
    }
    assert_eq!(setup.payments(&business).await.len(), 5);
    let deliveries = setup.deliveries().await;
    let applied = deliveries.iter().filter(|(o, _)| o == "applied").count();
    let duplicates = deliveries.iter().filter(|(o, _)| o == "duplicate").count();
    assert_eq!((applied, duplicates, deliveries.len()), (5, 5, 10));
    setup.finish().await;
}

#[tokio::test]
async fn every_refused_delivery_is_recorded_and_touches_no_business() {
    let setup = Setup::new().await;
    let business = setup.business("klinik-tolak").await;
    let trial = setup.subscription(&business).await;
    let body = checkout("evt_genuine", "cs_genuine", &business, 4_900);
    let now = Utc::now().timestamp();
    let refused = |code: &str| json!(code);

    // A wrong secret, no header, a header of garbage: the signature is the credential.
    for signature in [
        Some(stripe_signature("whsec_someone_else", now, &body)),
        None,
        Some("t=nonsense,v1=zz".to_owned()),
    ] {
        let (status, answer) = setup.stripe(&body, signature).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["code"], refused("webhook_signature_invalid"));
    }
    // The body changed after signing.
    let signature = signed_now(&body);
    let tampered = checkout("evt_genuine", "cs_genuine", &business, 1);
    let (status, answer) = setup.stripe(&tampered, signature).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["code"], "webhook_signature_invalid");
    // Signed 301 s ago, or 301 s ahead.
    for offset in [-301, 301] {
        let signature = Some(stripe_signature(STRIPE_SECRET, now + offset, &body));
        let (status, answer) = setup.stripe(&body, signature).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{offset}: {answer}");
        assert_eq!(answer["code"], "webhook_stale");
    }
    assert_eq!(setup.subscription(&business).await, trial);
    assert!(setup.stored_payments(&business).await.is_empty());

    // None of those claimed the event: the genuine delivery still applies.
    let (status, answer) = setup.stripe(&body, signed_now(&body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "applied");
    let paid = setup.subscription(&business).await;

    // A business nobody has, and one that is not an id at all.
    for tenant in [Uuid::now_v7().to_string(), "klinik-tolak".to_owned()] {
        let body = stripe_event(
            &format!("evt_unknown_{tenant}"),
            "checkout.session.completed",
            "cs_unknown",
            &tenant,
            "STARTER:MONTHLY:SUBSCRIPTION",
            4_900,
            "myr",
        );
        let (status, answer) = setup.stripe(&body, signed_now(&body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["code"], "webhook_unknown_business");
    }
    // The wrong amount, and the right number in the wrong currency: FAILED, with the reason.
    let short = checkout("evt_short", "cs_short", &business, 4_800);
    let (status, answer) = setup.stripe(&short, signed_now(&short)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "webhook_amount_mismatch");
    let dollars = stripe_event(
        "evt_usd",
        "checkout.session.completed",
        "cs_usd",
        &business.tenant_id.to_string(),
        "STARTER:MONTHLY:SUBSCRIPTION",
        4_900,
        "usd",
    );
    let (status, answer) = setup.stripe(&dollars, signed_now(&dollars)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["code"], "webhook_amount_mismatch");
    // A plan that does not exist is not a purchase.
    let gold = stripe_event(
        "evt_gold",
        "checkout.session.completed",
        "cs_gold",
        &business.tenant_id.to_string(),
        "GOLD:MONTHLY:SUBSCRIPTION",
        4_900,
        "myr",
    );
    let (status, answer) = setup.stripe(&gold, signed_now(&gold)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["code"], "webhook_invalid");
    // Events Kaunter does not act on are taken and ignored (charge.refunded is acted on: see
    // the refund tests).
    let refund = stripe_event(
        "evt_refund",
        "customer.updated",
        "cus_1",
        &business.tenant_id.to_string(),
        "STARTER:MONTHLY:SUBSCRIPTION",
        4_900,
        "myr",
    );
    let (status, answer) = setup.stripe(&refund, signed_now(&refund)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, json!({"outcome": "ignored"}));
    // A mismatch replayed is a duplicate, not a second FAILED row.
    let (status, answer) = setup.stripe(&short, signed_now(&short)).await;
    assert_eq!(
        (status, answer["outcome"].clone()),
        (StatusCode::OK, json!("duplicate"))
    );

    assert_eq!(setup.subscription(&business).await, paid);
    let stored = setup.stored_payments(&business).await;
    assert_eq!(stored.len(), 3, "{stored:?}");
    assert_eq!(stored[0].0, "COMPLETED");
    assert_eq!((stored[1].0.as_str(), stored[1].1), ("FAILED", Some(4_800)));
    assert!(
        stored[1].2.as_deref().unwrap().contains("4800 sen"),
        "{stored:?}"
    );
    assert_eq!((stored[2].0.as_str(), stored[2].1), ("FAILED", None));
    assert!(
        stored[2].2.as_deref().unwrap().contains("USD"),
        "{stored:?}"
    );
    let listed = setup.payments(&business).await;
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["external_id"], "cs_usd", "newest first");

    let deliveries = setup.deliveries().await;
    assert_eq!(
        outcomes(&deliveries),
        [
            "bad_signature",
            "bad_signature",
            "bad_signature",
            "bad_signature",
            "stale",
            "stale",
            "applied",
            "unknown_business",
            "unknown_business",
            "amount_mismatch",
            "amount_mismatch",
            "invalid",
            "ignored",
            "duplicate",
        ]
    );
    // The refused deliveries name the event their body claimed, for the operator.
    assert_eq!(deliveries[0].1.as_deref(), Some("evt_genuine"));
    setup.finish().await;
}

/// A checkout event made at `created` (unix seconds), as Stripe dates its events.
fn checkout_created(id: &str, session: &str, business: &Business, created: i64) -> Vec<u8> {
    let mut event: Value = serde_json::from_slice(&checkout(id, session, business, 4_900)).unwrap();
    event["created"] = json!(created);
    event.to_string().into_bytes()
}

#[tokio::test]
async fn two_checkouts_delivered_in_reverse_order_both_apply() {
    let setup = Setup::new().await;
    let business = setup.business("klinik-lewat").await;
    let trial_ends_at = at(&setup.subscription(&business).await["trial_ends_at"]);
    let now = Utc::now().timestamp();
    // Paid an hour ago and a minute ago; Stripe delivers the later one first.
    let earlier = checkout_created("evt_early", "cs_early", &business, now - 3_600);
    let later = checkout_created("evt_late", "cs_late", &business, now - 60);
    let (status, answer) = setup.stripe(&later, signed_now(&later)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "applied");
    let (status, answer) = setup.stripe(&earlier, signed_now(&earlier)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "applied");
    assert_eq!(answer["state"], "ACTIVE");
    // Both months are counted.
    assert_eq!(
        at(&answer["period_ends_at"]),
        trial_ends_at + TimeDelta::days(60)
    );
    let stored = setup.stored_payments(&business).await;
    assert_eq!(
        stored,
        [
            ("COMPLETED".to_owned(), Some(4_900), None),
            ("COMPLETED".to_owned(), Some(4_900), None)
        ]
    );
    assert_eq!(outcomes(&setup.deliveries().await), ["applied", "applied"]);
    setup.finish().await;
}

#[tokio::test]
async fn a_refusal_of_kaunter_core_is_a_conflict_with_its_code() {
    let setup = Setup::new().await;
    let business = setup.business("klinik-kekal").await;
    let tenant = business.tenant_id.to_string();
    let licence = stripe_event(
        "evt_licence",
        "checkout.session.completed",
        "cs_licence",
        &tenant,
        "STARTER:ONE_TIME:PERPETUAL",
        4_900 * 30,
        "myr",
    );
    let (status, answer) = setup.stripe(&licence, signed_now(&licence)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"outcome": "applied", "state": "ACTIVE"}));
    let month = checkout("evt_month", "cs_month", &business, 4_900);
    let (status, answer) = setup.stripe(&month, signed_now(&month)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["code"], "already_perpetual");
    let stored = setup.stored_payments(&business).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].0, "FAILED");
    assert!(
        stored[1]
            .2
            .as_deref()
            .unwrap()
            .starts_with("already_perpetual")
    );
    assert_eq!(outcomes(&setup.deliveries().await), ["applied", "refused"]);
    // Nothing to cancel on a licence one owns.
    let (status, answer) = setup.cancel(&business, Some(&business.csrf)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(answer["code"], "cancel_perpetual");
    setup.finish().await;
}

#[tokio::test]
async fn without_a_secret_the_webhooks_say_they_are_not_configured() {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let http = reqwest::Client::new();
    for path in ["/v1/webhooks/stripe", "/v1/webhooks/fpx"] {
        let answer = http
            .post(server.url(path))
            .header("Stripe-Signature", "t=1,v1=00")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["code"], "webhook_not_configured");
    }
    let outcomes: Vec<String> = db
        .owner_client()
        .await
        .unwrap()
        .query(
            "SELECT outcome FROM webhook_deliveries ORDER BY delivery_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(outcomes, ["not_configured", "not_configured"]);
    drop(server);
    db.drop_db().await.unwrap();
}

/// An FPX gateway's callback fields for `bill`.
fn fpx_fields(bill: &str, paid: bool, business: &str, amount: &str) -> BTreeMap<String, String> {
    [
        ("id", bill),
        ("paid", if paid { "true" } else { "false" }),
        ("amount", amount),
        ("paid_at", &Utc::now().to_rfc3339()),
        ("reference_1", business),
        ("reference_2", "STARTER:MONTHLY:SUBSCRIPTION"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect()
}

/// `X-Signature`: HMAC-SHA256 of `key` + `value` pairs sorted by key, joined with `|`.
fn fpx_signature(secret: &str, fields: &BTreeMap<String, String>) -> String {
    let source = fields
        .iter()
        .map(|(key, value)| format!("{key}{value}"))
        .collect::<Vec<_>>()
        .join("|");
    hmac_hex(secret, source.as_bytes())
}

#[tokio::test]
async fn fpx_callbacks_pay_fail_refuse_bad_signatures_and_are_never_stale() {
    let setup = Setup::new().await;
    let business = setup.business("klinik-fpx").await;
    let tenant = business.tenant_id.to_string();
    let trial = setup.subscription(&business).await;

    // A failed attempt: recorded as FAILED, nothing else changes.
    let failed = fpx_fields("bill_1", false, &tenant, "49.00");
    let (status, answer) = setup
        .fpx(&failed, Some(fpx_signature(FPX_SECRET, &failed)))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"outcome": "payment_failed"}));
    assert_eq!(setup.subscription(&business).await, trial);
    assert_eq!(
        setup.stored_payments(&business).await[0].0,
        "FAILED".to_owned()
    );

    // A forged callback (wrong key) and an unsigned one.
    let paid = fpx_fields("bill_1", true, &tenant, "49.00");
    for signature in [Some(fpx_signature("not-the-key", &paid)), None] {
        let (status, answer) = setup.fpx(&paid, signature).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["code"], "webhook_signature_invalid");
    }
    // A field changed after signing.
    let mut cheaper = paid.clone();
    cheaper.insert("amount".to_owned(), "4.90".to_owned());
    let (status, answer) = setup
        .fpx(&cheaper, Some(fpx_signature(FPX_SECRET, &paid)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["code"], "webhook_signature_invalid");
    assert_eq!(setup.subscription(&business).await, trial);

    // The same bill, now paid: applied, and its FAILED row becomes COMPLETED.
    let (status, answer) = setup
        .fpx(&paid, Some(fpx_signature(FPX_SECRET, &paid)))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "applied");
    assert_eq!(answer["state"], "ACTIVE");
    assert_eq!(
        at(&answer["period_ends_at"]),
        at(&trial["trial_ends_at"]) + TimeDelta::days(30)
    );
    let (status, answer) = setup
        .fpx(&paid, Some(fpx_signature(FPX_SECRET, &paid)))
        .await;
    assert_eq!(
        (status, answer["outcome"].clone()),
        (StatusCode::OK, json!("duplicate"))
    );
    let stored = setup.stored_payments(&business).await;
    assert_eq!(stored, [("COMPLETED".to_owned(), Some(4_900), None)]);
    let listed = setup.payments(&business).await;
    assert_eq!(listed[0]["provider"], "fpx");
    assert_eq!(listed[0]["external_id"], "bill_1");

    // The gateway's retry after 10 minutes of downtime: the FPX shape signs no delivery time
    // and paid_at never changes, so it is not stale; paid before bill_1 was applied, it still
    // counts (as paid at bill_1's time). Its replay is a duplicate.
    let mut old = fpx_fields("bill_2", true, &tenant, "49.00");
    old.insert(
        "paid_at".to_owned(),
        (Utc::now() - TimeDelta::minutes(10)).to_rfc3339(),
    );
    let (status, answer) = setup.fpx(&old, Some(fpx_signature(FPX_SECRET, &old))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "applied");
    assert_eq!(
        at(&answer["period_ends_at"]),
        at(&trial["trial_ends_at"]) + TimeDelta::days(60)
    );
    let (status, answer) = setup.fpx(&old, Some(fpx_signature(FPX_SECRET, &old))).await;
    assert_eq!(
        (status, answer["outcome"].clone()),
        (StatusCode::OK, json!("duplicate"))
    );
    assert_eq!(setup.stored_payments(&business).await.len(), 2);
    // The wrong amount.
    let short = fpx_fields("bill_3", true, &tenant, "48.00");
    let (status, answer) = setup
        .fpx(&short, Some(fpx_signature(FPX_SECRET, &short)))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["code"], "webhook_amount_mismatch");

    assert_eq!(
        outcomes(&setup.deliveries().await),
        [
            "payment_failed",
            "bad_signature",
            "bad_signature",
            "bad_signature",
            "applied",
            "duplicate",
            "applied",
            "duplicate",
            "amount_mismatch",
        ]
    );
    setup.finish().await;
}

#[tokio::test]
async fn head_office_sees_its_own_payments_and_cancels_a_paid_subscription() {
    let setup = Setup::new().await;
    let aman = setup.business("klinik-aman").await;
    let bestari = setup.business("klinik-bestari").await;

    // A trial cannot be cancelled: it ends by itself.
    let (status, answer) = setup.cancel(&aman, Some(&aman.csrf)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["code"], "cancel_trial");

    let body = checkout("evt_aman", "cs_aman", &aman, 4_900);
    let (status, _) = setup.stripe(&body, signed_now(&body)).await;
    assert_eq!(status, StatusCode::OK);
    let listed = setup.payments(&aman).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["external_id"], "cs_aman");
    assert!(setup.payments(&bestari).await.is_empty());
    let text = setup
        .http
        .get(setup.server.url("/v1/payments"))
        .header(COOKIE, &bestari.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("cs_aman"));
    let nobody = setup
        .http
        .get(setup.server.url("/v1/payments"))
        .send()
        .await
        .unwrap();
    assert_eq!(nobody.status(), StatusCode::UNAUTHORIZED);

    // Cancelling needs the CSRF token, then runs the paid month to its end.
    let (status, answer) = setup.cancel(&aman, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(answer["code"], "csrf_failed");
    let (status, answer) = setup.cancel(&aman, Some(&aman.csrf)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["state"], "ACTIVE");
    assert_eq!(answer["access"], "FULL");
    assert_eq!(answer["cancel_at_period_end"], true);
    let subscription = setup.subscription(&aman).await;
    assert_eq!(subscription["cancel_at_period_end"], true);
    assert_eq!(subscription["period_ends_at"], answer["period_ends_at"]);
    // The other business's subscription is untouched.
    let other = setup.subscription(&bestari).await;
    assert_eq!(other["state"], "TRIAL");
    assert_eq!(other["cancel_at_period_end"], false);
    setup.finish().await;
}

/// A checkout for a month of STARTER whose charge is the payment intent `intent` (what Stripe's
/// refunds name).
fn checkout_with_intent(id: &str, session: &str, intent: &str, business: &Business) -> Vec<u8> {
    let mut event: Value = serde_json::from_slice(&checkout(id, session, business, 4_900)).unwrap();
    event["data"]["object"]["payment_intent"] = json!(intent);
    event.to_string().into_bytes()
}

/// Stripe's `charge.refunded` for the charge of payment intent `intent`, naming `tenant` in
/// the charge's metadata, with `refunded` sen refunded so far in all.
fn charge_refunded(id: &str, intent: &str, tenant: &str, refunded: i64, currency: &str) -> Vec<u8> {
    json!({"id": id, "type": "charge.refunded", "data": {"object": {
        "id": format!("ch_{intent}"), "object": "charge", "amount": 4_900,
        "amount_refunded": refunded, "refunded": refunded >= 4_900, "currency": currency,
        "payment_intent": intent, "metadata": {"tenant_id": tenant}}}})
    .to_string()
    .into_bytes()
}

impl Setup {
    /// Posts `body` to Stripe's webhook, signed now, and expects 200 with `outcome`.
    async fn stripe_ok(&self, body: &[u8], outcome: &str) -> Value {
        let (status, answer) = self.stripe(body, signed_now(body)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["outcome"], outcome, "{answer}");
        answer
    }

    /// The span each of the business's payments covers, by external id, oldest first.
    async fn covers(
        &self,
        business: &Business,
    ) -> Vec<(String, Option<DateTime<Utc>>, Option<DateTime<Utc>>)> {
        self.db
            .owner_client()
            .await
            .unwrap()
            .query(
                "SELECT external_id, covers_from, covers_until FROM payments
                 WHERE tenant_id = $1 AND kind IN ('CHARGE', 'CREDIT')
                 ORDER BY created_at, payment_id",
                &[&business.tenant_id],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect()
    }

    /// The business's refund notices waiting in its outbox: (key, body).
    async fn refund_notices(&self, business: &Business) -> Vec<(String, String)> {
        self.db
            .owner_client()
            .await
            .unwrap()
            .query(
                "SELECT notice_key, body FROM notice_outbox
                 WHERE tenant_id = $1 AND kind = 'REFUND' ORDER BY created_at, notice_id",
                &[&business.tenant_id],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    }

    /// Every delivery's outcome and detail for `event`, oldest first.
    async fn delivery_details(&self, event: &str) -> Vec<(String, String)> {
        self.db
            .owner_client()
            .await
            .unwrap()
            .query(
                "SELECT outcome, detail FROM webhook_deliveries WHERE event_id = $1
                 ORDER BY delivery_id",
                &[&event],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    }
}

#[tokio::test]
async fn a_stripe_refund_in_full_takes_back_the_month_once_and_queues_its_notice() {
    let setup = Setup::new().await;
    let business = setup.business("klinik-pulang").await;
    let tenant = business.tenant_id.to_string();
    let trial_ends_at = at(&setup.subscription(&business).await["trial_ends_at"]);
    let paid = checkout_with_intent("evt_pay", "cs_pay", "pi_pay", &business);
    setup.stripe_ok(&paid, "applied").await;
    // Paid in the trial: the month runs from the trial's end, and the charge keeps that span.
    assert_eq!(
        setup.covers(&business).await,
        [(
            "cs_pay".to_owned(),
            Some(trial_ends_at),
            Some(trial_ends_at + TimeDelta::days(30))
        )]
    );

    let refund = charge_refunded("evt_back", "pi_pay", &tenant, 4_900, "myr");
    let answer = setup.stripe_ok(&refund, "applied").await;
    // The month is taken back: access ends where the trial did (still paid, so ACTIVE).
    assert_eq!(answer["state"], "ACTIVE");
    assert_eq!(at(&answer["period_ends_at"]), trial_ends_at);
    let after = setup.subscription(&business).await;
    assert_eq!(at(&after["period_ends_at"]), trial_ends_at);

    // Replayed (twice), and the same total announced by another event: applied once.
    for _ in 0..2 {
        setup.stripe_ok(&refund, "duplicate").await;
    }
    let again = charge_refunded("evt_back_again", "pi_pay", &tenant, 4_900, "myr");
    setup.stripe_ok(&again, "duplicate").await;
    assert_eq!(setup.subscription(&business).await, after);

    let listed = setup.payments(&business).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let (refund_row, charge) = (&listed[0], &listed[1]);
    assert_eq!(charge["kind"], "CHARGE");
    assert_eq!(charge["status"], "REFUNDED");
    assert_eq!(refund_row["kind"], "REFUND");
    assert_eq!(refund_row["status"], "COMPLETED");
    assert_eq!(refund_row["amount_sen"], 4_900);
    assert_eq!(refund_row["provider"], "stripe");
    assert_eq!(refund_row["refund_of"], charge["payment_id"]);
    assert_eq!(refund_row["external_id"], "cs_pay:refund:4900");
    assert!(refund_row["reason"].is_null());
    assert!(refund_row["adjust_days"].is_null());
    assert!(charge["refund_of"].is_null());

    // One refund notice, keyed by the refund.
    let notices = setup.refund_notices(&business).await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    let refund_id = refund_row["payment_id"].as_str().unwrap();
    assert_eq!(notices[0].0, format!("REFUND:{refund_id}"));
    assert!(
        notices[0].1.contains("RM 49.00 of payment cs_pay"),
        "{}",
        notices[0].1
    );
    assert!(
        notices[0].1.contains("refunded in full"),
        "{}",
        notices[0].1
    );

    assert_eq!(
        outcomes(&setup.deliveries().await),
        ["applied", "applied", "duplicate", "duplicate", "duplicate"]
    );
    setup.finish().await;
}

#[tokio::test]
async fn a_partial_refund_keeps_access_until_the_rest_is_refunded() {
    let setup = Setup::new().await;
    let business = setup.business("klinik-separuh").await;
    let tenant = business.tenant_id.to_string();
    let trial_ends_at = at(&setup.subscription(&business).await["trial_ends_at"]);
    // Two months, the second after the first.
    setup
        .stripe_ok(
            &checkout_with_intent("evt_a", "cs_a", "pi_a", &business),
            "applied",
        )
        .await;
    setup
        .stripe_ok(
            &checkout_with_intent("evt_b", "cs_b", "pi_b", &business),
            "applied",
        )
        .await;
    let two_months = setup.subscription(&business).await;
    assert_eq!(
        at(&two_months["period_ends_at"]),
        trial_ends_at + TimeDelta::days(60)
    );

    // RM 10 of the first month back: a concession, nothing is taken back.
    let part = charge_refunded("evt_part", "pi_a", &tenant, 1_000, "myr");
    let answer = setup.stripe_ok(&part, "applied").await;
    assert_eq!(answer["period_ends_at"], two_months["period_ends_at"]);
    assert_eq!(setup.subscription(&business).await, two_months);
    let listed = setup.payments(&business).await;
    assert_eq!(
        (listed[0]["kind"].as_str(), listed[0]["amount_sen"].as_i64()),
        (Some("REFUND"), Some(1_000))
    );
    assert_eq!(listed[2]["status"], "COMPLETED", "{listed:?}");
    let notices = setup.refund_notices(&business).await;
    assert_eq!(notices.len(), 1);
    assert!(notices[0].1.contains("RM 10.00"), "{}", notices[0].1);
    assert!(notices[0].1.contains("unchanged"), "{}", notices[0].1);

    // The rest: the first month is taken back, the second moves up to follow the trial.
    let rest = charge_refunded("evt_rest", "pi_a", &tenant, 4_900, "myr");
    let answer = setup.stripe_ok(&rest, "applied").await;
    assert_eq!(
        at(&answer["period_ends_at"]),
        trial_ends_at + TimeDelta::days(30)
    );
    let listed = setup.payments(&business).await;
    assert_eq!(listed[0]["amount_sen"], 3_900, "{listed:?}");
    assert_eq!(listed[0]["external_id"], "cs_a:refund:4900");
    assert_eq!(
        setup.covers(&business).await,
        [
            (
                "cs_a".to_owned(),
                Some(trial_ends_at),
                Some(trial_ends_at + TimeDelta::days(30))
            ),
            (
                "cs_b".to_owned(),
                Some(trial_ends_at),
                Some(trial_ends_at + TimeDelta::days(30))
            ),
        ]
    );
    // The older total, delivered late: nothing new.
    let late = charge_refunded("evt_late_part", "pi_a", &tenant, 1_000, "myr");
    setup.stripe_ok(&late, "duplicate").await;

    // The second month refunded too: back to the trial's end.
    let second = charge_refunded("evt_second", "pi_b", &tenant, 4_900, "myr");
    let answer = setup.stripe_ok(&second, "applied").await;
    assert_eq!(at(&answer["period_ends_at"]), trial_ends_at);
    let statuses: Vec<(String, String)> = setup
        .payments(&business)
        .await
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap().to_owned(),
                p["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("REFUND".to_owned(), "COMPLETED".to_owned()),
            ("REFUND".to_owned(), "COMPLETED".to_owned()),
            ("REFUND".to_owned(), "COMPLETED".to_owned()),
            ("CHARGE".to_owned(), "REFUNDED".to_owned()),
            ("CHARGE".to_owned(), "REFUNDED".to_owned()),
        ]
    );
    assert_eq!(setup.refund_notices(&business).await.len(), 3);
    setup.finish().await;
}

#[tokio::test]
async fn a_month_refunded_after_the_trial_ends_at_the_refund_and_the_business_is_read_only() {
    let setup = Setup::new().await;
    let business = setup.business("klinik-tamat").await;
    let tenant = business.tenant_id.to_string();
    // The trial ended an hour ago: GRACE. A month paid now runs from now.
    setup
        .db
        .owner_client()
        .await
        .unwrap()
        .execute(
            "UPDATE subscriptions SET trial_ends_at = now() - interval '1 hour',
                 period_ends_at = now() - interval '1 hour' WHERE tenant_id = $1",
            &[&business.tenant_id],
        )
        .await
        .unwrap();
    assert_eq!(setup.subscription(&business).await["state"], "GRACE");
    let answer = setup
        .stripe_ok(
            &checkout_with_intent("evt_m", "cs_m", "pi_m", &business),
            "applied",
        )
        .await;
    assert_eq!(answer["state"], "ACTIVE");
    let covers = setup.covers(&business).await;
    let (from, until) = (covers[0].1.unwrap(), covers[0].2.unwrap());
    assert_eq!(until - from, TimeDelta::days(30));
    assert_eq!(at(&answer["period_ends_at"]), until);

    // Refunded in full: the days still to come are taken back, never before now.
    let before = Utc::now();
    let answer = setup
        .stripe_ok(
            &charge_refunded("evt_r", "pi_m", &tenant, 4_900, "myr"),
            "applied",
        )
        .await;
    let after = Utc::now();
    assert_eq!(answer["state"], "GRACE", "{answer}");
    let ends = at(&answer["period_ends_at"]);
    assert!(
        before <= ends && ends <= after,
        "{ends} not in {before}..{after}"
    );
    let subscription = setup.subscription(&business).await;
    assert_eq!(subscription["state"], "GRACE");
    assert_eq!(subscription["access"], "READ_ONLY");
    setup.finish().await;
}

#[tokio::test]
async fn refunds_naming_no_payment_of_the_business_or_more_than_was_paid_are_refused_and_recorded()
{
    let setup = Setup::new().await;
    let aman = setup.business("klinik-a").await;
    let bestari = setup.business("klinik-b").await;
    let (a, b) = (aman.tenant_id.to_string(), bestari.tenant_id.to_string());
    setup
        .stripe_ok(
            &checkout_with_intent("evt_a", "cs_a", "pi_a", &aman),
            "applied",
        )
        .await;
    let paid = setup.subscription(&aman).await;
    let other = setup.subscription(&bestari).await;

    // A payment intent nobody paid with.
    let unknown = charge_refunded("evt_unknown", "pi_nobody", &a, 4_900, "myr");
    let (status, answer) = setup.stripe(&unknown, signed_now(&unknown)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "webhook_invalid");
    // Tenancy: business B's refund naming A's payment finds nothing of A's.
    let across = charge_refunded("evt_across", "pi_a", &b, 4_900, "myr");
    let (status, answer) = setup.stripe(&across, signed_now(&across)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "webhook_invalid");
    assert!(!answer.to_string().contains("cs_a"), "{answer}");
    // More than was paid: FAILED, with the reason, and A keeps its month.
    let over = charge_refunded("evt_over", "pi_a", &a, 5_000, "myr");
    let (status, answer) = setup.stripe(&over, signed_now(&over)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "webhook_amount_mismatch");
    // Each replayed: a duplicate, nothing more written.
    for body in [&unknown, &across, &over] {
        setup.stripe_ok(body, "duplicate").await;
    }
    // Not in ringgit, and a charge of no Kaunter checkout (no payment intent).
    let dollars = charge_refunded("evt_usd", "pi_a", &a, 4_900, "usd");
    let (status, answer) = setup.stripe(&dollars, signed_now(&dollars)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "webhook_amount_mismatch");
    let mut loose: Value =
        serde_json::from_slice(&charge_refunded("evt_loose", "pi_a", &a, 1, "myr")).unwrap();
    loose["data"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("payment_intent");
    let loose = loose.to_string().into_bytes();
    let (status, answer) = setup.stripe(&loose, signed_now(&loose)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "webhook_invalid");

    assert_eq!(setup.subscription(&aman).await, paid);
    assert_eq!(setup.subscription(&bestari).await, other);
    assert!(setup.payments(&bestari).await.is_empty());
    let listed = setup.payments(&aman).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    let charge = &listed[2];
    assert_eq!(
        (&charge["kind"], &charge["status"]),
        (&json!("CHARGE"), &json!("COMPLETED"))
    );
    for failed in &listed[..2] {
        assert_eq!(failed["kind"], "REFUND");
        assert_eq!(failed["status"], "FAILED");
        assert_eq!(failed["refund_of"], charge["payment_id"]);
    }
    assert_eq!(listed[1]["amount_sen"], 5_000);
    let reason = listed[1]["failure_reason"].as_str().unwrap();
    assert!(reason.contains("exceed the 4900 sen paid"), "{reason}");
    assert!(
        listed[0]["failure_reason"]
            .as_str()
            .unwrap()
            .contains("USD")
    );
    assert!(setup.refund_notices(&aman).await.is_empty());

    // Each refusal is recorded with its own outcome.
    let unknown = setup.delivery_details("evt_unknown").await;
    assert_eq!(unknown[0].0, "unknown_payment");
    assert!(unknown[0].1.contains("pi_nobody"), "{unknown:?}");
    assert_eq!(
        setup.delivery_details("evt_across").await[0].0,
        "unknown_payment"
    );
    assert_eq!(
        setup.delivery_details("evt_over").await[0].0,
        "refund_exceeds_payment"
    );
    assert_eq!(
        outcomes(&setup.deliveries().await),
        [
            "applied",
            "unknown_payment",
            "unknown_payment",
            "refund_exceeds_payment",
            "duplicate",
            "duplicate",
            "duplicate",
            "amount_mismatch",
            "invalid",
        ]
    );
    setup.finish().await;
}

#[tokio::test]
async fn an_operator_refunds_and_adjusts_through_the_same_rules() {
    use kaunter_core::subscription::{BillingCycle, Plan, PricingModel};
    use kaunter_sync_server::admin::{self, RefundOf};
    use kaunter_sync_server::ids::TenantId;
    use kaunter_sync_server::payments::Purchase;

    let setup = Setup::new().await;
    let aman = setup.business("klinik-operator").await;
    let bestari = setup.business("klinik-jiran").await;
    let pool = setup.server.pool();
    let (a, b) = (
        TenantId::from_uuid(aman.tenant_id),
        TenantId::from_uuid(bestari.tenant_id),
    );
    let trial_ends_at = at(&setup.subscription(&aman).await["trial_ends_at"]);
    let month = Purchase {
        plan: Plan::Starter,
        cycle: BillingCycle::Monthly,
        pricing: PricingModel::Subscription,
    };
    let credit = admin::record_payment(pool, a, month, None, Some("bank-1"))
        .await
        .unwrap();
    let refused = |result: Result<admin::RefundedPayment, kaunter_sync_server::error::Error>| {
        result.unwrap_err().to_string()
    };

    // RM 10 back, with a reason: nothing is taken back.
    let part = admin::refund_payment(
        pool,
        a,
        RefundOf::Reference("bank-1"),
        Some(1_000),
        Some("late start"),
    )
    .await
    .unwrap();
    assert_eq!(
        (part.amount_sen, part.refunded_in_full, part.refund_of),
        (1_000, false, credit.payment_id)
    );
    assert_eq!(part.period_ends_at, credit.period_ends_at);
    // More than is left, a reference nobody recorded, and another business's payment (by its
    // reference and by its id): refused with their codes, nothing written.
    let over =
        admin::refund_payment(pool, a, RefundOf::Reference("bank-1"), Some(4_000), None).await;
    assert!(refused(over).starts_with("refund_exceeds_payment"));
    let unknown = admin::refund_payment(pool, a, RefundOf::Reference("bank-9"), None, None).await;
    assert!(refused(unknown).starts_with("unknown_payment"));
    for of in [
        RefundOf::Reference("bank-1"),
        RefundOf::Payment(credit.payment_id),
    ] {
        let across = admin::refund_payment(pool, b, of, None, None).await;
        let message = refused(across);
        assert!(message.starts_with("unknown_payment"), "{message}");
    }
    assert!(setup.payments(&bestari).await.is_empty());
    // Zero, a negative amount, a blank reason.
    for (amount, reason) in [(Some(0), None), (Some(-5), None), (None, Some("  "))] {
        let bad =
            admin::refund_payment(pool, a, RefundOf::Reference("bank-1"), amount, reason).await;
        assert!(bad.is_err());
    }
    assert_eq!(setup.payments(&aman).await.len(), 2);

    // The rest: refunded in full, the month taken back to the trial's end.
    let rest = admin::refund_payment(pool, a, RefundOf::Reference("bank-1"), None, None)
        .await
        .unwrap();
    assert_eq!((rest.amount_sen, rest.refunded_in_full), (3_900, true));
    assert_eq!(rest.period_ends_at, Some(trial_ends_at));
    let again = admin::refund_payment(pool, a, RefundOf::Reference("bank-1"), None, None).await;
    assert!(refused(again).starts_with("already_refunded"));

    // Adjustments: five days given, three taken, each recorded with its reason.
    let plus = admin::adjust_subscription(pool, a, 5, "outage on 3 April", None, Some("adj-1"))
        .await
        .unwrap();
    assert_eq!(plus.previous_period_ends_at, Some(trial_ends_at));
    assert_eq!(
        plus.period_ends_at,
        Some(trial_ends_at + TimeDelta::days(5))
    );
    let minus = admin::adjust_subscription(pool, a, -3, "goodwill overstated", None, None)
        .await
        .unwrap();
    assert_eq!(
        minus.period_ends_at,
        Some(trial_ends_at + TimeDelta::days(2))
    );
    assert_eq!(
        at(&setup.subscription(&aman).await["period_ends_at"]),
        trial_ends_at + TimeDelta::days(2)
    );
    // No reason, zero days, too many taken, the same reference again: refused, nothing moves.
    let refusals = [
        (5, "", Some("adj-2"), "reason"),
        (5, "   ", None, "reason"),
        (0, "nothing", None, "adjust_no_days"),
        (-30, "too much", None, "adjust_not_enough_left"),
        (1, "again", Some("adj-1"), "already recorded"),
    ];
    for (days, reason, reference, says) in refusals {
        let error = admin::adjust_subscription(pool, a, days, reason, None, reference)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(says), "{days} {reason:?}: {error}");
    }
    // Another business's adjustment moves only its own period.
    let other_before = setup.subscription(&bestari).await;
    admin::adjust_subscription(pool, b, 1, "support call", None, None)
        .await
        .unwrap();
    let other_after = setup.subscription(&bestari).await;
    assert_eq!(
        at(&other_after["period_ends_at"]),
        at(&other_before["period_ends_at"]) + TimeDelta::days(1)
    );
    assert_eq!(
        at(&setup.subscription(&aman).await["period_ends_at"]),
        trial_ends_at + TimeDelta::days(2)
    );

    // Head office's list shows each with what it is.
    let listed = setup.payments(&aman).await;
    let line = |p: &Value| {
        (
            p["kind"].as_str().unwrap().to_owned(),
            p["status"].as_str().unwrap().to_owned(),
            p["amount_sen"].as_i64(),
            p["refund_of"].as_str().map(str::to_owned),
            p["reason"].as_str().map(str::to_owned),
            p["adjust_days"].as_i64(),
        )
    };
    let lines: Vec<_> = listed.iter().map(line).collect();
    let credit_id = Some(credit.payment_id.to_string());
    let s = |text: &str| Some(text.to_owned());
    assert_eq!(
        lines,
        [
            (
                "ADJUSTMENT".to_owned(),
                "COMPLETED".to_owned(),
                Some(0),
                None,
                s("goodwill overstated"),
                Some(-3)
            ),
            (
                "ADJUSTMENT".to_owned(),
                "COMPLETED".to_owned(),
                Some(0),
                None,
                s("outage on 3 April"),
                Some(5)
            ),
            (
                "REFUND".to_owned(),
                "COMPLETED".to_owned(),
                Some(3_900),
                credit_id.clone(),
                None,
                None
            ),
            (
                "REFUND".to_owned(),
                "COMPLETED".to_owned(),
                Some(1_000),
                credit_id,
                s("late start"),
                None
            ),
            (
                "CREDIT".to_owned(),
                "REFUNDED".to_owned(),
                Some(4_900),
                None,
                None,
                None
            ),
        ]
    );
    assert_eq!(listed[1]["external_id"], "adj-1");
    assert_eq!(setup.refund_notices(&aman).await.len(), 2);
    setup.finish().await;
}

#[tokio::test]
async fn an_fpx_bill_refunded_at_the_gateway_is_recorded_by_its_payment_id() {
    use kaunter_sync_server::admin::{self, RefundOf};
    use kaunter_sync_server::ids::TenantId;

    let setup = Setup::new().await;
    let business = setup.business("klinik-fpx-balik").await;
    let tenant = business.tenant_id.to_string();
    let trial_ends_at = at(&setup.subscription(&business).await["trial_ends_at"]);
    let paid = fpx_fields("bill_r", true, &tenant, "49.00");
    let (status, answer) = setup
        .fpx(&paid, Some(fpx_signature(FPX_SECRET, &paid)))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let bill = setup.payments(&business).await[0]["payment_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // The bill is not an operator's payment: its reference does not name it.
    let by_reference = admin::refund_payment(
        setup.server.pool(),
        TenantId::from_uuid(business.tenant_id),
        RefundOf::Reference("bill_r"),
        None,
        None,
    )
    .await;
    assert!(
        by_reference
            .unwrap_err()
            .to_string()
            .starts_with("unknown_payment")
    );
    let refunded = admin::refund_payment(
        setup.server.pool(),
        TenantId::from_uuid(business.tenant_id),
        RefundOf::Payment(bill),
        None,
        Some("refunded at the gateway"),
    )
    .await
    .unwrap();
    assert!(refunded.refunded_in_full);
    assert_eq!(refunded.period_ends_at, Some(trial_ends_at));
    let listed = setup.payments(&business).await;
    assert_eq!(listed[0]["provider"], "operator");
    assert_eq!(listed[0]["external_id"], "fpx:bill_r:refund:4900");
    assert_eq!(listed[1]["status"], "REFUNDED");
    setup.finish().await;
}

#[tokio::test]
async fn concurrent_deliveries_of_one_refund_apply_it_once() {
    let setup = Setup::new().await;
    let business = setup.business("klinik-serentak-balik").await;
    let tenant = business.tenant_id.to_string();
    let trial_ends_at = at(&setup.subscription(&business).await["trial_ends_at"]);
    setup
        .stripe_ok(
            &checkout_with_intent("evt_p", "cs_p", "pi_p", &business),
            "applied",
        )
        .await;
    // One event delivered twice at once, then two events of one total at once.
    let first = charge_refunded("evt_r1", "pi_p", &tenant, 2_000, "myr");
    let (one, two) = tokio::join!(
        setup.stripe(&first, signed_now(&first)),
        setup.stripe(&first, signed_now(&first))
    );
    let second = charge_refunded("evt_r2", "pi_p", &tenant, 4_900, "myr");
    let second_again = charge_refunded("evt_r2b", "pi_p", &tenant, 4_900, "myr");
    let (three, four) = tokio::join!(
        setup.stripe(&second, signed_now(&second)),
        setup.stripe(&second_again, signed_now(&second_again))
    );
    for pair in [[one, two], [three, four]] {
        let mut answers: Vec<_> = pair
            .iter()
            .map(|(status, answer)| (*status, answer["outcome"].as_str().unwrap().to_owned()))
            .collect();
        answers.sort();
        assert_eq!(
            answers,
            [
                (StatusCode::OK, "applied".to_owned()),
                (StatusCode::OK, "duplicate".to_owned())
            ]
        );
    }
    let amounts: Vec<_> = setup
        .payments(&business)
        .await
        .iter()
        .map(|p| p["amount_sen"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [2_900, 2_000, 4_900]);
    assert_eq!(
        at(&setup.subscription(&business).await["period_ends_at"]),
        trial_ends_at
    );
    setup.finish().await;
}

#[tokio::test]
async fn the_log_keeps_what_claimed_an_event_and_prunes_old_forged_calls() {
    let setup = Setup::new().await;
    let business = setup.business("klinik-log").await;
    let owner = setup.db.owner_client().await.unwrap();
    // Older than the retention: a forged call, a stale one, a duplicate and an applied event;
    // just inside it: another forged call.
    let kept = payments::UNCLAIMED_KEPT_DAYS;
    for (event, outcome, age_days) in [
        ("evt_old_forged", "bad_signature", kept + 1),
        ("evt_old_stale", "stale", kept + 30),
        ("evt_old_duplicate", "duplicate", kept + 2),
        ("evt_old_applied", "applied", kept + 400),
        ("evt_recent_forged", "bad_signature", kept - 1),
    ] {
        owner
            .execute(
                "INSERT INTO webhook_deliveries (delivery_id, provider, event_id, outcome,
                     received_at)
                 VALUES ($1, 'stripe', $2, $3, now() - make_interval(days => $4))",
                &[&Uuid::now_v7(), &event, &outcome, &age_days],
            )
            .await
            .unwrap();
    }
    // A new forged call prunes the old deliveries that claimed nothing.
    let body = checkout("evt_new_forged", "cs_forged", &business, 4_900);
    let forged = Some(stripe_signature(
        "whsec_someone_else",
        Utc::now().timestamp(),
        &body,
    ));
    let (status, _) = setup.stripe(&body, forged).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let left: Vec<Option<String>> = setup
        .deliveries()
        .await
        .into_iter()
        .map(|(_, event)| event)
        .collect();
    let mut left: Vec<&str> = left.iter().flatten().map(String::as_str).collect();
    left.sort_unstable();
    assert_eq!(
        left,
        ["evt_new_forged", "evt_old_applied", "evt_recent_forged"]
    );
    // The applied event it kept still answers a replay as a duplicate.
    let replay = stripe_event(
        "evt_old_applied",
        "checkout.session.completed",
        "cs_old",
        &business.tenant_id.to_string(),
        "STARTER:MONTHLY:SUBSCRIPTION",
        4_900,
        "myr",
    );
    let (status, answer) = setup.stripe(&replay, signed_now(&replay)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "duplicate");
    assert!(setup.stored_payments(&business).await.is_empty());
    setup.finish().await;
}

#[tokio::test]
async fn paid_money_has_an_invoice_and_a_refund_its_refund_note_for_this_business_only() {
    use kaunter_core::subscription::{BillingCycle, Plan, PricingModel};
    use kaunter_sync_server::admin::{self, RefundOf};
    use kaunter_sync_server::ids::TenantId;
    use kaunter_sync_server::payments::Purchase;

    let setup = Setup::new().await;
    let aman = setup.business("klinik-invois").await;
    let bestari = setup.business("klinik-lain-invois").await;
    let pool = setup.server.pool();
    let a = TenantId::from_uuid(aman.tenant_id);
    let month = Purchase {
        plan: Plan::Growth,
        cycle: BillingCycle::Monthly,
        pricing: PricingModel::Subscription,
    };
    let paid = admin::record_payment(pool, a, month, None, Some("bank-inv-1"))
        .await
        .unwrap();
    let invoice_of = |business: &Business, payment: String| {
        let (http, url, cookie) = (
            setup.http.clone(),
            setup
                .server
                .url(&format!("/v1/payments/invoice?payment_id={payment}")),
            business.cookie.clone(),
        );
        async move {
            let answer = http.get(url).header(COOKIE, cookie).send().await.unwrap();
            let status = answer.status();
            (status, answer.json::<Value>().await.unwrap())
        }
    };

    // The list names the invoice; the invoice says who paid what for which period.
    let listed = setup.payments(&aman).await;
    let number = listed[0]["invoice_number"].as_str().unwrap().to_owned();
    assert!(number.starts_with("INV-") && number.len() == 10, "{number}");
    let (status, invoice) = invoice_of(&aman, paid.payment_id.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{invoice}");
    assert_eq!(invoice["number"], number.as_str());
    assert_eq!(invoice["document"], "INVOICE");
    assert_eq!(invoice["seller"], "Kaunter");
    assert_eq!(invoice["buyer"]["name"], "Klinik klinik-invois");
    assert_eq!(
        invoice["buyer"]["address"],
        json!([
            "12, Jalan Tun Razak",
            "50400 Kuala Lumpur",
            "W.P. Kuala Lumpur"
        ])
    );
    assert_eq!(invoice["buyer"]["email"], "pejabat@klinik-invois.my");
    assert_eq!(invoice["description"], "Kaunter Growth plan, monthly");
    assert_eq!(invoice["amount_sen"], paid.amount_sen);
    assert_eq!(invoice["currency"], "MYR");
    assert_eq!(invoice["reference"], "bank-inv-1");
    assert_eq!(
        at(&invoice["period_until"]),
        paid.period_ends_at.unwrap(),
        "the span the payment bought"
    );

    // Money back in full: a refund note naming the invoice, which keeps its number.
    let refund = admin::refund_payment(
        pool,
        a,
        RefundOf::Reference("bank-inv-1"),
        None,
        Some("charged twice"),
    )
    .await
    .unwrap();
    let listed = setup.payments(&aman).await;
    let note_number = listed
        .iter()
        .find(|payment| payment["kind"] == "REFUND")
        .and_then(|payment| payment["invoice_number"].as_str())
        .unwrap()
        .to_owned();
    assert!(note_number.starts_with("RN-"), "{note_number}");
    assert_ne!(note_number[3..], number[4..], "one sequence for both");
    let (status, note) = invoice_of(&aman, refund.payment_id.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{note}");
    assert_eq!(note["document"], "REFUND_NOTE");
    assert_eq!(note["refunds_invoice"], number.as_str());
    assert_eq!(note["description"], format!("Refund of invoice {number}"));
    assert_eq!(note["reason"], "charged twice");
    assert_eq!(note["amount_sen"], paid.amount_sen);
    let (_, again) = invoice_of(&aman, paid.payment_id.to_string()).await;
    assert_eq!(again["number"], number.as_str());
    assert_eq!(again["status"], "REFUNDED");

    // An adjustment moved no money: no invoice.
    let adjusted = admin::adjust_subscription(pool, a, 3, "outage", None, Some("adj-inv"))
        .await
        .unwrap();
    let listed = setup.payments(&aman).await;
    let adjustment = listed
        .iter()
        .find(|payment| payment["kind"] == "ADJUSTMENT")
        .unwrap();
    assert!(adjustment["invoice_number"].is_null(), "{adjustment}");
    let (status, _) = invoice_of(&aman, adjusted.payment_id.to_string()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Another business asking for this one's invoice, an id nobody has, and no id at all.
    let (status, answer) = invoice_of(&bestari, paid.payment_id.to_string()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert!(!answer.to_string().contains("klinik-invois"), "{answer}");
    let (status, _) = invoice_of(&aman, Uuid::now_v7().to_string()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, answer) = invoice_of(&aman, "not-an-id".to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    setup.finish().await;
}

#[tokio::test]
async fn a_refund_never_takes_days_a_later_payment_bought() {
    use kaunter_core::subscription::{BillingCycle, Plan, PricingModel};
    use kaunter_sync_server::admin::{self, RefundOf};
    use kaunter_sync_server::ids::TenantId;
    use kaunter_sync_server::payments::Purchase;

    let setup = Setup::new().await;
    let business = setup.business("klinik-hari").await;
    let pool = setup.server.pool();
    let tenant = TenantId::from_uuid(business.tenant_id);
    let trial_ends_at = at(&setup.subscription(&business).await["trial_ends_at"]);
    let month = Purchase {
        plan: Plan::Starter,
        cycle: BillingCycle::Monthly,
        pricing: PricingModel::Subscription,
    };
    // A month paid in the trial (its days start at the trial's end), ten of them taken away by
    // an operator, then a second month, whose days start where the first's now end.
    let first = admin::record_payment(pool, tenant, month, None, Some("month-1"))
        .await
        .unwrap();
    assert_eq!(
        first.period_ends_at,
        Some(trial_ends_at + TimeDelta::days(30))
    );
    admin::adjust_subscription(pool, tenant, -10, "overlap with a promotion", None, None)
        .await
        .unwrap();
    let second = admin::record_payment(pool, tenant, month, None, Some("month-2"))
        .await
        .unwrap();
    assert_eq!(
        second.period_ends_at,
        Some(trial_ends_at + TimeDelta::days(50))
    );

    // The first month refunded in full: only its own 20 days go; the second month's 30 stay.
    let refunded = admin::refund_payment(pool, tenant, RefundOf::Reference("month-1"), None, None)
        .await
        .unwrap();
    assert!(refunded.refunded_in_full);
    assert_eq!(
        refunded.period_ends_at,
        Some(trial_ends_at + TimeDelta::days(30)),
        "the second month's days are kept"
    );
    // And the second month, refunded in turn, takes back exactly its 30 days.
    let again = admin::refund_payment(pool, tenant, RefundOf::Reference("month-2"), None, None)
        .await
        .unwrap();
    assert_eq!(again.period_ends_at, Some(trial_ends_at));
    setup.finish().await;
}
