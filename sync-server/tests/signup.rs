//! Sign-up over real HTTP against a real PostgreSQL: one transaction makes a whole business, the
//! form's problems come back field by field, a slug or name is never taken twice, and a failure
//! half-way leaves nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::Utc;
use kaunter_protocol::http::{ErrorBody, SignUpRequest, SignUpResponse, error_code};
use kaunter_sync_server::password::{self, Verified};
use kaunter_sync_server::test_support::{TestDatabase, TestServer, sign_up_form};
use reqwest::StatusCode;
use serde_json::json;

struct Fixture {
    http: reqwest::Client,
    db: TestDatabase,
    server: TestServer,
}

async fn fixture() -> Fixture {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    Fixture {
        http: reqwest::Client::new(),
        db,
        server,
    }
}

fn clinic() -> SignUpRequest {
    SignUpRequest {
        business_name: "Klinik Kesihatan Aman".into(),
        email: "pejabat@klinikaman.my".into(),
        branch_name: "Cawangan Utama".into(),
        admin_name: "Dr. Aminah binti Yusof".into(),
        // No choice made: Bahasa Melayu.
        language: String::new(),
        ..sign_up_form(
            "klinik-aman",
            "Klinik Kesihatan Aman",
            "Aminah@KlinikAman.my",
        )
    }
}

impl Fixture {
    async fn post(&self, body: &serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.server.url("/v1/signup"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn sign_up(&self, request: &SignUpRequest) -> reqwest::Response {
        self.post(&serde_json::to_value(request).unwrap()).await
    }

    async fn refused(&self, request: &SignUpRequest) -> ErrorBody {
        let response = self.sign_up(request).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        response.json().await.unwrap()
    }

    async fn count(&self, table: &str) -> i64 {
        self.db
            .owner_client()
            .await
            .unwrap()
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0)
    }

    /// Rows in every table sign-up writes.
    async fn counts(&self) -> Vec<i64> {
        let mut counts = Vec::new();
        for table in [
            "tenants",
            "branches",
            "business_settings",
            "roles",
            "role_permissions",
            "users",
            "user_roles",
        ] {
            counts.push(self.count(table).await);
        }
        counts
    }
}

fn fields(body: &ErrorBody) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = body
        .fields
        .iter()
        .map(|f| (f.field.clone(), f.code.clone()))
        .collect();
    fields.sort();
    fields
}

