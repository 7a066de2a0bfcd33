//! Head office switches modules on and off (`PUT /v1/subscription/modules`), over real HTTP
//! against real PostgreSQL: a set within the plan is taken and answered with the subscription's
//! view, and the next licence lease a desk fetches carries it; a set over the plan's limit is
//! refused with a sentence naming the limit, an INACTIVE module cannot be switched on, unknown
//! names and an empty set are field errors, and nothing changes with any refusal. A business in
//! grace or suspended, a role without `settings.manage` and a change without the CSRF token are
//! refused. One business's session neither changes nor sees another's modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use kaunter_protocol::http::{
    EnrolResponse, InvitationResponse, Licence, RolesResponse, SessionView, SignUpResponse,
    SignedLicence,
};
use kaunter_sync_server::admin;
use kaunter_sync_server::ids::{BranchId, TenantId};
use kaunter_sync_server::test_support::{ADMIN_PASSWORD, TestDatabase, TestServer, sign_up_form};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use uuid::Uuid;

const MODULES: &str = "/v1/subscription/modules";
const RECEPTIONIST_PASSWORD: &str = "bunga raya kembang pagi";

/// An answer's status and JSON body.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// The field errors as (field, code).
    fn fields(&self) -> Vec<(String, String)> {
        self.body["fields"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .map(|f| {
                        (
                            f["field"].as_str().unwrap().to_owned(),
                            f["code"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The switched-on modules of a subscription view, in catalogue order.
    fn enabled(&self) -> Vec<String> {
        enabled(&self.body)
    }
}

fn enabled(view: &Value) -> Vec<String> {
    view["modules"]
        .as_array()
        .unwrap_or_else(|| panic!("no modules in {view}"))
        .iter()
        .filter(|module| module["enabled"] == json!(true))
        .map(|module| module["module"].as_str().unwrap().to_owned())
        .collect()
}

/// A head-office session.
#[derive(Debug, Clone)]
struct Session {
    cookie: String,
    csrf: String,
}

/// A business as the test drives it: its ADMIN's session and one enrolled desk.
struct Business {
    created: SignUpResponse,
    admin: Session,
    desk: EnrolResponse,
}

struct World {
    http: reqwest::Client,
    db: TestDatabase,
    server: TestServer,
}

async fn world() -> World {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    World {
        http: reqwest::Client::new(),
        db,
        server,
    }
}

impl World {
    async fn send(request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        Answer { status, body }
    }

    async fn login(&self, slug: &str, email: &str, password: &str) -> Session {
        let response = self
            .http
            .post(self.server.url("/v1/auth/login"))
            .json(&json!({"business": slug, "email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "login of {email}");
        let cookie = response.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let view: SessionView = response.json().await.unwrap();
        Session {
            cookie,
            csrf: view.csrf_token,
        }
    }

    /// A clinic that signed itself up, its ADMIN logged in, with one desk enrolled.
    async fn business(&self, slug: &str, name: &str) -> Business {
        let email = format!("admin@{slug}.my");
        let created: SignUpResponse = self
            .http
            .post(self.server.url("/v1/signup"))
            .json(&sign_up_form(slug, name, &email))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let code = admin::create_enrolment_code(
            self.server.pool(),
            TenantId::from_uuid(created.tenant_id),
            BranchId::from_uuid(created.branch_id),
            admin::DEFAULT_ENROLMENT_CODE_TTL,
        )
        .await
        .unwrap();
        let desk: EnrolResponse = self
            .http
            .post(self.server.url("/v1/enrol"))
            .json(&json!({"code": code, "device_name": format!("Meja {name}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let admin = self.login(slug, &email, ADMIN_PASSWORD).await;
        Business {
            created,
            admin,
            desk,
        }
    }

    async fn get(&self, session: &Session, path: &str) -> Answer {
        Self::send(
            self.http
                .get(self.server.url(path))
                .header(COOKIE, &session.cookie),
        )
        .await
    }

    async fn post(&self, session: &Session, path: &str, body: Value) -> Answer {
        Self::send(
            self.http
                .post(self.server.url(path))
                .header(COOKIE, &session.cookie)
                .header("X-CSRF-Token", &session.csrf)
                .json(&body),
        )
        .await
    }

    /// Asks for exactly `modules` to be on.
    async fn set(&self, session: &Session, modules: &[&str]) -> Answer {
        Self::send(
            self.http
                .put(self.server.url(MODULES))
                .header(COOKIE, &session.cookie)
                .header("X-CSRF-Token", &session.csrf)
                .json(&json!({ "modules": modules })),
        )
        .await
    }

    /// The switched-on modules as head office sees them.
    async fn enabled(&self, session: &Session) -> Vec<String> {
        let answer = self.get(session, "/v1/subscription").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.enabled()
    }

    /// The licence lease the desk fetches now, its payload decoded.
    async fn lease(&self, desk: &EnrolResponse) -> Licence {
        let signed: SignedLicence = self
            .http
            .get(self.server.url("/v1/licence"))
            .bearer_auth(&desk.device_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let payload = base64::engine::general_purpose::STANDARD
            .decode(signed.payload)
            .unwrap();
        serde_json::from_slice(&payload).unwrap()
    }

    /// The business's rows of `subscription_modules`, seen as the owner (no row-level security).
    async fn stored_modules(&self, tenant: Uuid) -> Vec<String> {
        self.db
            .owner_client()
            .await
            .unwrap()
            .query(
                "SELECT module FROM subscription_modules WHERE tenant_id = $1 ORDER BY module",
                &[&tenant],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    }

    async fn owner_exec(&self, sql: &str, tenant: Uuid) {
        self.db
            .owner_client()
            .await
            .unwrap()
            .execute(sql, &[&tenant])
            .await
            .unwrap();
    }

    /// Invites a person with `role` into the business and logs them in.
    async fn person_with_role(&self, business: &Business, slug: &str, role: &str) -> Session {
        let roles: RolesResponse =
            serde_json::from_value(self.get(&business.admin, "/v1/roles").await.body).unwrap();
        let role_id = roles
            .roles
            .iter()
            .find(|r| r.name == role)
            .unwrap_or_else(|| panic!("no role {role}"))
            .role_id;
        let email = format!("{}@{slug}.my", role.to_lowercase());
        let invited = self
            .post(
                &business.admin,
                "/v1/users/invite",
                json!({"name": format!("Orang {role}"), "email": email, "role_ids": [role_id]}),
            )
            .await;
        assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.body);
        let invitation: InvitationResponse = serde_json::from_value(invited.body).unwrap();
        let accepted = Self::send(
            self.http
                .post(self.server.url("/v1/invitations/accept"))
                .json(&json!({"token": invitation.invitation_token,
                              "password": RECEPTIONIST_PASSWORD})),
        )
        .await;
        assert_eq!(accepted.status, StatusCode::NO_CONTENT, "{}", accepted.body);
        self.login(slug, &email, RECEPTIONIST_PASSWORD).await
    }

    async fn finish(self) {
        drop(self.server);
        self.db.drop_db().await.unwrap();
    }
}

#[tokio::test]
async fn head_office_switches_modules_within_its_plan_and_the_next_lease_carries_them() {
    let w = world().await;
    let a = w.business("klinik-aman", "Aman").await;
    let tenant = a.created.tenant_id;
    // A clinic starts with its industry's module, and its desk's lease says so.
    assert_eq!(w.enabled(&a.admin).await, ["CLINIC"]);
    assert_eq!(w.lease(&a.desk).await.modules, ["CLINIC"]);

    // A trial has PRO's limits (5 modules): the point of sale switched on beside the clinic.
    let on = w.set(&a.admin, &["CLINIC", "RETAIL_POS"]).await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.body);
    assert_eq!(on.enabled(), ["RETAIL_POS", "CLINIC"], "catalogue order");
    // The answer is the subscription's view, as GET shows it.
    let shown = w.get(&a.admin, "/v1/subscription").await.body;
    assert_eq!(on.body["modules"], shown["modules"]);
    assert_eq!(on.body["limits"], shown["limits"]);
    assert_eq!(on.body["state"], json!("TRIAL"));
    let module_limit = shown["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|limit| limit["resource"] == json!("MODULE"))
        .unwrap()
        .clone();
    assert_eq!(
        module_limit,
        json!({"resource": "MODULE", "limit": 5, "in_use": 2})
    );
    // The desk's next lease carries the new set (a lease is signed per request).
    let lease = w.lease(&a.desk).await;
    assert_eq!(lease.modules, ["CLINIC", "RETAIL_POS"]);
    assert_eq!(lease.max_modules, Some(5));

    // The same set again changes nothing; duplicates count once.
    let again = w.set(&a.admin, &["RETAIL_POS", "CLINIC", "CLINIC"]).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.enabled(), ["RETAIL_POS", "CLINIC"]);

    // The clinic switched off, and a BETA module on: the lease follows.
    let swapped = w.set(&a.admin, &["RETAIL_POS", "SALON"]).await;
    assert_eq!(swapped.status, StatusCode::OK, "{}", swapped.body);
    assert_eq!(swapped.enabled(), ["RETAIL_POS", "SALON"]);
    assert_eq!(w.lease(&a.desk).await.modules, ["RETAIL_POS", "SALON"]);
    assert_eq!(w.stored_modules(tenant).await, ["RETAIL_POS", "SALON"]);

    // Back to the clinic alone.
    let back = w.set(&a.admin, &["CLINIC"]).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    assert_eq!(w.lease(&a.desk).await.modules, ["CLINIC"]);
    w.finish().await;
}

#[tokio::test]
async fn refused_sets_say_why_and_change_nothing() {
    let w = world().await;
    let a = w.business("klinik-aman", "Aman").await;
    let tenant = a.created.tenant_id;
    let unchanged = |answer: &Answer| format!("{} {}", answer.status, answer.body);

    // An unknown name: a field error at `modules` naming it.
    let unknown = w.set(&a.admin, &["CLINIC", "PHARMACY"]).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.code(), "validation_failed");
    assert_eq!(
        unknown.fields(),
        [("modules".to_owned(), "module_unknown".to_owned())]
    );
    assert!(
        unknown.body["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("\"PHARMACY\" is not a module"),
        "{}",
        unknown.body
    );
    // A body of many unknown names gets a short answer: the first few are named.
    let many: Vec<String> = (0..2000).map(|n| format!("MODULE_{n}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let flood = w.set(&a.admin, &many).await;
    assert_eq!(flood.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(flood.fields().len(), 5);
    // Spellings are exact.
    let lower = w.set(&a.admin, &["clinic"]).await;
    assert_eq!(lower.status, StatusCode::UNPROCESSABLE_ENTITY);

    // INACTIVE modules cannot be switched on.
    let inactive = w.set(&a.admin, &["CLINIC", "EDUCATION"]).await;
    assert_eq!(
        inactive.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unchanged(&inactive)
    );
    assert_eq!(
        inactive.fields(),
        [("modules".to_owned(), "module_not_offered".to_owned())]
    );
    assert_eq!(
        inactive.body["fields"][0]["message"],
        json!("Education is not offered at the moment, so it cannot be switched on.")
    );

    // At least one module.
    let empty = w.set(&a.admin, &[]).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        empty.fields(),
        [("modules".to_owned(), "modules_required".to_owned())]
    );

    // A body that is not the request's shape.
    let malformed = World::send(
        w.http
            .put(w.server.url(MODULES))
            .header(COOKIE, &a.admin.cookie)
            .header("X-CSRF-Token", &a.admin.csrf)
            .json(&json!({"modules": ["CLINIC"], "tenant_id": Uuid::now_v7()})),
    )
    .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);

    // Without the CSRF token.
    let no_csrf = World::send(
        w.http
            .put(w.server.url(MODULES))
            .header(COOKIE, &a.admin.cookie)
            .json(&json!({"modules": ["CLINIC", "RETAIL_POS"]})),
    )
    .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    assert_eq!(no_csrf.code(), "csrf_failed");
    assert_eq!(w.stored_modules(tenant).await, ["CLINIC"]);

    // GROWTH allows 2: a third is refused with kaunter-core's sentence naming the limit.
    w.owner_exec(
        "UPDATE subscriptions SET plan = 'GROWTH', cycle = 'MONTHLY', pricing = 'SUBSCRIPTION',
             period_ends_at = now() + interval '30 days', last_paid_at = now()
         WHERE tenant_id = $1",
        tenant,
    )
    .await;
    let two = w.set(&a.admin, &["CLINIC", "RETAIL_POS"]).await;
    assert_eq!(two.status, StatusCode::OK, "{}", two.body);
    let three = w.set(&a.admin, &["CLINIC", "RETAIL_POS", "SALON"]).await;
    assert_eq!(three.status, StatusCode::CONFLICT, "{}", three.body);
    assert_eq!(three.code(), "plan_limit_reached");
    assert_eq!(
        three.body["message"],
        json!(
            "Your plan allows 2 modules at once and 3 are chosen: switch one off or move to a larger plan."
        )
    );
    assert_eq!(w.stored_modules(tenant).await, ["CLINIC", "RETAIL_POS"]);
    assert_eq!(w.lease(&a.desk).await.modules, ["CLINIC", "RETAIL_POS"]);

    // Moved down to STARTER (1 module) with 2 on: both keep working, one may go, and a swap
    // that still leaves 2 is refused.
    w.owner_exec(
        "UPDATE subscriptions SET plan = 'STARTER' WHERE tenant_id = $1",
        tenant,
    )
    .await;
    let swap = w.set(&a.admin, &["CLINIC", "SALON"]).await;
    assert_eq!(swap.status, StatusCode::CONFLICT, "{}", swap.body);
    assert!(
        swap.body["message"]
            .as_str()
            .unwrap()
            .starts_with("Your plan allows 1 module at once"),
        "{}",
        swap.body
    );
    let down = w.set(&a.admin, &["CLINIC"]).await;
    assert_eq!(down.status, StatusCode::OK, "{}", down.body);
    assert_eq!(w.stored_modules(tenant).await, ["CLINIC"]);
    w.finish().await;
}

#[tokio::test]
async fn grace_suspension_and_roles_without_settings_manage_are_refused() {
    let w = world().await;
    let a = w.business("klinik-aman", "Aman").await;
    let tenant = a.created.tenant_id;

    // A Receptionist (and any role without settings.manage) may neither see nor change them.
    let receptionist = w.person_with_role(&a, "klinik-aman", "Receptionist").await;
    let refused = w.set(&receptionist, &["CLINIC", "RETAIL_POS"]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.code(), "forbidden");
    assert_eq!(
        w.get(&receptionist, "/v1/subscription").await.status,
        StatusCode::FORBIDDEN
    );
    let viewer = w.person_with_role(&a, "klinik-aman", "VIEWER").await;
    assert_eq!(
        w.set(&viewer, &["CLINIC", "RETAIL_POS"]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(w.stored_modules(tenant).await, ["CLINIC"]);

    // The trial ended a day ago: GRACE refuses the change with the subscription's own code,
    // switching off as much as on; the desk's lease keeps the set.
    w.owner_exec(
        "UPDATE subscriptions SET trial_ends_at = now() - interval '1 day',
             period_ends_at = now() - interval '1 day' WHERE tenant_id = $1",
        tenant,
    )
    .await;
    for wanted in [&["CLINIC", "RETAIL_POS"][..], &["RETAIL_POS"][..]] {
        let grace = w.set(&a.admin, wanted).await;
        assert_eq!(grace.status, StatusCode::PAYMENT_REQUIRED, "{}", grace.body);
        assert_eq!(grace.code(), "subscription_read_only");
    }
    assert_eq!(w.lease(&a.desk).await.modules, ["CLINIC"]);

    // A week later: SUSPENDED.
    w.owner_exec(
        "UPDATE subscriptions SET trial_ends_at = now() - interval '8 days',
             period_ends_at = now() - interval '8 days' WHERE tenant_id = $1",
        tenant,
    )
    .await;
    let suspended = w.set(&a.admin, &["CLINIC", "RETAIL_POS"]).await;
    assert_eq!(
        suspended.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        suspended.body
    );
    assert_eq!(suspended.code(), "subscription_suspended");
    assert_eq!(w.stored_modules(tenant).await, ["CLINIC"]);
    w.finish().await;
}

#[tokio::test]
async fn one_business_neither_changes_nor_sees_anothers_modules() {
    let w = world().await;
    let a = w.business("klinik-aman", "Aman").await;
    let b = w.business("klinik-bestari", "Bestari").await;
    let b_before = w.get(&b.admin, "/v1/subscription").await.body;

    // A's change is A's alone: B's view, B's rows and B's desk's lease are as they were.
    let changed = w.set(&a.admin, &["RETAIL_POS", "SALON"]).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(w.get(&b.admin, "/v1/subscription").await.body, b_before);
    assert_eq!(w.stored_modules(b.created.tenant_id).await, ["CLINIC"]);
    assert_eq!(w.lease(&b.desk).await.modules, ["CLINIC"]);
    // And B's change leaves A's.
    let b_changed = w.set(&b.admin, &["CLINIC", "RETAIL_POS"]).await;
    assert_eq!(b_changed.status, StatusCode::OK, "{}", b_changed.body);
    assert_eq!(w.enabled(&a.admin).await, ["RETAIL_POS", "SALON"]);
    assert_eq!(w.lease(&a.desk).await.modules, ["RETAIL_POS", "SALON"]);
    // A's answers name nothing of B.
    for secret in [
        b.created.tenant_id.to_string(),
        b.created.branch_id.to_string(),
        b.desk.device_id.to_string(),
        "Bestari".to_owned(),
    ] {
        assert!(!changed.body.to_string().contains(&secret), "{secret}");
    }

    // A's session with B's tenant put in its cookie opens nothing and changes nothing.
    let forged = Session {
        cookie: a.admin.cookie.replace(
            &a.created.tenant_id.to_string(),
            &b.created.tenant_id.to_string(),
        ),
        csrf: a.admin.csrf.clone(),
    };
    assert_ne!(forged.cookie, a.admin.cookie);
    let refused = w.set(&forged, &["SALON"]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert_eq!(
        w.stored_modules(b.created.tenant_id).await,
        ["CLINIC", "RETAIL_POS"]
    );

    // Two changes of A at once queue on the subscription's row: one set or the other wins,
    // never both added to what was read before either.
    let reset = w.set(&a.admin, &["CLINIC"]).await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    let (first, second) = tokio::join!(
        w.set(&a.admin, &["CLINIC", "SALON"]),
        w.set(&a.admin, &["CLINIC", "RETAIL_POS"])
    );
    assert_eq!(
        (first.status, second.status),
        (StatusCode::OK, StatusCode::OK)
    );
    let after = w.stored_modules(a.created.tenant_id).await;
    assert!(
        after == ["CLINIC", "SALON"] || after == ["CLINIC", "RETAIL_POS"],
        "two changes at once left {after:?}"
    );
    w.finish().await;
}
