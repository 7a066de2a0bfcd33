//! Head-office login and sessions over real HTTP against a real PostgreSQL: cookie attributes,
//! CSRF, one answer for every wrong guess, throttling per account and per address, re-hashing
//! weaker hashes, a new session at every login, suspended businesses and other tenants' cookies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use kaunter_protocol::http::{
    ErrorBody, LoginRequest, SessionView, SignUpRequest, SignUpResponse, error_code,
};
use kaunter_sync_server::test_support::{ADMIN_PASSWORD, TestDatabase, TestServer, sign_up_form};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, RETRY_AFTER, SET_COOKIE};
use serde_json::json;

const PASSWORD: &str = ADMIN_PASSWORD;

struct Fixture {
    http: reqwest::Client,
    db: TestDatabase,
    server: TestServer,
}

fn business(slug: &str, name: &str, admin_email: &str) -> SignUpRequest {
    sign_up_form(slug, name, admin_email)
}

/// A server with one signed-up clinic, `klinik-aman`, whose admin is aminah@klinikaman.my.
async fn fixture() -> (Fixture, SignUpResponse) {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let f = Fixture {
        http: reqwest::Client::new(),
        db,
        server,
    };
    let created = f
        .sign_up(&business(
            "klinik-aman",
            "Klinik Aman",
            "aminah@klinikaman.my",
        ))
        .await;
    (f, created)
}

/// A login's outcome: status, the cookie it set (name=value), the body as JSON.
struct Answer {
    status: StatusCode,
    set_cookie: Option<String>,
    retry_after: Option<u64>,
    body: serde_json::Value,
}

impl Answer {
    fn cookie(&self) -> String {
        let set = self.set_cookie.as_deref().expect("a cookie was set");
        set.split(';').next().unwrap().to_owned()
    }

    fn session(&self) -> SessionView {
        serde_json::from_value(self.body.clone()).unwrap()
    }

    fn error(&self) -> ErrorBody {
        serde_json::from_value(self.body.clone()).unwrap()
    }
}

