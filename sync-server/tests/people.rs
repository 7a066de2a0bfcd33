//! Head office manages its branches, its people and their second factors, over real HTTP
//! against real PostgreSQL: branches are added, renamed and closed (closing keeps the data and
//! refuses new desks); people are invited, accept with their own password, are set away or
//! blocked and given roles, and the business never loses its last ADMIN; a privilege change
//! ends the person's sessions; TOTP is set up, required at login, never accepted twice, and
//! can be required of every ADMIN.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use kaunter_core::Hlc;
use kaunter_protocol::http::{
    BranchView, BranchesResponse, Change, EnrolResponse, EnrolmentCodeResponse, Entity,
    InvitationResponse, OutboxEntry, PatientRecord, PushRequest, RolesResponse, SessionView,
    SignUpResponse, UserStatus, UserView, UsersResponse, WireStamp, error_code,
};
use kaunter_protocol::{IdType, SCHEMA_VERSION};
use kaunter_sync_server::test_support::{ADMIN_PASSWORD, TestDatabase, TestServer, sign_up_form};
use kaunter_sync_server::totp;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use uuid::Uuid;

const SLUG: &str = "klinik-aman";
const ADMIN_EMAIL: &str = "aminah@klinikaman.my";
const NEW_PASSWORD: &str = "bunga raya kembang pagi";

/// An HTTP answer: status, the session cookie it set (name=value), the body as JSON.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    set_cookie: Option<String>,
    /// A renewed session's CSRF token (`X-CSRF-Token` on the answer).
    csrf: Option<String>,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.body.clone())
            .unwrap_or_else(|error| panic!("{error}: {}", self.body))
    }

    fn field_codes(&self) -> Vec<(String, String)> {
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
}

/// A person logged in at head office: their cookie and CSRF token.
#[derive(Debug, Clone)]
struct Session {
    cookie: String,
    csrf: String,
    view: SessionView,
}

struct Office {
    http: reqwest::Client,
    db: TestDatabase,
    server: TestServer,
    created: SignUpResponse,
}

async fn office() -> Office {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let http = reqwest::Client::new();
    let created = http
        .post(server.url("/v1/signup"))
        .json(&sign_up_form(SLUG, "Klinik Aman", ADMIN_EMAIL))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Office {
        http,
        db,
        server,
        created,
    }
}

impl Office {
    async fn send(request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status();
        let set_cookie = response
            .headers()
            .get(SET_COOKIE)
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
        let csrf = response
            .headers()
            .get("x-csrf-token")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        Answer {
            status,
            set_cookie,
            csrf,
            body,
        }
    }

    async fn login_answer(&self, email: &str, password: &str, totp: Option<&str>) -> Answer {
        Self::send(self.http.post(self.server.url("/v1/auth/login")).json(
            &json!({"business": SLUG, "email": email, "password": password, "totp_code": totp}),
        ))
        .await
    }

