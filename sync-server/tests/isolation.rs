//! The pool-leak test: a server whose pool holds ONE connection serves thousands of shuffled,
//! concurrent requests for two businesses and for nobody (no token, garbled tokens, a refused
//! push that fails inside its transaction). Every request borrows the same connection in turn,
//! so a tenant setting that outlived its transaction would show one business another's rows.
//! No answer may ever carry the other business's rows or names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::Utc;
use kaunter_core::{Hlc, SeededRng};
use kaunter_protocol::http::{
    Change, EnrolResponse, Entity, OutboxEntry, PatientRecord, PushRequest, SignUpRequest,
    SignUpResponse, WireStamp,
};
use kaunter_protocol::records::{
    CatalogueItemRecord, CatalogueKind, ClinicalEntryRecord, ClinicalKind, EntityRecord, TaxCode,
    ringgit,
};
use kaunter_protocol::{IdType, SCHEMA_VERSION};
use kaunter_sync_server::admin;
use kaunter_sync_server::ids::{BranchId, TenantId};
use kaunter_sync_server::test_support::{ADMIN_PASSWORD, TestDatabase, TestServer, sign_up_form};
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::json;
use uuid::Uuid;

const REQUESTS: usize = 2_000;

fn hmac_hex(key: &str, message: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}
const IN_FLIGHT: usize = 16;

/// One business as the test drives it.
#[derive(Clone)]
struct Business {
    slug: String,
    tenant_id: Uuid,
    branch_id: Uuid,
    desk: EnrolResponse,
    cookie: String,
    csrf: String,
    /// Its first patient, and the open conflict between it and a second registration of the
    /// same passport.
    patient_id: Uuid,
    conflict_id: Uuid,
    /// An emergency opening of its first patient's clinical record, waiting for review.
    emergency_id: Uuid,
    /// A completed payment of its own, with an invoice (only where the test records one).
    paid: Option<Uuid>,
    /// Its admin, and the id of its STAFF role.
    user_id: Uuid,
    staff_role: Uuid,
    /// Row ids and names only this business has.
    marks: Vec<String>,
}

impl Business {
    /// Everything that must never appear in another business's answers.
    fn secrets(&self) -> Vec<String> {
        let mut secrets = self.marks.clone();
        secrets.extend([
            self.branch_id.to_string(),
            self.conflict_id.to_string(),
            self.desk.device_id.to_string(),
            self.user_id.to_string(),
            self.staff_role.to_string(),
        ]);
        secrets
    }
}

fn sign_up(slug: &str, name: &str) -> SignUpRequest {
    sign_up_form(slug, name, &format!("admin@{slug}.my"))
}

