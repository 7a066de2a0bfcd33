//! The subscription decides what a business's desks may sync, end to end over real HTTP with
//! real desks: in the trial everything syncs; once it expires (GRACE) a desk's pushes are
//! refused with their own code while other desks still pull, and what waits stays in the
//! outbox; SUSPENDED refuses sync both ways while every desk still opens its data; after a
//! payment the waiting changes go up exactly once. Head office sees the state, days left and
//! limits in use, and a plan's limits refuse one desk or person too many with a sentence that
//! says which.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use chrono::Utc;
use common::{HeadOffice, clinic_with_admin_pin, enrolled_store, patient};
use kaunter_core::SearchQuery;
use kaunter_core::subscription::Access;
use kaunter_protocol::http::error_code;
use kaunter_store::{Store, StoreError};
use kaunter_sync_client::{SyncClient, SyncEngine, SyncError};
use kaunter_sync_server::admin::{self, DEFAULT_ENROLMENT_CODE_TTL};
use kaunter_sync_server::ids::{BranchId, TenantId};
use kaunter_sync_server::test_support::{TestDatabase, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

const PIN: &str = "472913";

struct Desk {
    store: Arc<Mutex<Store>>,
    engine: SyncEngine,
    dir: tempfile::TempDir,
}

async fn enrol_code(server: &TestServer, tenant: Uuid, branch: Uuid) -> String {
    admin::create_enrolment_code(
        server.pool(),
        TenantId::from_uuid(tenant),
        BranchId::from_uuid(branch),
        DEFAULT_ENROLMENT_CODE_TTL,
    )
    .await
    .unwrap()
}

async fn desk(server: &TestServer, tenant: Uuid, branch: Uuid, admin: Uuid, name: &str) -> Desk {
    let code = enrol_code(server, tenant, branch).await;
    let enrolled = SyncClient::enrol_rotating(&server.base_url, &code, name)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = enrolled_store(dir.path(), &enrolled, name, &server.base_url);
    let client = SyncClient::with_credentials(&server.base_url, store.credentials()).unwrap();
    let store = Arc::new(Mutex::new(store));
    let engine = SyncEngine::new(store.clone(), client);
    engine.sync_now(Utc::now).await.unwrap();
    store.lock().unwrap().sign_in(admin, PIN).unwrap();
    Desk { store, engine, dir }
}

fn register(desk: &Desk, name: &str, mykad: &str) {
    desk.store
        .lock()
        .unwrap()
        .register_patient(&patient(name, mykad), Utc::now())
        .unwrap();
}

fn patients(desk: &Desk) -> usize {
    desk.store
        .lock()
        .unwrap()
        .search_patients(&SearchQuery::All, 100)
        .unwrap()
        .len()
}

fn refused_code(error: SyncError) -> String {
    match error {
        SyncError::Refused { status, code, .. } => {
            assert_eq!(status, 402, "{code}");
            code
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn subscription(http: &reqwest::Client, server: &TestServer, who: &HeadOffice) -> Value {
    let answer = http
        .get(server.url("/v1/subscription"))
        .header("cookie", &who.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    answer.json().await.unwrap()
}

/// Moves the business's trial or period end to `interval` from now (negative: in the past).
async fn period_ends_in(db: &TestDatabase, tenant: Uuid, interval: &str) {
    db.owner_client()
        .await
        .unwrap()
        .execute(
            &format!(
                "UPDATE subscriptions SET period_ends_at = now() + interval '{interval}',
                     trial_ends_at = now() + interval '{interval}' WHERE tenant_id = $1"
            ),
            &[&tenant],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn the_subscription_decides_what_desks_sync_and_nothing_waiting_is_lost() {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let owner = db.owner_client().await.unwrap();
    let http = reqwest::Client::new();
    let (clinic, admin) = clinic_with_admin_pin(&http, &server, "klinik-langgan", PIN).await;
    let tenant = clinic.tenant_id;

    // A new business: a 7-day trial of PRO with everything allowed.
    let trial = subscription(&http, &server, &admin).await;
    assert_eq!(
        (
            &trial["state"],
            &trial["access"],
            &trial["plan"],
            &trial["days_left"]
        ),
        (&json!("TRIAL"), &json!("FULL"), &json!("PRO"), &json!(7))
    );
    let in_use = |view: &Value| -> Vec<(String, Value, Value)> {
        view["limits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["resource"].as_str().unwrap().to_owned(),
                    l["limit"].clone(),
                    l["in_use"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        in_use(&trial),
        [
            ("MODULE".to_owned(), json!(5), json!(1)),
            ("USER".to_owned(), json!(25), json!(1)),
            ("DEVICE".to_owned(), json!(10), json!(0)),
        ]
    );
    let clinic_module = trial["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["module"] == json!("CLINIC"))
        .unwrap();
    assert_eq!(clinic_module["enabled"], json!(true));
    assert_eq!(trial["plans"].as_array().unwrap().len(), 4);

    let front = desk(
        &server,
        tenant,
        clinic.branch_id,
        admin.view.user_id,
        "Depan",
    )
    .await;
    let back = desk(
        &server,
        tenant,
        clinic.branch_id,
        admin.view.user_id,
        "Belakang",
    )
    .await;
    register(&front, "Aminah binti Ali", "900101-14-5678");
    let report = front.engine.sync_now(Utc::now).await.unwrap();
    assert_eq!(report.pushed, 1);
    register(&back, "Lim Ah Kow", "750505-10-5151");
    back.engine.sync_now(Utc::now).await.unwrap();

    // The trial ends: GRACE. A push is refused with its own code and the change waits; the
    // other desk still receives what reached the server before.
    period_ends_in(&db, tenant, "-1 hour").await;
    let grace = subscription(&http, &server, &admin).await;
    assert_eq!(
        (&grace["state"], &grace["access"]),
        (&json!("GRACE"), &json!("READ_ONLY"))
    );
    assert!(grace["expired_at"].is_string() && grace["read_only_until"].is_string());
    assert_eq!(grace["days_left"], json!(7), "{grace}");
    register(&front, "Tan Mei Ling", "881224-14-6248");
    let refused = front.engine.sync_now(Utc::now).await.unwrap_err();
    assert_eq!(refused_code(refused), error_code::SUBSCRIPTION_READ_ONLY);
    assert_eq!(front.store.lock().unwrap().sync_state().unwrap().pending, 1);
    // Its push refused, the desk still pulled what another desk sent before the grace.
    assert_eq!(patients(&front), 3);
    // The round brought the grace's lease: the desk itself now refuses new writes.
    let refused = front
        .store
        .lock()
        .unwrap()
        .register_patient(&patient("Siti Aisyah", "020202-14-0202"), Utc::now());
    assert!(matches!(refused, Err(StoreError::SubscriptionReadOnly)));
    back.engine.sync_now(Utc::now).await.unwrap();
    assert_eq!(patients(&back), 2);

    // A week later: SUSPENDED. Sync is refused both ways, and every desk still opens its data.
    period_ends_in(&db, tenant, "-8 days").await;
    let suspended = subscription(&http, &server, &admin).await;
    assert_eq!(
        (&suspended["state"], &suspended["access"]),
        (&json!("SUSPENDED"), &json!("SUSPENDED"))
    );
    for desk in [&front, &back] {
        let refused = desk.engine.sync_now(Utc::now).await.unwrap_err();
        assert_eq!(refused_code(refused), error_code::SUBSCRIPTION_SUSPENDED);
    }
    assert_eq!((patients(&front), patients(&back)), (3, 2));
    // A desk whose next pull starts from nothing (an upgrade, a discarded refusal) keeps what it
    // holds while the server cannot send its branch.
    let raw = rusqlite::Connection::open(back.dir.path().join("desk.db")).unwrap();
    raw.execute("UPDATE sync_state SET pull_cursor = 0", [])
        .unwrap();
    drop(raw);
    let refused = back.engine.sync_now(Utc::now).await.unwrap_err();
    assert_eq!(refused_code(refused), error_code::SUBSCRIPTION_SUSPENDED);
    assert_eq!(patients(&back), 2);
    assert_eq!(front.store.lock().unwrap().sync_state().unwrap().pending, 1);

    // Paid (the webhook's effect, written here as facts): what waited goes up once, and the
    // other desk gets it.
    owner
        .execute(
            "UPDATE subscriptions SET plan = 'GROWTH', cycle = 'MONTHLY', pricing = 'SUBSCRIPTION',
                 last_paid_at = now(), period_ends_at = now() + interval '30 days'
             WHERE tenant_id = $1",
            &[&tenant],
        )
        .await
        .unwrap();
    let report = front.engine.sync_now(Utc::now).await.unwrap();
    assert_eq!((report.pushed, report.rejected), (1, 0));
    back.engine.sync_now(Utc::now).await.unwrap();
    assert_eq!(patients(&back), 3);
    let changes: i64 = owner
        .query_one(
            "SELECT count(*) FROM changes WHERE tenant_id = $1",
            &[&tenant],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(changes, 3, "each registration applied exactly once");
    let paid = subscription(&http, &server, &admin).await;
    assert_eq!(
        (&paid["state"], &paid["plan"], &paid["days_left"]),
        (&json!("ACTIVE"), &json!("GROWTH"), &json!(30))
    );

    // GROWTH allows 3 desks: the third enrols, the fourth is refused with a sentence that says
    // which limit, and its code stays unused.
    let third = enrol_code(&server, tenant, clinic.branch_id).await;
    SyncClient::enrol_rotating(&server.base_url, &third, "Ketiga")
        .await
        .unwrap();
    let fourth = enrol_code(&server, tenant, clinic.branch_id).await;
    match SyncClient::enrol_rotating(&server.base_url, &fourth, "Keempat").await {
        Err(SyncError::Refused {
            status,
            code,
            message,
            ..
        }) => {
            assert_eq!(
                (status, code.as_str()),
                (409, error_code::PLAN_LIMIT_REACHED)
            );
            assert!(
                message.contains("Your plan allows 3 desks and 3 are in use"),
                "{message}"
            );
        }
        other => panic!("expected the desk limit, got {other:?}"),
    }
    let unused: i64 = owner
        .query_one(
            "SELECT count(*) FROM enrolment_codes WHERE tenant_id = $1 AND used_at IS NULL",
            &[&tenant],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        unused, 1,
        "the refused code can still be used once there is room"
    );

    // GROWTH allows 10 staff accounts: nine invitations go out, the tenth is refused.
    let roles: Value = http
        .get(server.url("/v1/roles"))
        .header("cookie", &admin.cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let staff_role = roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == json!("STAFF"))
        .unwrap()["role_id"]
        .clone();
    let invite = |n: usize| {
        http.post(server.url("/v1/users/invite"))
            .header("cookie", &admin.cookie)
            .header("x-csrf-token", &admin.view.csrf_token)
            .json(&json!({"name": format!("Pekerja {n}"),
                          "email": format!("pekerja{n}@klinik-langgan.my"),
                          "role_ids": [staff_role]}))
            .send()
    };
    for n in 1..=9 {
        assert_eq!(
            invite(n).await.unwrap().status(),
            StatusCode::CREATED,
            "{n}"
        );
    }
    let refused = invite(10).await.unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["code"], json!(error_code::PLAN_LIMIT_REACHED));
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("Your plan allows 10 staff accounts and 10 are in use"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_desk_offline_past_its_lease_goes_read_only_without_any_server() {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let http = reqwest::Client::new();
    let (clinic, admin) = clinic_with_admin_pin(&http, &server, "klinik-pajak", PIN).await;
    let front = desk(
        &server,
        clinic.tenant_id,
        clinic.branch_id,
        admin.view.user_id,
        "Depan",
    )
    .await;
    {
        let mut store = front.store.lock().unwrap();
        let status = store.licence_status(Utc::now()).unwrap();
        assert_eq!(status.access, Access::Full);
        let licence = status.licence.unwrap();
        assert_eq!(
            (licence.plan.as_str(), licence.state.as_str()),
            ("PRO", "TRIAL")
        );
        assert_eq!(licence.modules, ["CLINIC"]);
    }

    // The period is about to end; the desk's last round before the network goes brings a
    // lease that says so.
    period_ends_in(&db, clinic.tenant_id, "3 seconds").await;
    front.engine.sync_now(Utc::now).await.unwrap();
    drop(server);
    register(&front, "Aminah binti Ali", "900101-14-5678");
    tokio::time::sleep(std::time::Duration::from_millis(3_500)).await;
    let refused = front
        .store
        .lock()
        .unwrap()
        .register_patient(&patient("Tan Mei Ling", "881224-14-6248"), Utc::now());
    assert!(matches!(refused, Err(StoreError::SubscriptionReadOnly)));
    assert_eq!(
        front
            .store
            .lock()
            .unwrap()
            .licence_status(Utc::now())
            .unwrap()
            .access,
        Access::ReadOnly
    );
    // Everything it holds still opens, and what waits is kept.
    assert_eq!(patients(&front), 1);
    assert_eq!(front.store.lock().unwrap().sync_state().unwrap().pending, 1);
}