    async fn login(&self, email: &str, password: &str) -> Session {
        let answer = self.login_answer(email, password, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        session_of(&answer)
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

    async fn role(&self, session: &Session, name: &str) -> Uuid {
        let roles: RolesResponse = self.get(session, "/v1/roles").await.json();
        roles
            .roles
            .iter()
            .find(|role| role.name == name)
            .unwrap()
            .role_id
    }

    /// Invites `email` with `role` and accepts the invitation; returns the new person's id.
    async fn add_person(&self, admin: &Session, email: &str, role: &str) -> Uuid {
        let role_id = self.role(admin, role).await;
        let invited = self
            .post(
                admin,
                "/v1/users/invite",
                json!({"name": format!("Orang {email}"), "email": email, "role_ids": [role_id]}),
            )
            .await;
        assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.body);
        let invitation: InvitationResponse = invited.json();
        let accepted = self
            .accept(&invitation.invitation_token, NEW_PASSWORD)
            .await;
        assert_eq!(accepted.status, StatusCode::NO_CONTENT, "{}", accepted.body);
        invitation.user.user_id
    }

    async fn accept(&self, token: &str, password: &str) -> Answer {
        Self::send(
            self.http
                .post(self.server.url("/v1/invitations/accept"))
                .json(&json!({"token": token, "password": password})),
        )
        .await
    }

    async fn enrol(&self, code: &str) -> Answer {
        Self::send(
            self.http
                .post(self.server.url("/v1/enrol"))
                .json(&json!({"code": code, "device_name": "Kaunter depan"})),
        )
        .await
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

    async fn totp_secret(&self, email: &str) -> Vec<u8> {
        self.db
            .owner_client()
            .await
            .unwrap()
            .query_one(
                "SELECT totp_secret FROM users WHERE email_key = $1",
                &[&email],
            )
            .await
            .unwrap()
            .get(0)
    }
}

fn session_of(answer: &Answer) -> Session {
    let view: SessionView = answer.json();
    Session {
        cookie: answer.set_cookie.clone().expect("a session cookie"),
        csrf: view.csrf_token.clone(),
        view,
    }
}

fn now_step() -> i64 {
    totp::step_at(Utc::now().timestamp())
}

#[tokio::test]
async fn branches_are_added_renamed_and_closed_without_losing_anything() {
    let o = office().await;
    let admin = o.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;

    let listed: BranchesResponse = o.get(&admin, "/v1/branches").await.json();
    assert_eq!(listed.branches.len(), 1);
    assert_eq!(listed.branches[0].branch_id, o.created.branch_id);

    let added = o
        .post(
            &admin,
            "/v1/branches/add",
            json!({"name": "  Cawangan Bangsar ", "code": "bgr1"}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let bangsar: BranchView = added.json();
    assert_eq!(
        (bangsar.name.as_str(), bangsar.code.as_deref()),
        ("Cawangan Bangsar", Some("BGR1"))
    );
    assert_eq!(bangsar.closed_at, None);

    // Bad input: every field's problem, nothing written.
    let refused = o
        .post(
            &admin,
            "/v1/branches/add",
            json!({"name": "Dua\nbaris", "code": "no spaces!"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused.field_codes(),
        [
            ("name".to_owned(), "invalid_characters".to_owned()),
            ("code".to_owned(), "branch_code_invalid".to_owned())
        ]
    );
    let taken = o
        .post(
            &admin,
            "/v1/branches/add",
            json!({"name": "Lain", "code": "BGR1"}),
        )
        .await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(taken.field_codes()[0].1, "branch_code_taken");
    let nul = o
        .post(&admin, "/v1/branches/add", json!({"name": "A\u{0}B"}))
        .await;
    assert_eq!(nul.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", nul.body);
    let listed: BranchesResponse = o.get(&admin, "/v1/branches").await.json();
    assert_eq!(listed.branches.len(), 2);

    let renamed = o
        .post(
            &admin,
            "/v1/branches/rename",
            json!({"branch_id": bangsar.branch_id, "name": "Bangsar South"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK);
    assert_eq!(renamed.json::<BranchView>().name, "Bangsar South");
    let unknown = o
        .post(
            &admin,
            "/v1/branches/rename",
            json!({"branch_id": Uuid::now_v7(), "name": "X"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // A desk enrolled before the branch closes, and a code issued before it closes.
    let code = |valid_hours: Value| {
        let (o, admin, branch) = (&o, &admin, bangsar.branch_id);
        async move {
            o.post(
                admin,
                "/v1/devices/enrolment-codes",
                json!({"branch_id": branch, "valid_hours": valid_hours}),
            )
            .await
        }
    };
    let first = code(json!(null)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let first: EnrolmentCodeResponse = first.json();
    let hours = (first.expires_at - Utc::now()).num_hours();
    assert!((166..=168).contains(&hours), "{hours}");
    let desk: EnrolResponse = o.enrol(&first.code).await.json();
    assert_eq!(desk.branch_id, bangsar.branch_id);
    let unused: EnrolmentCodeResponse = code(json!(2)).await.json();
    for bad in [json!(0), json!(30 * 24 + 1)] {
        assert_eq!(code(bad).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    let closed = o
        .post(
            &admin,
            "/v1/branches/close",
            json!({"branch_id": bangsar.branch_id}),
        )
        .await;
    assert_eq!(closed.status, StatusCode::OK);
    let closed: BranchView = closed.json();
    assert!(closed.closed_at.is_some());
    assert_eq!(closed.active_devices, 1);
    // Closing again is the same answer.
    let again: BranchView = o
        .post(
            &admin,
            "/v1/branches/close",
            json!({"branch_id": bangsar.branch_id}),
        )
        .await
        .json();
    assert_eq!(again.closed_at, closed.closed_at);

    // No new desks: no code, and the unused code no longer enrols.
    let refused = code(json!(null)).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code(), error_code::BRANCH_CLOSED);
    let late = o.enrol(&unused.code).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert_eq!(late.code(), error_code::ENROLMENT_CODE_INVALID);
    // The desk already there still pushes what it holds.
    let patient = PatientRecord {
        id: Uuid::now_v7(),
        branch_id: bangsar.branch_id,
        full_name: "Pesakit Terakhir".into(),
        id_type: IdType::Passport,
        id_number: "A1234567".into(),
        phone: None,
        date_of_birth: None,
        sex: None,
    };
    let hlc = Hlc::new(u64::try_from(Utc::now().timestamp_millis()).unwrap(), 0)
        .unwrap()
        .as_u64();
    let pushed = o
        .http
        .post(o.server.url("/v1/sync/push"))
        .bearer_auth(&desk.device_token)
        .json(&PushRequest {
            schema_version: SCHEMA_VERSION,
            entries: vec![OutboxEntry {
                actor: None,
                approver: None,
                seq: 1,
                schema_version: SCHEMA_VERSION,
                change: Change {
                    entity: Entity::Patient,
                    row_id: patient.id,
                    branch_id: bangsar.branch_id,
                    stamp: WireStamp {
                        hlc,
                        device_id: desk.device_id,
                    },
                    fields: patient.fields(),
                    recorded_at: Utc::now(),
                },
            }],
        })
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), StatusCode::OK);
    let pushed: Value = pushed.json().await.unwrap();
    assert_eq!(pushed["acked_seq"], json!(1));
    assert_eq!(pushed["rejected"], json!([]), "{pushed}");
    // Closed branches list last and keep their name.
    let listed: BranchesResponse = o.get(&admin, "/v1/branches").await.json();
    assert_eq!(listed.branches[1].name, "Bangsar South");
    assert!(listed.branches[1].closed_at.is_some());

    // A VIEWER sees the branches but cannot change them or issue codes.
    o.add_person(&admin, "lihat@klinikaman.my", "VIEWER").await;
    let viewer = o.login("lihat@klinikaman.my", NEW_PASSWORD).await;
    assert_eq!(o.get(&viewer, "/v1/branches").await.status, StatusCode::OK);
    for (path, body) in [
        ("/v1/branches/add", json!({"name": "Curi"})),
        (
            "/v1/branches/rename",
            json!({"branch_id": o.created.branch_id, "name": "Curi"}),
        ),
        (
            "/v1/branches/close",
            json!({"branch_id": o.created.branch_id}),
        ),
        (
            "/v1/devices/enrolment-codes",
            json!({"branch_id": o.created.branch_id}),
        ),
    ] {
        let answer = o.post(&viewer, path, body).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(answer.code(), error_code::FORBIDDEN, "{path}");
    }
    // Without the CSRF token, nothing either.
    let no_csrf = Office::send(
        o.http
            .post(o.server.url("/v1/branches/close"))
            .header(COOKIE, &admin.cookie)
            .json(&json!({"branch_id": o.created.branch_id})),
    )
    .await;
    assert_eq!(no_csrf.code(), error_code::CSRF_FAILED);
    let listed: BranchesResponse = o.get(&admin, "/v1/branches").await.json();
    assert!(listed.branches[0].closed_at.is_none());
    drop(o.server);
    o.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn people_are_invited_accept_and_are_managed_and_the_last_admin_stays() {
    let o = office().await;
    let admin = o.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let staff_role = o.role(&admin, "STAFF").await;
    let admin_role = o.role(&admin, "ADMIN").await;

    let invited = o
        .post(
            &admin,
            "/v1/users/invite",
            json!({"name": "Siti Nur", "email": "Siti@KlinikAman.my", "role_ids": [staff_role]}),
        )
        .await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.body);
    let invitation: InvitationResponse = invited.json();
    let siti = invitation.user.user_id;
    assert_eq!(invitation.user.status, UserStatus::Pending);
    assert_eq!(invitation.user.roles[0].name, "STAFF");
    assert!(invitation.invitation_token.starts_with("ki1."));

    // The same e-mail in another case is the same person; bad fields all at once.
    let twice = o
        .post(
            &admin,
            "/v1/users/invite",
            json!({"name": "Siti Lain", "email": "siti@klinikaman.my", "role_ids": [staff_role]}),
        )
        .await;
    assert_eq!(twice.field_codes()[0].1, "email_taken");
    let bad = o
        .post(
            &admin,
            "/v1/users/invite",
            json!({"name": " ", "email": "not-an-email", "role_ids": []}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad.field_codes()
            .into_iter()
            .map(|(field, _)| field)
            .collect::<Vec<_>>(),
        ["name", "email", "role_ids"]
    );
    let foreign_role = o
        .post(
            &admin,
            "/v1/users/invite",
            json!({"name": "X", "email": "x@klinikaman.my", "role_ids": [Uuid::now_v7()]}),
        )
        .await;
    assert_eq!(foreign_role.status, StatusCode::NOT_FOUND);
    let users: UsersResponse = o.get(&admin, "/v1/users").await.json();
    assert_eq!(users.users.len(), 2, "the refused invitations left nothing");

    // Before accepting there is no login; a weak password is refused and changes nothing.
    let early = o
        .login_answer("siti@klinikaman.my", NEW_PASSWORD, None)
        .await;
    assert_eq!(early.code(), error_code::INVALID_CREDENTIALS);
    let weak = o.accept(&invitation.invitation_token, "pendek").await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(weak.field_codes()[0].1, "password_too_short");
    let with_email = o
        .accept(&invitation.invitation_token, "siti@klinikaman.my 2026")
        .await;
    assert_eq!(with_email.field_codes()[0].1, "password_contains_identity");
    assert_eq!(
        o.accept(&invitation.invitation_token, NEW_PASSWORD)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    // Used once only; garbled and forged tokens get the same answer.
    let tampered = format!(
        "{}A",
        &invitation.invitation_token[..invitation.invitation_token.len() - 1]
    );
    for token in [
        invitation.invitation_token.clone(),
        "ki1.garbled".to_owned(),
        tampered,
    ] {
        let answer = o.accept(&token, NEW_PASSWORD).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{token}");
        assert_eq!(answer.code(), error_code::INVITATION_INVALID);
    }
    let siti_session = o.login("siti@klinikaman.my", NEW_PASSWORD).await;
    assert_eq!(siti_session.view.roles, ["STAFF"]);
    // STAFF do not manage people.
    assert_eq!(
        o.get(&siti_session, "/v1/users").await.code(),
        error_code::FORBIDDEN
    );

    // Set away: her session ends at once and she cannot log in; back: she can.
    let away = o
        .post(
            &admin,
            "/v1/users/status",
            json!({"user_id": siti, "status": "INACTIVE"}),
        )
        .await;
    assert_eq!(away.status, StatusCode::OK, "{}", away.body);
    assert_eq!(away.json::<UserView>().status, UserStatus::Inactive);
    assert_eq!(
        o.get(&siti_session, "/v1/auth/session").await.code(),
        error_code::SESSION_INVALID
    );
    assert_eq!(
        o.login_answer("siti@klinikaman.my", NEW_PASSWORD, None)
            .await
            .code(),
        error_code::INVALID_CREDENTIALS
    );
    let back = o
        .post(
            &admin,
            "/v1/users/status",
            json!({"user_id": siti, "status": "ACTIVE"}),
        )
        .await;
    assert_eq!(back.json::<UserView>().status, UserStatus::Active);
    o.login("siti@klinikaman.my", NEW_PASSWORD).await;
    // Rules of the core's table: no PENDING by hand, not one's own status.
    let pending = o
        .post(
            &admin,
            "/v1/users/status",
            json!({"user_id": siti, "status": "PENDING"}),
        )
        .await;
    assert_eq!(pending.field_codes()[0].1, "status_not_settable");
    let own = o
        .post(
            &admin,
            "/v1/users/status",
            json!({"user_id": admin.view.user_id, "status": "DISABLED"}),
        )
        .await;
    assert_eq!(own.field_codes()[0].1, "own_status");

    // The only ADMIN cannot drop the role.
    let alone = o
        .post(
            &admin,
            "/v1/users/roles",
            json!({"user_id": admin.view.user_id, "role_ids": [staff_role]}),
        )
        .await;
    assert_eq!(alone.status, StatusCode::CONFLICT);
    assert_eq!(alone.code(), error_code::LAST_ADMIN);
    assert_eq!(
        o.get(&admin, "/v1/auth/session")
            .await
            .json::<SessionView>()
            .roles,
        ["ADMIN"],
        "the refused change changed nothing and kept the session"
    );

    // Siti becomes ADMIN too: her sessions end (new privileges mean a new login).
    let siti_session = o.login("siti@klinikaman.my", NEW_PASSWORD).await;
    let promoted = o
        .post(
            &admin,
            "/v1/users/roles",
            json!({"user_id": siti, "role_ids": [admin_role, staff_role, staff_role]}),
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
    assert_eq!(
        promoted.set_cookie, None,
        "only the caller gets a new cookie"
    );
    let names: Vec<String> = promoted
        .json::<UserView>()
        .roles
        .into_iter()
        .map(|role| role.name)
        .collect();
    assert_eq!(names, ["ADMIN", "STAFF"]);
    assert_eq!(
        o.get(&siti_session, "/v1/auth/session").await.code(),
        error_code::SESSION_INVALID
    );
    let siti_admin = o.login("siti@klinikaman.my", NEW_PASSWORD).await;

    // Now the first ADMIN steps down: the answer carries a new session; the old one is gone.
    let stepped_down = o
        .post(
            &admin,
            "/v1/users/roles",
            json!({"user_id": admin.view.user_id, "role_ids": [staff_role]}),
        )
        .await;
    assert_eq!(stepped_down.status, StatusCode::OK, "{}", stepped_down.body);
    let renewed_cookie = stepped_down.set_cookie.clone().expect("a new session");
    assert_ne!(renewed_cookie, admin.cookie);
    assert_eq!(
        o.get(&admin, "/v1/auth/session").await.code(),
        error_code::SESSION_INVALID
    );
    let renewed = Session {
        cookie: renewed_cookie,
        csrf: stepped_down
            .csrf
            .clone()
            .expect("the new session's CSRF token"),
        ..admin.clone()
    };
    let view: SessionView = o.get(&renewed, "/v1/auth/session").await.json();
    assert_eq!(view.roles, ["STAFF"]);
    assert_eq!(Some(view.csrf_token), stepped_down.csrf);
    // The token that came back works for the next change (logging out, here).
    let out = o.post(&renewed, "/v1/auth/logout", json!({})).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    let renewed = o.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        o.get(&renewed, "/v1/users").await.code(),
        error_code::FORBIDDEN
    );

    // Siti, now the only ADMIN, blocks the first one's account: its session ends.
    let first_admin = admin.view.user_id;
    let blocked = o
        .post(
            &siti_admin,
            "/v1/users/status",
            json!({"user_id": first_admin, "status": "DISABLED"}),
        )
        .await;
    assert_eq!(blocked.json::<UserView>().status, UserStatus::Disabled);
    assert_eq!(
        o.get(&renewed, "/v1/auth/session").await.code(),
        error_code::SESSION_INVALID
    );

    // An invitation that expired is replaced by a new one; the old one stops working.
    let late: InvitationResponse = o
        .post(
            &siti_admin,
            "/v1/users/invite",
            json!({"name": "Lambat", "email": "lambat@klinikaman.my", "role_ids": [staff_role]}),
        )
        .await
        .json();
    o.owner_exec(
        "UPDATE users SET invitation_expires_at = now() - interval '1 second'
         WHERE email_key = 'lambat@klinikaman.my'",
    )
    .await;
    assert_eq!(
        o.accept(&late.invitation_token, NEW_PASSWORD).await.code(),
        error_code::INVITATION_INVALID
    );
    let again: InvitationResponse = o
        .post(
            &siti_admin,
            "/v1/users/reinvite",
            json!({"user_id": late.user.user_id}),
        )
        .await
        .json();
    assert_eq!(
        o.accept(&again.invitation_token, NEW_PASSWORD).await.status,
        StatusCode::NO_CONTENT
    );
    let not_pending = o
        .post(
            &siti_admin,
            "/v1/users/reinvite",
            json!({"user_id": late.user.user_id}),
        )
        .await;
    assert_eq!(not_pending.field_codes()[0].1, "not_pending");
    // A withdrawn invitation (DISABLED while PENDING) cannot be accepted.
    let withdrawn: InvitationResponse = o
        .post(
            &siti_admin,
            "/v1/users/invite",
            json!({"name": "Batal", "email": "batal@klinikaman.my", "role_ids": [staff_role]}),
        )
        .await
        .json();
    o.post(
        &siti_admin,
        "/v1/users/status",
        json!({"user_id": withdrawn.user.user_id, "status": "DISABLED"}),
    )
    .await;
    assert_eq!(
        o.accept(&withdrawn.invitation_token, NEW_PASSWORD)
            .await
            .code(),
        error_code::INVITATION_INVALID
    );
    // Nobody can make a never-accepted account ACTIVE (it would have no password, yet count as
    // whatever it was invited as); it is invited again instead.
    let reactivated = o
        .post(
            &siti_admin,
            "/v1/users/status",
            json!({"user_id": withdrawn.user.user_id, "status": "ACTIVE"}),
        )
        .await;
    assert_eq!(reactivated.field_codes()[0].1, "invitation_not_accepted");
    let renewed_invitation: InvitationResponse = o
        .post(
            &siti_admin,
            "/v1/users/reinvite",
            json!({"user_id": withdrawn.user.user_id}),
        )
        .await
        .json();
    assert_eq!(renewed_invitation.user.status, UserStatus::Pending);
    assert_eq!(
        o.accept(&renewed_invitation.invitation_token, NEW_PASSWORD)
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    let users: UsersResponse = o.get(&siti_admin, "/v1/users").await.json();
    let statuses: Vec<(String, UserStatus)> = users
        .users
        .iter()
        .map(|user| (user.email.to_lowercase(), user.status))
        .collect();
    assert!(statuses.contains(&(ADMIN_EMAIL.to_owned(), UserStatus::Disabled)));
    assert!(statuses.contains(&("lambat@klinikaman.my".to_owned(), UserStatus::Active)));
    assert!(statuses.contains(&("batal@klinikaman.my".to_owned(), UserStatus::Active)));
    drop(o.server);
    o.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn an_invitation_does_not_outlive_its_inviters_authority() {
    let o = office().await;
    let admin = o.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let leaving = o.add_person(&admin, "pergi@klinikaman.my", "ADMIN").await;
    let leaving_session = o.login("pergi@klinikaman.my", NEW_PASSWORD).await;
    let admin_role = o.role(&leaving_session, "ADMIN").await;
    // Before being blocked, the leaving ADMIN invites a second account of theirs as ADMIN.
    let planted: InvitationResponse = o
        .post(
            &leaving_session,
            "/v1/users/invite",
            json!({"name": "Pintu Belakang", "email": "belakang@contoh.my",
                   "role_ids": [admin_role]}),
        )
        .await
        .json();
    // A person invited by someone who stays keeps their invitation.
    let kept: InvitationResponse = o
        .post(
            &admin,
            "/v1/users/invite",
            json!({"name": "Baru", "email": "baru@klinikaman.my", "role_ids": [admin_role]}),
        )
        .await
        .json();
    let blocked = o
        .post(
            &admin,
            "/v1/users/status",
            json!({"user_id": leaving, "status": "DISABLED"}),
        )
        .await;
    assert_eq!(blocked.status, StatusCode::OK, "{}", blocked.body);
    assert_eq!(
        o.accept(&planted.invitation_token, NEW_PASSWORD)
            .await
            .code(),
        error_code::INVITATION_INVALID
    );
    let users: UsersResponse = o.get(&admin, "/v1/users").await.json();
    let status = |email: &str| {
        users
            .users
            .iter()
            .find(|user| user.email == email)
            .unwrap()
            .status
    };
    assert_eq!(status("belakang@contoh.my"), UserStatus::Disabled);
    assert_eq!(status("baru@klinikaman.my"), UserStatus::Pending);
    assert_eq!(
        o.accept(&kept.invitation_token, NEW_PASSWORD).await.status,
        StatusCode::NO_CONTENT
    );
    // A login with a NUL in it is a wrong guess, not a server error.
    let nul = o
        .login_answer("a\u{0}b@klinikaman.my", ADMIN_PASSWORD, None)
        .await;
    assert_eq!(nul.code(), error_code::INVALID_CREDENTIALS, "{}", nul.body);
    let nul = Office::send(o.http.post(o.server.url("/v1/auth/login")).json(
        &json!({"business": "klinik\u{0}aman", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    ))
    .await;
    assert_eq!(nul.code(), error_code::INVALID_CREDENTIALS, "{}", nul.body);
    drop(o.server);
    o.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let o = office().await;
    let admin = o.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let staff_role = o.role(&admin, "STAFF").await;
    let other = o.add_person(&admin, "kedua@klinikaman.my", "ADMIN").await;
    let second = o.login("kedua@klinikaman.my", NEW_PASSWORD).await;
    for _ in 0..5 {
        let (a, b) = tokio::join!(
            o.post(
                &admin,
                "/v1/users/roles",
                json!({"user_id": other, "role_ids": [staff_role]})
            ),
            o.post(
                &second,
                "/v1/users/roles",
                json!({"user_id": admin.view.user_id, "role_ids": [staff_role]})
            ),
        );
        let statuses = [a.status, b.status];
        // One may win (or a revoked session loses first); never both.
        assert!(
            !statuses.iter().all(|s| *s == StatusCode::OK),
            "{statuses:?}"
        );
        let admins: i64 =
            o.db.owner_client()
                .await
                .unwrap()
                .query_one(
                    "SELECT count(*) FROM users u JOIN user_roles ur USING (tenant_id, user_id)
                 JOIN roles r USING (tenant_id, role_id)
                 WHERE r.name = 'ADMIN' AND u.status = 'ACTIVE'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
        assert!(admins >= 1, "{statuses:?}");
        if statuses.contains(&StatusCode::OK) {
            break;
        }
    }
    drop(o.server);
    o.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_second_factor_is_set_up_required_at_login_and_never_accepted_twice() {
    let o = office().await;
    let admin = o.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(!admin.view.totp_enabled);

    let setup = o.post(&admin, "/v1/auth/totp/setup", json!({})).await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.body);
    let uri = setup.body["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Kaunter%3AKlinik%20Aman"),
        "{uri}"
    );
    let secret = o.totp_secret(ADMIN_EMAIL).await;
    assert_eq!(setup.body["secret"], json!(totp::base32(&secret)));
    // Wrong codes from one's own session are throttled like wrong passwords.
    let throttled_session = o.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for _ in 0..5 {
        let wrong = o
            .post(
                &throttled_session,
                "/v1/auth/totp/confirm",
                json!({"code": "abcdef"}),
            )
            .await;
        assert_eq!(wrong.code(), error_code::TOTP_INVALID);
    }
    let locked = o
        .post(
            &throttled_session,
            "/v1/auth/totp/confirm",
            json!({"code": totp::code_at(&secret, now_step())}),
        )
        .await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.body
    );
    o.owner_exec("DELETE FROM login_failures").await;
    // Not live until confirmed: login still needs only the password.
    assert_eq!(
        o.login_answer(ADMIN_EMAIL, ADMIN_PASSWORD, None)
            .await
            .status,
        StatusCode::OK
    );
    let admin = o.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let wrong = o
        .post(&admin, "/v1/auth/totp/confirm", json!({"code": "000000"}))
        .await;
    // (000000 is right once in a million steps; the next line would then fail loudly.)
    assert_eq!(wrong.code(), error_code::TOTP_INVALID);

    let step = now_step();
    let confirmed = o
        .post(
            &admin,
            "/v1/auth/totp/confirm",
            json!({"code": totp::code_at(&secret, step)}),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    let with_factor = session_of(&confirmed);
    assert!(with_factor.view.totp_enabled);
    // A privilege change: the session it was set up in is gone, the new one works.
    assert_eq!(
        o.get(&admin, "/v1/auth/session").await.code(),
        error_code::SESSION_INVALID
    );
    assert_eq!(
        o.get(&with_factor, "/v1/devices").await.status,
        StatusCode::OK
    );
    assert_eq!(
        o.post(&with_factor, "/v1/auth/totp/setup", json!({}))
            .await
            .code(),
        error_code::TOTP_STATE
    );

    // Login: the password alone is not enough; a wrong code is a failed login.
    let no_code = o.login_answer(ADMIN_EMAIL, ADMIN_PASSWORD, None).await;
    assert_eq!(no_code.status, StatusCode::UNAUTHORIZED);
    assert_eq!(no_code.code(), error_code::TOTP_REQUIRED);
    assert_eq!(no_code.set_cookie, None);
    let wrong_password = o
        .login_answer(ADMIN_EMAIL, "not the password at all", None)
        .await;
    assert_eq!(
        wrong_password.code(),
        error_code::INVALID_CREDENTIALS,
        "the second factor is asked for only after the right password"
    );
    let bad = o
        .login_answer(ADMIN_EMAIL, ADMIN_PASSWORD, Some("12345x"))
        .await;
    assert_eq!(bad.code(), error_code::TOTP_INVALID);
    // The code that confirmed the factor was used: it does not log in.
    let replay = o
        .login_answer(
            ADMIN_EMAIL,
            ADMIN_PASSWORD,
            Some(&totp::code_at(&secret, step)),
        )
        .await;
    assert_eq!(replay.code(), error_code::TOTP_INVALID);
    let next = totp::code_at(&secret, step + 1);
    let good = o
        .login_answer(ADMIN_EMAIL, ADMIN_PASSWORD, Some(&next))
        .await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.body);
    let again = o
        .login_answer(ADMIN_EMAIL, ADMIN_PASSWORD, Some(&next))
        .await;
    assert_eq!(
        again.code(),
        error_code::TOTP_INVALID,
        "a code is used once"
    );

    // Wrong codes count as failed logins: five since the last success lock the account, the
    // right password and a fresh code included.
    for wrong in ["999999", "999998", "999997", "999996"] {
        let answer = o
            .login_answer(ADMIN_EMAIL, ADMIN_PASSWORD, Some(wrong))
            .await;
        assert_eq!(answer.code(), error_code::TOTP_INVALID, "{wrong}");
    }
    let locked = o
        .login_answer(
            ADMIN_EMAIL,
            ADMIN_PASSWORD,
            Some(&totp::code_at(&secret, now_step() + 1)),
        )
        .await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.body
    );
    drop(o.server);
    o.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_business_can_require_its_admins_to_use_a_second_factor() {
    let o = office().await;
    let admin = o.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    o.add_person(&admin, "staf@klinikaman.my", "STAFF").await;
    let required = o
        .post(
            &admin,
            "/v1/settings/security",
            json!({"require_admin_totp": true}),
        )
        .await;
    assert_eq!(required.status, StatusCode::OK, "{}", required.body);
    // STAFF cannot change it.
    let staff_session = o.login("staf@klinikaman.my", NEW_PASSWORD).await;
    assert!(!staff_session.view.totp_setup_required, "only ADMINs must");
    assert_eq!(
        o.post(
            &staff_session,
            "/v1/settings/security",
            json!({"require_admin_totp": false})
        )
        .await
        .code(),
        error_code::FORBIDDEN
    );

    // The ADMIN is not locked out: the session may only set up the factor.
    let admin = o.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(admin.view.totp_setup_required);
    for answer in [
        o.get(&admin, "/v1/devices").await,
        o.get(&admin, "/v1/users").await,
        o.get(&admin, "/v1/branches").await,
        o.post(
            &admin,
            "/v1/settings/security",
            json!({"require_admin_totp": false}),
        )
        .await,
    ] {
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
        assert_eq!(answer.code(), error_code::TOTP_SETUP_REQUIRED);
    }
    assert_eq!(
        o.get(&admin, "/v1/auth/session").await.status,
        StatusCode::OK
    );
    o.post(&admin, "/v1/auth/totp/setup", json!({})).await;
    let secret = o.totp_secret(ADMIN_EMAIL).await;
    let step = now_step();
    let confirmed = o
        .post(
            &admin,
            "/v1/auth/totp/confirm",
            json!({"code": totp::code_at(&secret, step)}),
        )
        .await;
    let admin = session_of(&confirmed);
    assert!(!admin.view.totp_setup_required);
    assert_eq!(o.get(&admin, "/v1/users").await.status, StatusCode::OK);
    // While required, an ADMIN cannot turn theirs off.
    let off = o
        .post(
            &admin,
            "/v1/auth/totp/disable",
            json!({"code": totp::code_at(&secret, step + 1)}),
        )
        .await;
    assert_eq!(off.code(), error_code::TOTP_STATE);

    // Another ADMIN removes a lost factor: their sessions end; at the next login they must set
    // one up again.
    let second = o.add_person(&admin, "kedua@klinikaman.my", "ADMIN").await;
    let second_session = o.login("kedua@klinikaman.my", NEW_PASSWORD).await;
    assert!(second_session.view.totp_setup_required);
    o.post(&second_session, "/v1/auth/totp/setup", json!({}))
        .await;
    let second_secret = o.totp_secret("kedua@klinikaman.my").await;
    let second_session = session_of(
        &o.post(
            &second_session,
            "/v1/auth/totp/confirm",
            json!({"code": totp::code_at(&second_secret, now_step())}),
        )
        .await,
    );
    let reset = o
        .post(&admin, "/v1/users/totp-reset", json!({"user_id": second}))
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    assert!(!reset.json::<UserView>().totp_enabled);
    assert_eq!(
        o.get(&second_session, "/v1/auth/session").await.code(),
        error_code::SESSION_INVALID
    );
    let relogin = o.login("kedua@klinikaman.my", NEW_PASSWORD).await;
    assert!(relogin.view.totp_setup_required);
    let own = o
        .post(
            &admin,
            "/v1/users/totp-reset",
            json!({"user_id": admin.view.user_id}),
        )
        .await;
    assert_eq!(own.field_codes()[0].1, "own_second_factor");

    // Not required any more: the factor can be turned off with a current code.
    o.post(
        &admin,
        "/v1/settings/security",
        json!({"require_admin_totp": false}),
    )
    .await;
    let off = o
        .post(
            &admin,
            "/v1/auth/totp/disable",
            json!({"code": totp::code_at(&secret, step + 1)}),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    let admin = session_of(&off);
    assert!(!admin.view.totp_enabled);
    assert_eq!(
        o.login_answer(ADMIN_EMAIL, ADMIN_PASSWORD, None)
            .await
            .status,
        StatusCode::OK
    );
    drop(o.server);
    o.db.drop_db().await.unwrap();
}