#[tokio::test]
async fn a_clinic_signs_up_with_everything_it_needs_in_one_go() {
    let f = fixture().await;
    let response = f.sign_up(&clinic()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: SignUpResponse = response.json().await.unwrap();
    assert_eq!(created.slug, "klinik-aman");
    let trial_days = (created.trial_ends_at - Utc::now()).num_hours();
    assert!(
        (7 * 24 - 1..=7 * 24).contains(&trial_days),
        "{trial_days} h"
    );

    let owner = f.db.owner_client().await.unwrap();
    let business = owner
        .query_one(
            "SELECT name, slug, industry, phone, postcode, state, status, trial_ends_at
             FROM tenants WHERE tenant_id = $1",
            &[&created.tenant_id],
        )
        .await
        .unwrap();
    assert_eq!(business.get::<_, &str>(0), "Klinik Kesihatan Aman");
    assert_eq!(business.get::<_, &str>(2), "HEALTHCARE");
    assert_eq!(business.get::<_, &str>(3), "+60321458899");
    assert_eq!(business.get::<_, &str>(5), "W.P. Kuala Lumpur");
    assert_eq!(business.get::<_, &str>(6), "active");
    assert_eq!(
        business.get::<_, chrono::DateTime<Utc>>(7),
        created.trial_ends_at
    );
    let branch: String = owner
        .query_one(
            "SELECT name FROM branches WHERE tenant_id = $1 AND branch_id = $2",
            &[&created.tenant_id, &created.branch_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(branch, "Cawangan Utama");
    let settings = owner
        .query_one(
            "SELECT time_zone, currency, date_format, language FROM business_settings
             WHERE tenant_id = $1",
            &[&created.tenant_id],
        )
        .await
        .unwrap();
    let settings: [&str; 4] = [0, 1, 2, 3].map(|i| settings.get(i));
    assert_eq!(settings, ["Asia/Kuala_Lumpur", "MYR", "DD/MM/YYYY", "ms"]);

    // The default roles of a clinic, with their permissions.
    let roles: BTreeMap<String, Vec<String>> = owner
        .query(
            "SELECT r.name, array_agg(p.permission ORDER BY p.permission)
             FROM roles r JOIN role_permissions p USING (tenant_id, role_id)
             WHERE r.tenant_id = $1 AND r.built_in GROUP BY r.name",
            &[&created.tenant_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let names: Vec<&str> = roles.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "ADMIN",
            "Accountant",
            "Doctor",
            "MANAGER",
            "Nurse",
            "Receptionist",
            "STAFF",
            "VIEWER"
        ]
    );
    assert!(roles["ADMIN"].contains(&"users.manage".to_owned()));
    assert!(roles["Doctor"].contains(&"clinical.read".to_owned()));
    assert!(!roles["Receptionist"].contains(&"clinical.read".to_owned()));
    assert!(!roles["STAFF"].contains(&"sales.refund".to_owned()));

    // The admin: active, the e-mail kept as typed and keyed in lowercase, the password as an
    // Argon2id hash that verifies, and the ADMIN role.
    let user = owner
        .query_one(
            "SELECT u.email, u.email_key, u.status, u.password_hash, r.name
             FROM users u JOIN user_roles ur USING (tenant_id, user_id)
             JOIN roles r USING (tenant_id, role_id)
             WHERE u.tenant_id = $1 AND u.user_id = $2",
            &[&created.tenant_id, &created.user_id],
        )
        .await
        .unwrap();
    assert_eq!(user.get::<_, &str>(0), "Aminah@KlinikAman.my");
    assert_eq!(user.get::<_, &str>(1), "aminah@klinikaman.my");
    assert_eq!(user.get::<_, &str>(2), "ACTIVE");
    let stored: &str = user.get(3);
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert!(!stored.contains("kuda"));
    assert_eq!(
        password::verify("kuda merah lompat tinggi", stored),
        Verified::Yes
    );
    assert_eq!(user.get::<_, &str>(4), "ADMIN");

    // A shop gets the four roles every business gets, in English if it asks.
    let shop = SignUpRequest {
        business_name: "Kedai Runcit Ah Seng".into(),
        slug: "ah-seng".into(),
        industry: "RETAIL".into(),
        admin_email: "ahseng@kedai.my".into(),
        language: "en".into(),
        ..clinic()
    };
    let response = f.sign_up(&shop).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let shop: SignUpResponse = response.json().await.unwrap();
    let shop_roles: Vec<String> = owner
        .query(
            "SELECT name FROM roles WHERE tenant_id = $1 ORDER BY name",
            &[&shop.tenant_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(shop_roles, ["ADMIN", "MANAGER", "STAFF", "VIEWER"]);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn every_problem_comes_back_by_field_and_nothing_is_written() {
    let f = fixture().await;
    let bad = SignUpRequest {
        business_name: " ".into(),
        slug: "www".into(),
        industry: "CLINIC".into(),
        email: "not-an-email".into(),
        phone: "12345".into(),
        postcode: "5040".into(),
        state: "Selangor Darul Ehsan".into(),
        admin_password: "short".into(),
        ..clinic()
    };
    let body = f.refused(&bad).await;
    assert_eq!(body.code, error_code::VALIDATION_FAILED);
    assert_eq!(
        fields(&body),
        [
            ("admin_password", "password_too_short"),
            ("business_name", "required"),
            ("email", "email_invalid"),
            ("industry", "industry_unknown"),
            ("phone", "phone_invalid"),
            ("postcode", "postcode_invalid"),
            ("slug", "slug_reserved"),
            ("state", "state_unknown"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert!(body.fields.iter().all(|f| !f.message.is_empty()));
    assert_eq!(f.counts().await, [0; 7]);

    // Malformed JSON, an unknown field, a missing field: 400 with the stable code.
    let mut unknown = serde_json::to_value(clinic()).unwrap();
    unknown["tenant_id"] = json!("00000000-0000-0000-0000-000000000001");
    let mut missing = serde_json::to_value(clinic()).unwrap();
    missing.as_object_mut().unwrap().remove("slug");
    for body in [unknown, missing, json!("not an object")] {
        let response = f.post(&body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error: ErrorBody = response.json().await.unwrap();
        assert_eq!(error.code, error_code::BAD_REQUEST);
    }
    let garbled = f
        .http
        .post(f.server.url("/v1/signup"))
        .header("content-type", "application/json")
        .body("{\"business_name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(garbled.status(), StatusCode::BAD_REQUEST);
    assert_eq!(f.counts().await, [0; 7]);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_slug_or_a_name_is_never_taken_twice() {
    let f = fixture().await;
    assert_eq!(f.sign_up(&clinic()).await.status(), StatusCode::CREATED);
    let after_first = f.counts().await;

    let same_slug = SignUpRequest {
        business_name: "Klinik Lain".into(),
        ..clinic()
    };
    assert_eq!(
        fields(&f.refused(&same_slug).await),
        [("slug".to_owned(), "slug_taken".to_owned())]
    );
    // Names are compared without regard to case.
    let same_name = SignUpRequest {
        business_name: "KLINIK KESIHATAN AMAN".into(),
        slug: "klinik-aman-2".into(),
        ..clinic()
    };
    assert_eq!(
        fields(&f.refused(&same_name).await),
        [("business_name".to_owned(), "name_taken".to_owned())]
    );
    assert_eq!(f.counts().await, after_first, "a refused sign-up left rows");

    // Two sign-ups racing for one new slug: exactly one wins, the other is told why.
    let racer = |n: u32| SignUpRequest {
        business_name: format!("Kedai Perlumbaan {n}"),
        slug: "kedai-laju".into(),
        industry: "RETAIL".into(),
        ..clinic()
    };
    let (first, second) = (racer(1), racer(2));
    let (a, b) = tokio::join!(f.sign_up(&first), f.sign_up(&second));
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY]
    );
    assert_eq!(f.count("tenants WHERE slug = 'kedai-laju'").await, 1);
    assert_eq!(f.count("tenants").await, 2);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_failure_half_way_leaves_no_half_made_business() {
    let f = fixture().await;
    // The last table sign-up writes refuses every row: everything before it must roll back.
    f.db.owner_client()
        .await
        .unwrap()
        .batch_execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON user_roles
                 FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .await
        .unwrap();
    let response = f.sign_up(&clinic()).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.code, error_code::INTERNAL);
    assert!(
        !body.message.contains("refused by the test"),
        "{}",
        body.message
    );
    assert_eq!(f.counts().await, [0; 7]);
    f.db.drop_db().await.unwrap();
}
