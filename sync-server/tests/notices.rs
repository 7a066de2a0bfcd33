//! E-mail notices over real HTTP, real PostgreSQL and a real SMTP conversation (a capture relay
//! started by the test): a desk's licence fetch looks at its business's notices; the trial's
//! day-5 warning goes out once however often desks ask, expiry sends its own notice, a payment
//! sends a receipt and its refund a refund notice, and a relay that refuses leaves the notice waiting with its reason and
//! tries again later. Another business's desks never send this business's notices. The
//! server's own sweep reaches businesses whose desks never sync, each with its own notice in its
//! own language (Bahasa Melayu or English), once. And the
//! staff roster, like the licence, reaches the desks of a suspended business.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kaunter_core::subscription::{BillingCycle, Plan, PricingModel};
use kaunter_protocol::http::{EnrolResponse, SignUpResponse};
use kaunter_sync_server::AppState;
use kaunter_sync_server::admin;
use kaunter_sync_server::ids::{BranchId, TenantId};
use kaunter_sync_server::mail::Mailer;
use kaunter_sync_server::payments::Purchase;
use kaunter_sync_server::test_support::{SmtpCapture, TestDatabase, TestServer, sign_up_form};
use reqwest::StatusCode;
use serde_json::json;

async fn sign_up_with_desk(
    http: &reqwest::Client,
    server: &TestServer,
    slug: &str,
) -> (SignUpResponse, EnrolResponse) {
    let created: SignUpResponse = http
        .post(server.url("/v1/signup"))
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
    let code = admin::create_enrolment_code(
        server.pool(),
        TenantId::from_uuid(created.tenant_id),
        BranchId::from_uuid(created.branch_id),
        admin::DEFAULT_ENROLMENT_CODE_TTL,
    )
    .await
    .unwrap();
    let desk: EnrolResponse = http
        .post(server.url("/v1/enrol"))
        .json(&json!({"code": code, "device_name": "Kaunter 1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (created, desk)
}

async fn fetch_licence(http: &reqwest::Client, server: &TestServer, desk: &EnrolResponse) {
    let answer = http
        .get(server.url("/v1/licence"))
        .bearer_auth(&desk.device_token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}

#[tokio::test]
async fn notices_and_receipts_go_out_once_each_and_a_refusing_relay_keeps_them_waiting() {
    let db = TestDatabase::create().await.unwrap();
    let relay = SmtpCapture::start().await.unwrap();
    let state = AppState::new(db.app_pool().unwrap()).with_mailer(Some(Mailer {
        relay: relay.addr.to_string(),
        from: "billing@kaunter.test".to_owned(),
    }));
    let server = TestServer::start(state).await.unwrap();
    let http = reqwest::Client::new();
    let (clinic, desk) = sign_up_with_desk(&http, &server, "klinik-notis").await;
    let (_, other_desk) = sign_up_with_desk(&http, &server, "klinik-lain").await;
    let owner = db.owner_client().await.unwrap();
    let tenant = clinic.tenant_id;
    let set = |sql: &'static str| {
        let owner = &owner;
        async move { owner.execute(sql, &[&tenant]).await.unwrap() }
    };

    // Day 5 of the trial (2.5 days left): the first licence fetch sends the warning, to the
    // business's own address.
    set(
        "UPDATE subscriptions SET trial_ends_at = now() + interval '60 hours',
             period_ends_at = now() + interval '60 hours', notices_checked_at = NULL
         WHERE tenant_id = $1",
    )
    .await;
    fetch_licence(&http, &server, &desk).await;
    let mail = relay.wait_for(1).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].to, "pejabat@klinik-notis.my");
    assert_eq!(mail[0].subject(), "Your Kaunter trial ends in 3 days");
    assert!(
        mail[0].body().contains("Klinik klinik-notis"),
        "{}",
        mail[0].body()
    );

    // Asked again (within the hour, and after it): the same notice is not sent twice, and the
    // other business's desk sends nothing of this one's.
    fetch_licence(&http, &server, &desk).await;
    set("UPDATE subscriptions SET notices_checked_at = NULL WHERE tenant_id = $1").await;
    fetch_licence(&http, &server, &desk).await;
    fetch_licence(&http, &server, &other_desk).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(relay.messages().len(), 1);

    // The trial ended: its own notice.
    set(
        "UPDATE subscriptions SET trial_ends_at = now() - interval '1 hour',
             period_ends_at = now() - interval '1 hour', notices_checked_at = NULL
         WHERE tenant_id = $1",
    )
    .await;
    fetch_licence(&http, &server, &desk).await;
    let mail = relay.wait_for(2).await;
    assert_eq!(mail.len(), 2);
    assert!(
        mail[1].subject().contains("read-only for 7 days"),
        "{}",
        mail[1].subject()
    );

    // A relay that refuses: the receipt of a payment waits with the reason, and goes out once
    // the relay takes it again.
    relay.refuse(true);
    let paid = admin::record_payment(
        server.pool(),
        TenantId::from_uuid(tenant),
        Purchase {
            plan: Plan::Starter,
            cycle: BillingCycle::Monthly,
            pricing: PricingModel::Subscription,
        },
        None,
        Some("bank-transfer-1"),
    )
    .await
    .unwrap();
    let _ = paid;
    fetch_licence(&http, &server, &desk).await;
    let mut waited = None;
    for _ in 0..100 {
        let row = owner
            .query_one(
                "SELECT attempts, last_error, sent_at IS NULL FROM notice_outbox
                 WHERE tenant_id = $1 AND kind = 'RECEIPT'",
                &[&tenant],
            )
            .await
            .unwrap();
        let attempts: i32 = row.get(0);
        if attempts > 0 {
            waited = Some((row.get::<_, Option<String>>(1), row.get::<_, bool>(2)));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (error, unsent) = waited.expect("the receipt was tried");
    assert!(unsent);
    assert!(error.unwrap().contains("550"));
    relay.refuse(false);
    owner
        .execute(
            "UPDATE notice_outbox SET next_attempt_at = now() WHERE tenant_id = $1",
            &[&tenant],
        )
        .await
        .unwrap();
    fetch_licence(&http, &server, &desk).await;
    let mail = relay.wait_for(3).await;
    assert_eq!(mail.len(), 3);
    assert_eq!(mail[2].subject(), "Your Kaunter receipt");
    assert!(mail[2].body().contains("RM 49.00"), "{}", mail[2].body());

    // The transfer refunded in full: its own notice, saying the month was taken back.
    admin::refund_payment(
        server.pool(),
        TenantId::from_uuid(tenant),
        admin::RefundOf::Reference("bank-transfer-1"),
        None,
        Some("paid twice"),
    )
    .await
    .unwrap();
    fetch_licence(&http, &server, &desk).await;
    let mail = relay.wait_for(4).await;
    assert_eq!(mail.len(), 4);
    assert_eq!(mail[3].to, "pejabat@klinik-notis.my");
    assert_eq!(mail[3].subject(), "Your Kaunter refund");
    let body = mail[3].body();
    assert!(
        body.contains("RM 49.00 of payment bank-transfer-1"),
        "{body}"
    );
    assert!(body.contains("taken back"), "{body}");
    // A notice is marked sent once the relay has taken it, so the mark may land just after
    // the relay has the mail.
    let mut unsent = -1_i64;
    for _ in 0..100 {
        unsent = owner
            .query_one(
                "SELECT count(*) FROM notice_outbox WHERE tenant_id = $1 AND sent_at IS NULL",
                &[&tenant],
            )
            .await
            .unwrap()
            .get(0);
        if unsent == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(unsent, 0);
}

/// The names on the desk's roster (`GET /v1/staff`), which must be answered.
async fn roster(http: &reqwest::Client, server: &TestServer, desk: &EnrolResponse) -> Vec<String> {
    let answer = http
        .get(server.url("/v1/staff"))
        .bearer_auth(&desk.device_token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: serde_json::Value = answer.json().await.unwrap();
    body["staff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| member["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_suspended_business_desk_still_gets_the_roster_without_a_person_removed() {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let http = reqwest::Client::new();
    let (clinic, desk) = sign_up_with_desk(&http, &server, "klinik-gantung").await;
    let owner = db.owner_client().await.unwrap();
    let tenant = clinic.tenant_id;
    // Two people with a desk PIN: the ADMIN who signed up and Siti.
    owner
        .execute(
            "UPDATE users SET pin_hash = '$argon2id$admin' WHERE tenant_id = $1",
            &[&tenant],
        )
        .await
        .unwrap();
    owner
        .execute(
            "INSERT INTO users (tenant_id, user_id, email, email_key, name, status, pin_hash)
             VALUES ($1, gen_random_uuid(), 'siti@klinik.my', 'siti@klinik.my', 'Siti',
                     'ACTIVE', '$argon2id$siti')",
            &[&tenant],
        )
        .await
        .unwrap();
    let before = roster(&http, &server, &desk).await;
    assert_eq!(before.len(), 2, "{before:?}");
    assert!(before.contains(&"Siti".to_owned()));

    // The trial ended long ago: suspended, so the desk no longer syncs.
    owner
        .execute(
            "UPDATE subscriptions SET trial_ends_at = now() - interval '30 days',
                 period_ends_at = now() - interval '30 days'
             WHERE tenant_id = $1",
            &[&tenant],
        )
        .await
        .unwrap();
    let pull = http
        .get(server.url("/v1/sync/pull?cursor=0"))
        .bearer_auth(&desk.device_token)
        .send()
        .await
        .unwrap();
    assert_eq!(pull.status(), StatusCode::PAYMENT_REQUIRED);
    let body: serde_json::Value = pull.json().await.unwrap();
    assert_eq!(body["code"], "subscription_suspended");

    // Siti leaves: the desk's next roster no longer has her, so her PIN stops working there.
    owner
        .execute(
            "UPDATE users SET status = 'INACTIVE' WHERE tenant_id = $1 AND name = 'Siti'",
            &[&tenant],
        )
        .await
        .unwrap();
    let after = roster(&http, &server, &desk).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(!after.contains(&"Siti".to_owned()));
    drop(server);
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn the_servers_sweep_reaches_businesses_whose_desks_never_sync() {
    let db = TestDatabase::create().await.unwrap();
    let relay = SmtpCapture::start().await.unwrap();
    let state = AppState::new(db.app_pool().unwrap())
        .with_mailer(Some(Mailer {
            relay: relay.addr.to_string(),
            from: "billing@kaunter.test".to_owned(),
        }))
        .with_notice_sweep(Some(std::time::Duration::from_millis(200)));
    let server = TestServer::start(state).await.unwrap();
    let http = reqwest::Client::new();
    // Two businesses with a desk each that never fetches anything, and a third mid-trial.
    let (quiet, _) = sign_up_with_desk(&http, &server, "klinik-senyap").await;
    let (ended, _) = sign_up_with_desk(&http, &server, "klinik-tamat").await;
    let (_, _) = sign_up_with_desk(&http, &server, "klinik-awal").await;
    let owner = db.owner_client().await.unwrap();
    // The first is on day 5 of its trial, the second's trial ended an hour ago; each business's
    // turn in the sweep has come.
    for (tenant, ends) in [(quiet.tenant_id, "60 hours"), (ended.tenant_id, "-1 hour")] {
        owner
            .execute(
                "UPDATE subscriptions SET trial_ends_at = now() + $2::text::interval,
                     period_ends_at = now() + $2::text::interval, notices_checked_at = NULL
                 WHERE tenant_id = $1",
                &[&tenant, &ends],
            )
            .await
            .unwrap();
    }
    owner
        .execute("UPDATE notice_schedule SET look_after = now()", &[])
        .await
        .unwrap();
    // The first chose Bahasa Melayu for what Kaunter writes to it.
    owner
        .execute(
            "UPDATE business_settings SET language = 'ms' WHERE tenant_id = $1",
            &[&quiet.tenant_id],
        )
        .await
        .unwrap();

    // With no desk asking, each gets its own notice at its own address, in its own language,
    // and the business mid-trial gets none.
    let mut mail = relay.wait_for(2).await;
    mail.sort_by_key(|message| message.to.clone());
    let seen: Vec<(String, String)> = mail
        .iter()
        .map(|message| (message.to.clone(), message.subject()))
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].0, "pejabat@klinik-senyap.my");
    assert_eq!(
        seen[0].1,
        "Tempoh percubaan Kaunter anda tamat dalam 3 hari"
    );
    assert!(mail[0].body().contains("Klinik klinik-senyap"));
    assert_eq!(seen[1].0, "pejabat@klinik-tamat.my");
    assert!(seen[1].1.contains("read-only for 7 days"), "{seen:?}");
    assert!(mail[1].body().contains("Klinik klinik-tamat"));

    // Each business's turn moved on an hour; when it comes again, what was sent is not sent
    // twice.
    let count_turns = |sql: &'static str| {
        let owner = &owner;
        async move { owner.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(
        count_turns(
            "SELECT count(*) FROM notice_schedule WHERE look_after > now() + interval '50 minutes'"
        )
        .await,
        3
    );
    owner
        .batch_execute(
            "UPDATE subscriptions SET notices_checked_at = NULL;
             UPDATE notice_schedule SET look_after = now();",
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    assert_eq!(
        count_turns("SELECT count(*) FROM notice_schedule WHERE look_after <= now()").await,
        0,
        "the sweep took every business's turn again"
    );
    assert_eq!(relay.messages().len(), 2);
    drop(server);
    db.drop_db().await.unwrap();
}