async fn business(http: &reqwest::Client, server: &TestServer, slug: &str, name: &str) -> Business {
    let created: SignUpResponse = http
        .post(server.url("/v1/signup"))
        .json(&sign_up(slug, name))
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
        .json(&json!({"code": code, "device_name": format!("Kaunter {name}")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Five patients whose names carry the business's name.
    let hlc = Hlc::new(u64::try_from(Utc::now().timestamp_millis()).unwrap(), 0)
        .unwrap()
        .as_u64();
    let mut marks = vec![created.tenant_id.to_string(), name.to_owned()];
    // Six patients; the sixth has the first one's passport, which makes a conflict.
    let entries: Vec<OutboxEntry> = (1..=6)
        .map(|seq| {
            let record = PatientRecord {
                id: Uuid::now_v7(),
                branch_id: created.branch_id,
                full_name: format!("Pesakit {name} {seq}"),
                id_type: IdType::Passport,
                id_number: format!("{}{}", name.to_uppercase(), if seq == 6 { 1 } else { seq }),
                phone: None,
                date_of_birth: None,
                sex: None,
            };
            marks.push(record.id.to_string());
            OutboxEntry {
                actor: None,
                approver: None,
                seq,
                schema_version: SCHEMA_VERSION,
                change: Change {
                    entity: Entity::Patient,
                    row_id: record.id,
                    branch_id: created.branch_id,
                    stamp: WireStamp {
                        hlc: hlc + seq as u64,
                        device_id: desk.device_id,
                    },
                    fields: record.fields(),
                    recorded_at: Utc::now(),
                },
            }
        })
        .collect();
    // And a tenant-wide catalogue item: every desk of this business is sent it, no other.
    let mut entries = entries;
    let item = CatalogueItemRecord {
        id: Uuid::now_v7(),
        branch_id: created.branch_id,
        kind: CatalogueKind::Service,
        code: format!("{}-SVC", name.to_uppercase()),
        name: format!("Rawatan {name}"),
        price: ringgit::parse("30.00").unwrap(),
        tax: TaxCode::Exempt,
        duration_minutes: Some(20),
        active: true,
    };
    marks.extend([item.id.to_string(), item.code.clone(), item.name.clone()]);
    entries.push(OutboxEntry {
        actor: None,
        approver: None,
        seq: 7,
        schema_version: SCHEMA_VERSION,
        change: Change {
            entity: Entity::CatalogueItem,
            row_id: item.id,
            branch_id: created.branch_id,
            stamp: WireStamp {
                hlc: hlc + 7,
                device_id: desk.device_id,
            },
            fields: item.fields(),
            recorded_at: Utc::now(),
        },
    });
    // And an emergency opening of the first patient's clinical record (the desk asks nobody to
    // sign in yet, so it names nobody).
    let opening = ClinicalEntryRecord {
        id: Uuid::now_v7(),
        branch_id: created.branch_id,
        patient_id: Uuid::parse_str(&marks[2]).unwrap(),
        kind: ClinicalKind::EmergencyAccess,
        body: format!("Kecemasan {name} di kaunter"),
        author_id: None,
    };
    marks.extend([opening.id.to_string(), opening.body.clone()]);
    entries.push(OutboxEntry {
        actor: None,
        approver: None,
        seq: 8,
        schema_version: SCHEMA_VERSION,
        change: Change {
            entity: Entity::ClinicalEntry,
            row_id: opening.id,
            branch_id: created.branch_id,
            stamp: WireStamp {
                hlc: hlc + 8,
                device_id: desk.device_id,
            },
            fields: opening.fields(),
            recorded_at: Utc::now(),
        },
    });
    let pushed = http
        .post(server.url("/v1/sync/push"))
        .bearer_auth(&desk.device_token)
        .json(&PushRequest {
            schema_version: SCHEMA_VERSION,
            entries,
        })
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), StatusCode::OK);
    let login = http
        .post(server.url("/v1/auth/login"))
        .json(
            &json!({"business": slug, "email": format!("admin@{slug}.my"),
                      "password": ADMIN_PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let set_cookie = login.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let view: kaunter_protocol::http::SessionView = login.json().await.unwrap();
    let conflicts: kaunter_protocol::http::ConflictsResponse = http
        .get(server.url("/v1/conflicts?schema_version=3"))
        .bearer_auth(&desk.device_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(conflicts.conflicts.len(), 1);
    let roles: kaunter_protocol::http::RolesResponse = http
        .get(server.url("/v1/roles"))
        .header(COOKIE, &set_cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let staff_role = roles
        .roles
        .iter()
        .find(|role| role.name == "STAFF")
        .unwrap()
        .role_id;
    Business {
        slug: slug.to_owned(),
        tenant_id: created.tenant_id,
        branch_id: created.branch_id,
        desk,
        cookie: set_cookie,
        csrf: view.csrf_token,
        patient_id: Uuid::parse_str(&marks[2]).unwrap(),
        conflict_id: conflicts.conflicts[0].conflict_id,
        emergency_id: opening.id,
        paid: None,
        user_id: created.user_id,
        staff_role,
        marks,
    }
}

/// A well-formed enrolment code no business issued: its lookup reaches the database.
fn unknown_code() -> String {
    kaunter_sync_server::enrolment_code::EnrolmentCode::generate()
        .unwrap()
        .display()
}

#[derive(Debug, Clone, Copy)]
enum Who {
    A,
    B,
    Nobody,
}

#[derive(Debug, Clone, Copy)]
enum Ask {
    Pull,
    Conflicts,
    Session,
    /// A push with a sequence gap: refused after its transaction has set the tenant.
    GapPush,
    /// An unknown enrolment code: looked up before any tenant is known.
    Enrol,
    /// A wrong password for the other business: looked up by slug before any tenant is known.
    Login,
    /// Head office's list of people, of branches, and of emergency openings.
    Users,
    Branches,
    Emergencies,
}

#[tokio::test]
async fn one_pooled_connection_never_carries_a_tenant_into_another_request() {
    let db = TestDatabase::create().await.unwrap();
    let pool = kaunter_sync_server::db::connect_pool(db.app_config().unwrap(), 1).unwrap();
    let server = TestServer::start(kaunter_sync_server::AppState::new(pool))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let a = business(&http, &server, "klinik-aman", "Aman").await;
    let b = business(&http, &server, "klinik-bestari", "Bestari").await;
    let shared = Arc::new((http, server.base_url.clone(), a, b));

    let mut rng = SeededRng::new(20261125);
    let plan: Vec<(Who, Ask)> = (0..REQUESTS)
        .map(|_| {
            let who = [Who::A, Who::B, Who::Nobody][rng.index(3)];
            let ask = [
                Ask::Pull,
                Ask::Conflicts,
                Ask::Session,
                Ask::GapPush,
                Ask::Enrol,
                Ask::Login,
                Ask::Users,
                Ask::Branches,
                Ask::Emergencies,
            ][rng.index(9)];
            (who, ask)
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    let mut answered = [0usize; 3];
    for (n, (who, ask)) in plan.into_iter().enumerate() {
        if tasks.len() >= IN_FLIGHT {
            answered[tasks.join_next().await.unwrap().unwrap()] += 1;
        }
        let shared = shared.clone();
        tasks.spawn(async move {
            let (http, base, a, b) = &*shared;
            let (me, other) = match who {
                Who::A => (Some(a), b),
                Who::B => (Some(b), a),
                Who::Nobody => (None, a),
            };
            let token = me.map_or(
                // Garbled tokens of both kinds, in turn.
                if n % 2 == 0 {
                    "kt1.garbled".to_owned()
                } else {
                    String::new()
                },
                |me| me.desk.device_token.clone(),
            );
            let cookie = me.map_or("kaunter_session=ks1.nope".to_owned(), |me| {
                me.cookie.clone()
            });
            let request = match ask {
                Ask::Pull => http
                    .get(format!(
                        "{base}/v1/sync/pull?cursor=0&schema_version={SCHEMA_VERSION}"
                    ))
                    .bearer_auth(&token),
                Ask::Conflicts => http
                    .get(format!(
                        "{base}/v1/conflicts?schema_version={SCHEMA_VERSION}"
                    ))
                    .bearer_auth(&token),
                Ask::Session => http
                    .get(format!("{base}/v1/auth/session"))
                    .header(COOKIE, &cookie),
                Ask::Users => http.get(format!("{base}/v1/users")).header(COOKIE, &cookie),
                Ask::Branches => http
                    .get(format!("{base}/v1/branches"))
                    .header(COOKIE, &cookie),
                Ask::Emergencies => http
                    .get(format!("{base}/v1/emergency-access?state=all"))
                    .header(COOKIE, &cookie),
                Ask::Enrol => http
                    .post(format!("{base}/v1/enrol"))
                    .json(&json!({"code": unknown_code(), "device_name": "Intruder"})),
                Ask::Login => http.post(format!("{base}/v1/auth/login")).json(&json!({
                    "business": other.slug, "email": format!("admin@{}.my", other.slug),
                    "password": "not the password at all"})),
                Ask::GapPush => http
                    .post(format!("{base}/v1/sync/push"))
                    .bearer_auth(&token)
                    .json(&json!({"schema_version": SCHEMA_VERSION, "entries": [{
                        "seq": 1000, "schema_version": SCHEMA_VERSION,
                        "change": {"entity": "patient", "row_id": Uuid::now_v7(),
                                   "branch_id": Uuid::now_v7(),
                                   "stamp": {"hlc": "1", "device_id": Uuid::now_v7()},
                                   "fields": {"full_name": "X"},
                                   "recorded_at": Utc::now()}}]})),
            };
            let response = request.send().await.unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            for mark in &other.secrets() {
                assert!(
                    !body.contains(mark.as_str()),
                    "{who:?} {ask:?} saw {mark} of {}: {body}",
                    other.slug
                );
            }
            match (me, ask) {
                (_, Ask::Enrol) => assert_eq!(status, StatusCode::BAD_REQUEST, "{body}"),
                (_, Ask::Login) => assert!(
                    [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&status),
                    "{body}"
                ),
                (None, _) => assert_eq!(status, StatusCode::UNAUTHORIZED, "{ask:?}: {body}"),
                (Some(_), Ask::GapPush) => assert_eq!(status, StatusCode::CONFLICT, "{body}"),
                (Some(me), Ask::Pull) => {
                    assert_eq!(status, StatusCode::OK, "{body}");
                    // Not vacuous: its own rows are all there.
                    for mark in &me.marks[2..] {
                        assert!(body.contains(mark.as_str()), "{who:?} pull lacks {mark}");
                    }
                }
                (Some(me), Ask::Session) => {
                    assert_eq!(status, StatusCode::OK, "{body}");
                    assert!(body.contains(&me.marks[0]), "{body}");
                }
                (Some(_), Ask::Conflicts) => assert_eq!(status, StatusCode::OK, "{body}"),
                (Some(me), Ask::Users) => {
                    assert_eq!(status, StatusCode::OK, "{body}");
                    assert!(body.contains(&me.user_id.to_string()), "{body}");
                }
                (Some(me), Ask::Branches) => {
                    assert_eq!(status, StatusCode::OK, "{body}");
                    assert!(body.contains(&me.branch_id.to_string()), "{body}");
                }
                (Some(me), Ask::Emergencies) => {
                    assert_eq!(status, StatusCode::OK, "{body}");
                    assert!(body.contains(&me.emergency_id.to_string()), "{body}");
                }
            }
            match who {
                Who::A => 0,
                Who::B => 1,
                Who::Nobody => 2,
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        answered[done.unwrap()] += 1;
    }
    assert_eq!(answered.iter().sum::<usize>(), REQUESTS);
    assert!(answered.iter().all(|n| *n > REQUESTS / 5), "{answered:?}");
    drop(shared);
    drop(server);
    db.drop_db().await.unwrap();
}

/// A request of business A aimed at business B's ids on `route` (and, for the route's other
/// methods, the same request with another method). A new route without a probe here fails the
/// test: add one.
fn probe(
    http: &reqwest::Client,
    base: &str,
    route: &kaunter_sync_server::Route,
    method: reqwest::Method,
    a: &Business,
    b: &Business,
) -> reqwest::RequestBuilder {
    let query = match route.path {
        "/v1/sync/pull" => "?cursor=0&schema_version=3".to_owned(),
        "/v1/emergency-access" => "?state=all".to_owned(),
        "/v1/conflicts" => "?schema_version=3".to_owned(),
        // B's invoice, by its payment's id.
        "/v1/payments/invoice" => format!("?payment_id={}", b.paid.expect("B has paid")),
        _ => String::new(),
    };
    let request = http.request(method, format!("{base}{}{query}", route.path));
    // A's credentials, never B's; where a credential names its tenant, A's.
    let request = match route.caller {
        kaunter_sync_server::Caller::Anyone => request,
        kaunter_sync_server::Caller::Device => request.bearer_auth(&a.desk.device_token),
        kaunter_sync_server::Caller::Session => request
            .header(COOKIE, &a.cookie)
            .header("X-CSRF-Token", &a.csrf),
    };
    let b_patient = json!({
        "seq": 1000, "schema_version": SCHEMA_VERSION,
        "change": {"entity": "patient", "row_id": b.patient_id, "branch_id": b.branch_id,
                   "stamp": {"hlc": "1", "device_id": a.desk.device_id},
                   "fields": {"full_name": "Taken over"}, "recorded_at": Utc::now()}});
    match route.path {
        "/v1/health" | "/v1/openapi.json" => request,
        // B's slug and name for a new business.
        "/v1/signup" => request.json(&sign_up(&b.slug, "Bestari")),
        // A's admin's credentials against B's business.
        "/v1/auth/login" => request.json(&json!({"business": b.slug,
            "email": format!("admin@{}.my", a.slug), "password": ADMIN_PASSWORD})),
        "/v1/auth/session" | "/v1/auth/logout" => request,
        "/v1/enrol" => request.json(&json!({"code": unknown_code(), "device_name": "X"})),
        // B's row in B's branch, as A's next outbox entry (and as a gap, then from 1).
        "/v1/sync/push" => request.json(&json!({"schema_version": SCHEMA_VERSION,
            "entries": [{"seq": 8 + 1, "schema_version": SCHEMA_VERSION,
                         "change": b_patient["change"]}]})),
        "/v1/sync/pull" => request,
        "/v1/sync/status" => request.json(&json!({"pending": 0, "refused": 0,
            "oldest_pending_at": null, "last_synced_at": null, "last_error": null,
            "schema_version": SCHEMA_VERSION, "app_version": "0.0.0"})),
        "/v1/conflicts" => request,
        "/v1/conflicts/resolve" => request.json(&json!({"conflict_id": b.conflict_id,
            "resolution": "keep_both"})),
        "/v1/devices" => request,
        "/v1/devices/revoke" => request.json(&json!({"device_id": b.desk.device_id})),
        // A's own second factor (a code that is never right, so A's session stays).
        "/v1/auth/totp/setup" => request,
        "/v1/auth/totp/confirm" | "/v1/auth/totp/disable" => {
            request.json(&json!({"code": "abcdef"}))
        }
        // An invitation naming B's business and B's admin, with a secret nobody issued.
        "/v1/invitations/accept" => request.json(&json!({
            "token": format!("ki1.{}.{}.{}", b.tenant_id, b.user_id,
                             "A".repeat(43)),
            "password": "kata laluan yang panjang"})),
        "/v1/users" | "/v1/roles" | "/v1/branches" => request,
        // B's admin's e-mail with B's role, into A.
        "/v1/users/invite" => request.json(&json!({"name": "Orang Baru",
            "email": format!("admin@{}.my", b.slug), "role_ids": [b.staff_role]})),
        "/v1/users/reinvite" | "/v1/users/totp-reset" => {
            request.json(&json!({"user_id": b.user_id}))
        }
        "/v1/users/status" => request.json(&json!({"user_id": b.user_id, "status": "DISABLED"})),
        "/v1/users/roles" => {
            request.json(&json!({"user_id": b.user_id, "role_ids": [b.staff_role]}))
        }
        "/v1/branches/add" => request.json(&json!({"name": "Cawangan Baru"})),
        "/v1/branches/rename" => {
            request.json(&json!({"branch_id": b.branch_id, "name": "Diambil"}))
        }
        "/v1/branches/close" => request.json(&json!({"branch_id": b.branch_id})),
        // A code for B's branch, and a reconnect code for B's desk.
        "/v1/devices/enrolment-codes" => {
            request.json(&json!({"branch_id": b.branch_id, "replaces_device": b.desk.device_id}))
        }
        // A's own setting, turned on (B's must stay off; checked at the end).
        "/v1/settings/security" => request.json(&json!({"require_admin_totp": true})),
        // A's own PIN; A's roster (checked above to hold nothing of B's).
        "/v1/auth/pin" => request.json(&json!({"pin": "472913"})),
        "/v1/staff" | "/v1/licence" => request,
        // A's own list of emergency openings and subscription; a review of B's opening.
        "/v1/emergency-access" | "/v1/subscription" => request,
        "/v1/emergency-access/review" => request.json(&json!({
            "entry_id": b.emergency_id, "outcome": "not_justified", "note": "Diambil"})),
        // A refresh token naming B's business, with a secret nobody issued.
        "/v1/devices/refresh" => request.json(&json!({"refresh_token":
            format!("kr1.{}.{}.{}", b.tenant_id, Uuid::now_v7(), "A".repeat(43))})),
        // A's own payments; cancelling A's own trial (refused: it ends by itself).
        "/v1/payments" | "/v1/subscription/cancel" => request,
        "/v1/payments/invoice" => request,
        // A's own modules: the point of sale switched on beside the clinic (B's stay as they
        // were; checked at the end).
        "/v1/subscription/modules" => request.json(&json!({"modules": ["CLINIC", "RETAIL_POS"]})),
        // A payment naming B's business, signed with a key that is not the server's.
        "/v1/webhooks/stripe" => {
            let body = json!({"id": "evt_probe", "type": "checkout.session.completed",
                "data": {"object": {"id": "cs_probe", "amount_total": 4900, "currency": "myr",
                    "metadata": {"tenant_id": b.tenant_id, "plan": "STARTER",
                                 "cycle": "MONTHLY", "pricing": "SUBSCRIPTION"}}}})
            .to_string();
            let t = Utc::now().timestamp();
            let signature = hmac_hex("whsec_not_the_servers", &format!("{t}.{body}"));
            request
                .header("Stripe-Signature", format!("t={t},v1={signature}"))
                .header("Content-Type", "application/json")
                .body(body)
        }
        "/v1/webhooks/fpx" => {
            let fields: std::collections::BTreeMap<&str, String> = [
                ("amount", "49.00".to_owned()),
                ("id", "bill_probe".to_owned()),
                ("paid", "true".to_owned()),
                ("paid_at", Utc::now().to_rfc3339()),
                ("reference_1", b.tenant_id.to_string()),
                ("reference_2", "STARTER:MONTHLY:SUBSCRIPTION".to_owned()),
            ]
            .into();
            let source: Vec<String> = fields.iter().map(|(k, v)| format!("{k}{v}")).collect();
            let signature = hmac_hex("not-the-servers-key", &source.join("|"));
            request.header("X-Signature", signature).json(&fields)
        }
        other => panic!("no tenancy probe for {other}: add one to tests/isolation.rs"),
    }
}

#[tokio::test]
async fn every_route_and_method_refuses_business_a_anything_of_business_b() {
    let db = TestDatabase::create().await.unwrap();
    // With webhook secrets, so the webhooks' probes reach their signature check.
    let state = kaunter_sync_server::AppState::new(
        kaunter_sync_server::db::connect_pool(db.app_config().unwrap(), 8).unwrap(),
    )
    .with_stripe_webhook_secret(Some("whsec_matrix".parse().unwrap()))
    .with_fpx_webhook_secret(Some("fpx-matrix".parse().unwrap()));
    let server = TestServer::start(state).await.unwrap();
    let http = reqwest::Client::new();
    let a = business(&http, &server, "klinik-aman", "Aman").await;
    let mut b = business(&http, &server, "klinik-bestari", "Bestari").await;
    // B has paid (a bank transfer): its payment has an invoice A must not see.
    b.paid = Some(
        admin::record_payment(
            server.pool(),
            TenantId::from_uuid(b.tenant_id),
            kaunter_sync_server::payments::Purchase {
                plan: kaunter_core::subscription::Plan::Starter,
                cycle: kaunter_core::subscription::BillingCycle::Monthly,
                pricing: kaunter_core::subscription::PricingModel::Subscription,
            },
            None,
            Some("bestari-transfer-1"),
        )
        .await
        .unwrap()
        .payment_id
        .as_uuid(),
    );
    let b = b;
    let b_before = http
        .get(server.url("/v1/sync/pull?cursor=0&schema_version=3"))
        .bearer_auth(&b.desk.device_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let b_office = |path: &'static str| {
        let (http, b, base) = (&http, &b, server.base_url.clone());
        async move {
            let answer = http
                .get(format!("{base}{path}"))
                .header(COOKIE, &b.cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), StatusCode::OK, "{path}");
            answer.text().await.unwrap()
        }
    };
    let b_people_before = b_office("/v1/users").await;
    let b_branches_before = b_office("/v1/branches").await;
    let b_openings_before = b_office("/v1/emergency-access").await;
    assert!(b_openings_before.contains(&b.emergency_id.to_string()));
    let b_subscription_before = b_office("/v1/subscription").await;
    let b_payments_before = b_office("/v1/payments").await;

    let methods = [
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
        reqwest::Method::DELETE,
    ];
    let mut tried = 0;
    // Logging out ends A's session: it goes last, whatever the list's order.
    let mut routes: Vec<&kaunter_sync_server::Route> = kaunter_sync_server::ROUTES.iter().collect();
    routes.sort_by_key(|route| route.path == "/v1/auth/logout");
    for route in routes {
        for method in &methods {
            let response = probe(&http, &server.base_url, route, method.clone(), &a, &b)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            tried += 1;
            let what = format!("{method} {} as A: {status} {body}", route.path);
            for secret in b.secrets() {
                assert!(!body.contains(&secret), "{what} shows B's {secret}");
            }
            if method.as_str() != route.method {
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
                continue;
            }
            let expected: &[StatusCode] = match route.path {
                // Open routes that name nobody's data.
                "/v1/health" | "/v1/openapi.json" => &[StatusCode::OK],
                "/v1/signup" => &[StatusCode::UNPROCESSABLE_ENTITY],
                "/v1/auth/login" => &[StatusCode::UNAUTHORIZED],
                "/v1/enrol" => &[StatusCode::BAD_REQUEST],
                // A's own session and views (checked above to hold nothing of B's).
                "/v1/auth/session" | "/v1/sync/pull" | "/v1/conflicts" => &[StatusCode::OK],
                "/v1/sync/status" => &[StatusCode::NO_CONTENT, StatusCode::OK],
                // A's entry on B's row in B's branch is refused on its own (checked below).
                "/v1/sync/push" => &[StatusCode::OK],
                "/v1/conflicts/resolve" | "/v1/devices/revoke" => &[StatusCode::NOT_FOUND],
                "/v1/devices" => &[StatusCode::OK],
                "/v1/auth/totp/setup"
                | "/v1/users"
                | "/v1/roles"
                | "/v1/branches"
                | "/v1/settings/security" => &[StatusCode::OK],
                "/v1/auth/totp/confirm" => &[StatusCode::UNAUTHORIZED],
                "/v1/auth/totp/disable" => &[StatusCode::CONFLICT],
                "/v1/invitations/accept" => &[StatusCode::BAD_REQUEST],
                "/v1/devices/refresh" => &[StatusCode::UNAUTHORIZED],
                "/v1/auth/pin" => &[StatusCode::NO_CONTENT],
                "/v1/staff"
                | "/v1/emergency-access"
                | "/v1/subscription"
                | "/v1/licence"
                | "/v1/payments" => &[StatusCode::OK],
                "/v1/subscription/cancel" => &[StatusCode::CONFLICT],
                "/v1/payments/invoice" => &[StatusCode::NOT_FOUND],
                "/v1/subscription/modules" => &[StatusCode::OK],
                "/v1/webhooks/stripe" | "/v1/webhooks/fpx" => &[StatusCode::BAD_REQUEST],
                "/v1/branches/add" => &[StatusCode::CREATED],
                "/v1/users/invite"
                | "/v1/users/reinvite"
                | "/v1/users/status"
                | "/v1/users/roles"
                | "/v1/users/totp-reset"
                | "/v1/branches/rename"
                | "/v1/branches/close"
                | "/v1/devices/enrolment-codes"
                | "/v1/emergency-access/review" => &[StatusCode::NOT_FOUND],
                "/v1/auth/logout" => &[StatusCode::NO_CONTENT],
                other => panic!("no expectation for {other}"),
            };
            assert!(expected.contains(&status), "{what}");
            if route.path == "/v1/sync/push" {
                let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(
                    answer["rejected"][0]["code"],
                    json!("validation_failed"),
                    "{what}"
                );
            }
        }
    }
    assert_eq!(tried, kaunter_sync_server::ROUTES.len() * methods.len());

    // A's credentials with B's tenant id put in them open nothing either.
    let forged_token = a
        .desk
        .device_token
        .replace(&a.tenant_id.to_string(), &b.tenant_id.to_string());
    let forged_cookie = a
        .cookie
        .replace(&a.tenant_id.to_string(), &b.tenant_id.to_string());
    let forged = Business {
        desk: EnrolResponse {
            device_token: forged_token,
            ..a.desk.clone()
        },
        cookie: forged_cookie,
        ..a.clone()
    };
    for route in kaunter_sync_server::ROUTES {
        if route.caller == kaunter_sync_server::Caller::Anyone {
            continue;
        }
        let method = route.method.parse().unwrap();
        let response = probe(&http, &server.base_url, route, method, &forged, &b)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{} {} with a forged credential",
            route.method,
            route.path
        );
    }

    // B is exactly as it was: its rows, and its conflict still open.
    let b_after = http
        .get(server.url("/v1/sync/pull?cursor=0&schema_version=3"))
        .bearer_auth(&b.desk.device_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(b_before, b_after);
    // Its people (statuses, roles) and branches (names, open) too.
    assert_eq!(b_people_before, b_office("/v1/users").await);
    assert_eq!(b_branches_before, b_office("/v1/branches").await);
    assert_eq!(b_openings_before, b_office("/v1/emergency-access").await);
    assert_eq!(b_subscription_before, b_office("/v1/subscription").await);
    assert_eq!(b_payments_before, b_office("/v1/payments").await);
    let settings = db
        .owner_client()
        .await
        .unwrap()
        .query(
            "SELECT tenant_id, require_admin_totp FROM business_settings ORDER BY tenant_id",
            &[],
        )
        .await
        .unwrap();
    for row in settings {
        let (tenant, required): (Uuid, bool) = (row.get(0), row.get(1));
        assert_eq!(required, tenant == a.tenant_id, "business {tenant}");
    }
    let open: kaunter_protocol::http::ConflictsResponse = http
        .get(server.url("/v1/conflicts?schema_version=3"))
        .bearer_auth(&b.desk.device_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(open.conflicts.len(), 1);
    drop(server);
    db.drop_db().await.unwrap();
}