impl Fixture {
    async fn sign_up(&self, request: &SignUpRequest) -> SignUpResponse {
        let response = self
            .http
            .post(self.server.url("/v1/signup"))
            .json(request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status();
        let set_cookie = response
            .headers()
            .get(SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned());
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .map(|v| v.to_str().unwrap().parse().unwrap());
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        Answer {
            status,
            set_cookie,
            retry_after,
            body,
        }
    }

    async fn login_with(
        &self,
        slug: &str,
        email: &str,
        password: &str,
        cookie: Option<&str>,
    ) -> Answer {
        let mut request = self
            .http
            .post(self.server.url("/v1/auth/login"))
            .json(&LoginRequest {
                business: slug.into(),
                email: email.into(),
                password: password.into(),
                totp_code: None,
            });
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        Self::answer(request.send().await.unwrap()).await
    }

    async fn login(&self, slug: &str, email: &str, password: &str) -> Answer {
        self.login_with(slug, email, password, None).await
    }

    async fn session(&self, cookie: Option<&str>) -> Answer {
        let mut request = self.http.get(self.server.url("/v1/auth/session"));
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        Self::answer(request.send().await.unwrap()).await
    }

    async fn logout(&self, cookie: &str, csrf: Option<&str>) -> Answer {
        let mut request = self
            .http
            .post(self.server.url("/v1/auth/logout"))
            .header(COOKIE, cookie);
        if let Some(csrf) = csrf {
            request = request.header("X-CSRF-Token", csrf);
        }
        Self::answer(request.send().await.unwrap()).await
    }

    async fn owner_exec(&self, sql: &str) {
        self.db
            .owner_client()
            .await
            .unwrap()
            .batch_execute(sql)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_person_logs_in_and_out_with_a_cookie_session() {
    let (f, created) = fixture().await;
    // The e-mail is matched without regard to case.
    let login = f
        .login("klinik-aman", "Aminah@KlinikAman.MY", PASSWORD)
        .await;
    assert_eq!(login.status, StatusCode::OK);
    let set = login.set_cookie.clone().unwrap();
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(
            set.split("; ").any(|a| a == attribute),
            "{attribute} missing from {set}"
        );
    }
    assert!(set.starts_with("kaunter_session=ks1."), "{set}");
    let view = login.session();
    assert_eq!(
        (view.tenant_id, view.user_id),
        (created.tenant_id, created.user_id)
    );
    assert_eq!(view.business_name, "Klinik Aman");
    assert_eq!(view.roles, ["ADMIN"]);
    assert!(view.permissions.contains(&"users.manage".to_owned()));
    assert!(view.permissions.contains(&"clinical.read".to_owned()));
    assert!(!view.csrf_token.is_empty());

    let cookie = login.cookie();
    let again = f.session(Some(&cookie)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        again.session(),
        view,
        "the session and its CSRF token are stable"
    );

    // Logging out is a change: it needs the CSRF token, and only this session's.
    for csrf in [None, Some("not-the-token")] {
        let refused = f.logout(&cookie, csrf).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(refused.error().code, error_code::CSRF_FAILED);
    }
    let other = f
        .login("klinik-aman", "aminah@klinikaman.my", PASSWORD)
        .await;
    let refused = f.logout(&cookie, Some(&other.session().csrf_token)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = f.logout(&cookie, Some(&view.csrf_token)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    let after = f.session(Some(&cookie)).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.error().code, error_code::SESSION_INVALID);
    // The other session is untouched.
    assert_eq!(
        f.session(Some(&other.cookie())).await.status,
        StatusCode::OK
    );

    // No cookie, a garbled one, a device token in its place: one answer.
    let device_like = cookie.replace("ks1.", "kt1.");
    for cookie in [
        None,
        Some("kaunter_session=nonsense"),
        Some(device_like.as_str()),
    ] {
        let answer = f.session(cookie).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{cookie:?}");
        assert_eq!(answer.error().code, error_code::SESSION_INVALID);
    }
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn every_wrong_guess_gets_the_same_answer() {
    let (f, _) = fixture().await;
    f.owner_exec(
        "INSERT INTO users (tenant_id, user_id, email, email_key, name, status, password_hash)
         SELECT tenant_id, gen_random_uuid(), 'gone@klinikaman.my', 'gone@klinikaman.my',
                'Former staff', 'DISABLED', password_hash FROM users",
    )
    .await;
    let guesses = [
        ("klinik-tiada", "aminah@klinikaman.my", PASSWORD),
        ("klinik-aman", "tiada@klinikaman.my", PASSWORD),
        (
            "klinik-aman",
            "aminah@klinikaman.my",
            "kuda merah lompat rendah",
        ),
        ("klinik-aman", "gone@klinikaman.my", PASSWORD),
        ("klinik-aman", "aminah@klinikaman.my", ""),
    ];
    let mut answers = Vec::new();
    for (slug, email, password) in guesses {
        let answer = f.login(slug, email, password).await;
        assert!(answer.set_cookie.is_none());
        answers.push((answer.status, answer.body));
    }
    assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED);
    assert_eq!(answers[0].1["code"], json!(error_code::INVALID_CREDENTIALS));
    for answer in &answers[1..] {
        assert_eq!(answer, &answers[0]);
    }
    // An oversized password is refused the same way, without hashing it.
    let huge = "x".repeat(5000);
    let answer = f.login("klinik-aman", "aminah@klinikaman.my", &huge).await;
    assert_eq!((answer.status, answer.body), answers[0].clone());
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn failures_lock_an_account_known_or_not_and_the_right_password_waits_too() {
    let (f, _) = fixture().await;
    for _ in 0..5 {
        let wrong = f
            .login("klinik-aman", "aminah@klinikaman.my", "salah salah salah")
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let locked = f
        .login("klinik-aman", "aminah@klinikaman.my", PASSWORD)
        .await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.error().code, error_code::TOO_MANY_ATTEMPTS);
    let retry = locked.retry_after.unwrap();
    assert!((800..=900).contains(&retry), "Retry-After {retry}");

    // An account that does not exist locks the same way, so locking tells nothing.
    for _ in 0..5 {
        f.login("klinik-aman", "tiada@klinikaman.my", "salah salah salah")
            .await;
    }
    let unknown = f
        .login("klinik-aman", "tiada@klinikaman.my", "salah salah salah")
        .await;
    assert_eq!(
        (unknown.status, unknown.error().code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, error_code::TOO_MANY_ATTEMPTS)
    );

    // Another account of the business, from the same address, is not locked.
    f.owner_exec(
        "INSERT INTO users (tenant_id, user_id, email, email_key, name, status, password_hash)
         SELECT tenant_id, gen_random_uuid(), 'siti@klinikaman.my', 'siti@klinikaman.my',
                'Siti', 'ACTIVE', password_hash FROM users WHERE email_key = 'aminah@klinikaman.my'",
    )
    .await;
    let other = f.login("klinik-aman", "siti@klinikaman.my", PASSWORD).await;
    assert_eq!(other.status, StatusCode::OK);

    // When the lock ends, the right password works and clears the count.
    f.owner_exec("UPDATE login_failures SET locked_until = now() - interval '1 second'")
        .await;
    assert_eq!(
        f.login("klinik-aman", "aminah@klinikaman.my", PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn many_failures_from_one_address_lock_the_address() {
    let (f, _) = fixture().await;
    // 30 failures spread over accounts (none reaches its own limit of 5).
    for n in 0..30 {
        let answer = f
            .login(
                "klinik-aman",
                &format!("staf{}@klinikaman.my", n % 10),
                "salah salah salah",
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    let locked = f
        .login("klinik-aman", "aminah@klinikaman.my", PASSWORD)
        .await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_weaker_stored_hash_is_replaced_at_login() {
    let (f, created) = fixture().await;
    let weak = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(8_192, 1, 1, None).unwrap(),
    )
    .hash_password(
        PASSWORD.as_bytes(),
        &SaltString::encode_b64(&[9u8; 16]).unwrap(),
    )
    .unwrap()
    .to_string();
    f.owner_exec(&format!("UPDATE users SET password_hash = '{weak}'"))
        .await;
    assert_eq!(
        f.login("klinik-aman", "aminah@klinikaman.my", PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    let stored: String =
        f.db.owner_client()
            .await
            .unwrap()
            .query_one(
                "SELECT password_hash FROM users WHERE user_id = $1",
                &[&created.user_id],
            )
            .await
            .unwrap()
            .get(0);
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    // And the new hash still opens the door.
    assert_eq!(
        f.login("klinik-aman", "aminah@klinikaman.my", PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_login_ends_the_session_the_browser_had() {
    let (f, _) = fixture().await;
    let first = f
        .login("klinik-aman", "aminah@klinikaman.my", PASSWORD)
        .await
        .cookie();
    let second = f
        .login_with(
            "klinik-aman",
            "aminah@klinikaman.my",
            PASSWORD,
            Some(&first),
        )
        .await
        .cookie();
    assert_ne!(first, second);
    assert_eq!(
        f.session(Some(&first)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(f.session(Some(&second)).await.status, StatusCode::OK);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_suspended_business_cannot_log_in_and_a_cookie_never_crosses_businesses() {
    let (f, a) = fixture().await;
    let b = f
        .sign_up(&business("kedai-seng", "Kedai Seng", "seng@kedai.my"))
        .await;
    let cookie_a = f
        .login("klinik-aman", "aminah@klinikaman.my", PASSWORD)
        .await
        .cookie();
    // Business A's session id and secret under business B's id: no such session there.
    let forged = cookie_a.replace(&a.tenant_id.to_string(), &b.tenant_id.to_string());
    assert_ne!(forged, cookie_a);
    let answer = f.session(Some(&forged)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.error().code, error_code::SESSION_INVALID);

    f.owner_exec("UPDATE tenants SET status = 'suspended' WHERE slug = 'kedai-seng'")
        .await;
    let right = f.login("kedai-seng", "seng@kedai.my", PASSWORD).await;
    assert_eq!(right.status, StatusCode::FORBIDDEN);
    assert_eq!(right.error().code, error_code::BUSINESS_NOT_ACTIVE);
    assert!(right.set_cookie.is_none());
    // A wrong password learns nothing about the business's state.
    let wrong = f
        .login("kedai-seng", "seng@kedai.my", "salah salah salah")
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn an_operator_suspends_reactivates_and_terminates_a_business() {
    use kaunter_sync_server::admin::{self, BusinessStatus};
    use kaunter_sync_server::ids::{BranchId, TenantId};

    let (f, created) = fixture().await;
    let tenant = TenantId::from_uuid(created.tenant_id);
    let code = admin::create_enrolment_code(
        f.server.pool(),
        tenant,
        BranchId::from_uuid(created.branch_id),
        admin::DEFAULT_ENROLMENT_CODE_TTL,
    )
    .await
    .unwrap();
    let desk: kaunter_protocol::http::EnrolResponse = f
        .http
        .post(f.server.url("/v1/enrol"))
        .json(&json!({"code": code, "device_name": "Kaunter 1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pull = || async {
        let response = f
            .http
            .get(f.server.url("/v1/sync/pull?cursor=0&schema_version=3"))
            .bearer_auth(&desk.device_token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        (status, body)
    };
    assert_eq!(pull().await.0, StatusCode::OK);

    admin::set_business_status(f.server.pool(), tenant, BusinessStatus::Suspended)
        .await
        .unwrap();
    let (status, body) = pull().await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], json!(error_code::BUSINESS_NOT_ACTIVE));
    let login = f
        .login("klinik-aman", "aminah@klinikaman.my", PASSWORD)
        .await;
    assert_eq!(login.status, StatusCode::FORBIDDEN);

    admin::set_business_status(f.server.pool(), tenant, BusinessStatus::Active)
        .await
        .unwrap();
    assert_eq!(pull().await.0, StatusCode::OK);
    assert_eq!(
        f.login("klinik-aman", "aminah@klinikaman.my", PASSWORD)
            .await
            .status,
        StatusCode::OK
    );

    admin::set_business_status(f.server.pool(), tenant, BusinessStatus::Terminated)
        .await
        .unwrap();
    assert_eq!(pull().await.0, StatusCode::FORBIDDEN);
    for status in [BusinessStatus::Active, BusinessStatus::Suspended] {
        let refused = admin::set_business_status(f.server.pool(), tenant, status).await;
        assert!(refused.is_err(), "{status:?} after terminated");
    }
    // Nothing was deleted: the business, its branch and its user are all still there.
    let owner = f.db.owner_client().await.unwrap();
    for table in ["tenants", "branches", "users", "devices"] {
        let rows: i64 = owner
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 1, "{table}");
    }
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn head_office_lists_and_revokes_desks_when_its_role_allows() {
    use kaunter_sync_server::admin;
    use kaunter_sync_server::ids::{BranchId, TenantId};

    let (f, created) = fixture().await;
    let code = admin::create_enrolment_code(
        f.server.pool(),
        TenantId::from_uuid(created.tenant_id),
        BranchId::from_uuid(created.branch_id),
        admin::DEFAULT_ENROLMENT_CODE_TTL,
    )
    .await
    .unwrap();
    let desk: kaunter_protocol::http::EnrolResponse = f
        .http
        .post(f.server.url("/v1/enrol"))
        .json(&json!({"code": code, "device_name": "Kaunter 1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // A VIEWER of the same business, with the admin's password.
    f.owner_exec(
        "INSERT INTO users (tenant_id, user_id, email, email_key, name, status, password_hash)
         SELECT tenant_id, gen_random_uuid(), 'lihat@klinikaman.my', 'lihat@klinikaman.my',
                'Pemerhati', 'ACTIVE', password_hash FROM users;
         INSERT INTO user_roles (tenant_id, user_id, role_id)
         SELECT u.tenant_id, u.user_id, r.role_id FROM users u JOIN roles r USING (tenant_id)
         WHERE u.email_key = 'lihat@klinikaman.my' AND r.name = 'VIEWER'",
    )
    .await;
    let list = |cookie: String| {
        let f = &f;
        async move {
            Fixture::answer(
                f.http
                    .get(f.server.url("/v1/devices"))
                    .header(COOKIE, cookie)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let revoke = |cookie: String, csrf: Option<String>, device: uuid::Uuid| {
        let f = &f;
        async move {
            let mut request = f
                .http
                .post(f.server.url("/v1/devices/revoke"))
                .header(COOKIE, cookie)
                .json(&json!({ "device_id": device }));
            if let Some(csrf) = csrf {
                request = request.header("X-CSRF-Token", csrf);
            }
            Fixture::answer(request.send().await.unwrap()).await
        }
    };

    let viewer = f
        .login("klinik-aman", "lihat@klinikaman.my", PASSWORD)
        .await;
    assert_eq!(viewer.session().roles, ["VIEWER"]);
    let refused = list(viewer.cookie()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.error().code, error_code::FORBIDDEN);
    let refused = revoke(
        viewer.cookie(),
        Some(viewer.session().csrf_token),
        desk.device_id,
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let admin = f
        .login("klinik-aman", "aminah@klinikaman.my", PASSWORD)
        .await;
    let listed = list(admin.cookie()).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(
        listed.body["devices"][0]["device_id"],
        json!(desk.device_id)
    );
    assert_eq!(listed.body["devices"][0]["revoked"], json!(false));
    let csrf = admin.session().csrf_token;
    assert_eq!(
        revoke(admin.cookie(), None, desk.device_id).await.status,
        StatusCode::FORBIDDEN
    );
    let unknown = revoke(admin.cookie(), Some(csrf.clone()), uuid::Uuid::now_v7()).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        revoke(admin.cookie(), Some(csrf.clone()), desk.device_id)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    // The desk is turned away at once; head office sees it revoked.
    let pulled = f
        .http
        .get(f.server.url("/v1/sync/pull?cursor=0&schema_version=3"))
        .bearer_auth(&desk.device_token)
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        list(admin.cookie()).await.body["devices"][0]["revoked"],
        json!(true)
    );
    f.db.drop_db().await.unwrap();
}
