//! The HTTP API over real HTTP, against the real server on a free port and a fresh PostgreSQL
//! database per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::Utc;
use kaunter_protocol::http::{
    Change, ChangeBody, EnrolRequest, EnrolResponse, ErrorBody, OutboxEntry, PatientRecord,
    PullResponse, PushRequest, PushResponse, error_code,
};
use kaunter_protocol::{IdType, SCHEMA_VERSION, Sex};
use kaunter_sync_server::admin::{self, CreatedBusiness, DEFAULT_ENROLMENT_CODE_TTL};
use kaunter_sync_server::ids::{BranchId, DeviceId, TenantId};
use kaunter_sync_server::test_support::{TestDatabase, TestServer};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

struct Fixture {
    server: TestServer,
    http: reqwest::Client,
    db: TestDatabase,
}

async fn fixture() -> Fixture {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    Fixture {
        server,
        http: reqwest::Client::new(),
        db,
    }
}

impl Fixture {
    async fn business(&self, name: &str) -> CreatedBusiness {
        admin::create_business(self.server.pool(), name, "Main", None)
            .await
            .unwrap()
    }

    async fn code(&self, tenant: TenantId, branch: BranchId) -> String {
        admin::create_enrolment_code(
            self.server.pool(),
            tenant,
            branch,
            DEFAULT_ENROLMENT_CODE_TTL,
        )
        .await
        .unwrap()
    }

    async fn try_enrol(&self, code: &str) -> reqwest::Response {
        self.http
            .post(self.server.url("/v1/enrol"))
            .json(&EnrolRequest {
                code: code.to_owned(),
                device_name: "Front desk".to_owned(),
            })
            .send()
            .await
            .unwrap()
    }

    /// A new device of `branch`.
    async fn enrol(&self, tenant: TenantId, branch: BranchId) -> EnrolResponse {
        let code = self.code(tenant, branch).await;
        let response = self.try_enrol(&code).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn push(&self, token: &str, request: &PushRequest) -> reqwest::Response {
        self.http
            .post(self.server.url("/v1/sync/push"))
            .bearer_auth(token)
            .json(request)
            .send()
            .await
            .unwrap()
    }

    async fn push_ok(&self, token: &str, request: &PushRequest) -> i64 {
        let response = self.push(token, request).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<PushResponse>().await.unwrap().acked_seq
    }

    async fn pull(&self, token: &str, cursor: i64, limit: Option<i64>) -> reqwest::Response {
        let mut url = format!("{}?cursor={cursor}", self.server.url("/v1/sync/pull"));
        if let Some(limit) = limit {
            url.push_str(&format!("&limit={limit}"));
        }
        self.http.get(url).bearer_auth(token).send().await.unwrap()
    }

    async fn pull_ok(&self, token: &str, cursor: i64, limit: Option<i64>) -> PullResponse {
        let response = self.pull(token, cursor, limit).await;
        assert_eq!(response.status(), StatusCode::OK);
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
}

/// An error answer: its status and its JSON body (which must parse as ErrorBody).
async fn error(response: reqwest::Response) -> (StatusCode, ErrorBody) {
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap().to_owned());
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "{status}"
    );
    (status, response.json().await.unwrap())
}

fn patient(branch: Uuid, name: &str) -> PatientRecord {
    let now = Utc::now();
    PatientRecord {
        id: Uuid::now_v7(),
        branch_id: branch,
        full_name: name.to_owned(),
        id_type: IdType::Mykad,
        id_number: "900101145678".to_owned(),
        phone: Some("+60123456789".to_owned()),
        date_of_birth: None,
        sex: Some(Sex::Female),
        created_at: now,
        updated_at: now,
    }
}

fn entry(seq: i64, record: PatientRecord) -> OutboxEntry {
    OutboxEntry {
        seq,
        change: Change {
            recorded_at: Utc::now(),
            body: ChangeBody::PatientUpsert(record),
        },
    }
}

/// A batch of new patients of `branch` numbered `seqs`.
fn batch(branch: Uuid, seqs: std::ops::RangeInclusive<i64>) -> PushRequest {
    PushRequest {
        schema_version: SCHEMA_VERSION,
        entries: seqs
            .map(|seq| entry(seq, patient(branch, &format!("Patient {seq}"))))
            .collect(),
    }
}

fn pulled_names(response: &PullResponse) -> Vec<String> {
    response
        .changes
        .iter()
        .map(|pulled| match &pulled.change.body {
            ChangeBody::PatientUpsert(record) => record.full_name.clone(),
        })
        .collect()
}

#[tokio::test]
async fn health_answers_ok() {
    let f = fixture().await;
    let response = f.http.get(f.server.url("/v1/health")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, json!({"status": "ok"}));
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn an_enrolment_code_works_once() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let code = f.code(business.tenant_id, business.branch_id).await;
    assert_eq!(code.len(), 14, "{code}");

    // Typed sloppily: lower case, spaces instead of dashes.
    let sloppy = code.to_lowercase().replace('-', " ");
    let response = f.try_enrol(&sloppy).await;
    assert_eq!(response.status(), StatusCode::OK);
    let enrolled: EnrolResponse = response.json().await.unwrap();
    assert_eq!(enrolled.tenant_id, business.tenant_id.as_uuid());
    assert_eq!(enrolled.branch_id, business.branch_id.as_uuid());
    assert_eq!(enrolled.business_name, "Klinik Demo");
    assert_eq!(enrolled.branch_name, "Main");
    assert!(enrolled.device_token.starts_with(&format!(
        "kt1.{}.{}.",
        enrolled.tenant_id, enrolled.device_id
    )));
    // The token works.
    let pulled = f.pull_ok(&enrolled.device_token, 0, None).await;
    assert!(pulled.changes.is_empty());

    let (status, body) = error(f.try_enrol(&code).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body.code, error_code::ENROLMENT_CODE_INVALID);
    assert_eq!(f.count("devices").await, 1);

    // Unknown and garbled codes get the very same answer.
    for other in ["0000-0000-0000", "not a code", ""] {
        let (status, other_body) = error(f.try_enrol(other).await).await;
        assert_eq!(
            (status, &other_body),
            (StatusCode::BAD_REQUEST, &body),
            "{other:?}"
        );
    }
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn an_expired_enrolment_code_is_invalid() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let code = f.code(business.tenant_id, business.branch_id).await;
    f.db.owner_client()
        .await
        .unwrap()
        .execute(
            "UPDATE enrolment_codes SET expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    let (status, body) = error(f.try_enrol(&code).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body.code, error_code::ENROLMENT_CODE_INVALID);
    assert_eq!(f.count("devices").await, 0);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn racing_enrolments_with_one_code_enrol_one_device() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let code = f.code(business.tenant_id, business.branch_id).await;
    let (first, second) = tokio::join!(f.try_enrol(&code), f.try_enrol(&code));
    let mut statuses = [first.status(), second.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::BAD_REQUEST]);
    assert_eq!(f.count("devices").await, 1);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_unauthorized() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    let token = device.device_token.clone();
    let secret_start = token.rfind('.').unwrap() + 1;
    let mut wrong_secret = token.clone();
    let flipped = if &token[secret_start..=secret_start] == "A" {
        "B"
    } else {
        "A"
    };
    wrong_secret.replace_range(secret_start..=secret_start, flipped);
    let unknown_device = token.replace(&device.device_id.to_string(), &Uuid::now_v7().to_string());
    let other_tenant = token.replace(&device.tenant_id.to_string(), &Uuid::now_v7().to_string());

    let mut answers = Vec::new();
    for bad in [
        "garbage".to_owned(),
        "kt1.a.b.c".to_owned(),
        wrong_secret,
        unknown_device,
        other_tenant,
        format!("{token}x"),
    ] {
        answers.push(error(f.pull(&bad, 0, None).await).await);
        answers.push(error(f.push(&bad, &batch(device.branch_id, 1..=1)).await).await);
    }
    let no_header = f
        .http
        .get(f.server.url("/v1/sync/pull"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        no_header
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer")
    );
    answers.push(error(no_header).await);
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::UNAUTHORIZED);
        assert_eq!(body, &answers[0].1, "every failure must look the same");
    }
    assert_eq!(answers[0].1.code, error_code::UNAUTHORIZED);
    assert_eq!(f.count("changes").await, 0);

    // A revoked device is turned away like a stranger.
    assert_eq!(f.pull(&token, 0, None).await.status(), StatusCode::OK);
    admin::revoke_device(
        f.server.pool(),
        business.tenant_id,
        DeviceId::from_uuid(device.device_id),
    )
    .await
    .unwrap();
    let (status, body) = error(f.pull(&token, 0, None).await).await;
    assert_eq!((status, body), answers[0]);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_replayed_batch_is_applied_once() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    let request = batch(device.branch_id, 1..=1);

    assert_eq!(f.push_ok(&device.device_token, &request).await, 1);
    assert_eq!(f.push_ok(&device.device_token, &request).await, 1);
    assert_eq!(f.count("patients").await, 1);
    assert_eq!(f.count("changes").await, 1);

    // A batch that overlaps the high-water mark applies only its new part.
    let mut overlapping = batch(device.branch_id, 1..=3);
    overlapping.entries[0] = request.entries[0].clone();
    assert_eq!(f.push_ok(&device.device_token, &overlapping).await, 3);
    assert_eq!(f.push_ok(&device.device_token, &overlapping).await, 3);
    assert_eq!(f.count("patients").await, 3);
    assert_eq!(f.count("changes").await, 3);

    // An empty batch just reports the high-water mark.
    let empty = PushRequest {
        schema_version: SCHEMA_VERSION,
        entries: Vec::new(),
    };
    assert_eq!(f.push_ok(&device.device_token, &empty).await, 3);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_gap_is_refused_with_the_expected_seq() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    assert_eq!(
        f.push_ok(&device.device_token, &batch(device.branch_id, 1..=2))
            .await,
        2
    );

    let (status, body) = error(
        f.push(&device.device_token, &batch(device.branch_id, 4..=5))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body.code, error_code::SEQUENCE_GAP);
    assert_eq!(body.expected_seq, Some(3));
    assert_eq!(f.count("changes").await, 2);

    // Entries that are not consecutive are malformed.
    let mut holey = batch(device.branch_id, 3..=4);
    holey.entries[1].seq = 6;
    let (status, body) = error(f.push(&device.device_token, &holey).await).await;
    assert_eq!(
        (status, body.code.as_str()),
        (StatusCode::BAD_REQUEST, error_code::BAD_REQUEST)
    );
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn an_unsupported_schema_version_is_refused() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    let mut request = batch(device.branch_id, 1..=1);
    request.schema_version = 999;
    let (status, body) = error(f.push(&device.device_token, &request).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body.code, error_code::UNSUPPORTED_SCHEMA_VERSION);
    assert_eq!(f.count("changes").await, 0);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn invalid_records_are_refused_with_their_fields_and_nothing_is_stored() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    let mut request = batch(device.branch_id, 1..=3);
    let ChangeBody::PatientUpsert(record) = &mut request.entries[2].change.body;
    record.full_name = " ".to_owned();
    record.phone = Some("012-345 6789".to_owned());

    let (status, body) = error(f.push(&device.device_token, &request).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body.code, error_code::VALIDATION_FAILED);
    let fields: Vec<(&str, &str)> = body
        .fields
        .iter()
        .map(|field| (field.field.as_str(), field.code.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("entries[2].full_name", "required"),
            ("entries[2].phone", "phone_invalid")
        ]
    );
    assert_eq!(f.count("patients").await, 0);
    assert_eq!(f.count("changes").await, 0);
    // The high-water mark did not move either.
    assert_eq!(
        f.push_ok(&device.device_token, &batch(device.branch_id, 1..=1))
            .await,
        1
    );
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_json() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    let big = json!({
        "schema_version": SCHEMA_VERSION,
        "entries": [],
        "padding": "x".repeat(1024 * 1024 + 1),
    });
    let response = f
        .http
        .post(f.server.url("/v1/sync/push"))
        .bearer_auth(&device.device_token)
        .json(&big)
        .send()
        .await
        .unwrap();
    let (status, body) = error(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body.code, error_code::PAYLOAD_TOO_LARGE);

    // Also before any authentication.
    let response = f
        .http
        .post(f.server.url("/v1/enrol"))
        .json(&json!({"code": "x".repeat(2 * 1024 * 1024), "device_name": "Desk"}))
        .send()
        .await
        .unwrap();
    let (status, body) = error(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body.code, error_code::PAYLOAD_TOO_LARGE);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn malformed_json_and_unknown_fields_are_bad_requests() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    let bodies = [
        "{not json".to_owned(),
        json!({"schema_version": 1, "entries": [], "device_id": Uuid::now_v7()}).to_string(),
        json!({"schema_version": 1}).to_string(),
        json!({"schema_version": "one", "entries": []}).to_string(),
    ];
    for body in bodies {
        let response = f
            .http
            .post(f.server.url("/v1/sync/push"))
            .bearer_auth(&device.device_token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let (status, error) = error(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error.code, error_code::BAD_REQUEST, "{body}");
    }
    // Unknown field in enrolment, and a body that is not declared JSON.
    let response = f
        .http
        .post(f.server.url("/v1/enrol"))
        .json(&json!({"code": "0000-0000-0000", "device_name": "x", "tenant_id": Uuid::now_v7()}))
        .send()
        .await
        .unwrap();
    assert_eq!(error(response).await.1.code, error_code::BAD_REQUEST);
    let response = f
        .http
        .post(f.server.url("/v1/enrol"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(error(response).await.1.code, error_code::BAD_REQUEST);
    // Bad query strings too.
    for query in ["cursor=abc", "cursor=-1", "limit=0", "cursor=1&device=2"] {
        let response = f
            .http
            .get(format!("{}?{query}", f.server.url("/v1/sync/pull")))
            .bearer_auth(&device.device_token)
            .send()
            .await
            .unwrap();
        let (status, body) = error(response).await;
        assert_eq!(
            (status, body.code.as_str()),
            (StatusCode::BAD_REQUEST, error_code::BAD_REQUEST),
            "{query}"
        );
    }
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let f = fixture().await;
    let (status, body) = error(f.http.get(f.server.url("/v1/nope")).send().await.unwrap()).await;
    assert_eq!(
        (status, body.code.as_str()),
        (StatusCode::NOT_FOUND, error_code::NOT_FOUND)
    );
    let (status, body) = error(f.http.get(f.server.url("/")).send().await.unwrap()).await;
    assert_eq!(
        (status, body.code.as_str()),
        (StatusCode::NOT_FOUND, error_code::NOT_FOUND)
    );
    let (status, _) = error(
        f.http
            .delete(f.server.url("/v1/sync/push"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn pull_pages_through_every_change_in_order() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let writer = f.enrol(business.tenant_id, business.branch_id).await;
    let reader = f.enrol(business.tenant_id, business.branch_id).await;
    assert_eq!(
        f.push_ok(&writer.device_token, &batch(writer.branch_id, 1..=3))
            .await,
        3
    );
    assert_eq!(
        f.push_ok(&writer.device_token, &batch(writer.branch_id, 4..=5))
            .await,
        5
    );

    let mut cursor = 0;
    let mut names = Vec::new();
    let mut cursors = Vec::new();
    let mut pages = 0;
    loop {
        let page = f.pull_ok(&reader.device_token, cursor, Some(2)).await;
        pages += 1;
        assert!(page.changes.len() <= 2);
        names.extend(pulled_names(&page));
        cursors.extend(page.changes.iter().map(|change| change.cursor));
        assert!(
            page.changes
                .iter()
                .all(|c| c.origin_device_id == writer.device_id)
        );
        cursor = page.next_cursor;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        [
            "Patient 1",
            "Patient 2",
            "Patient 3",
            "Patient 4",
            "Patient 5"
        ]
    );
    assert_eq!(cursors, [1, 2, 3, 4, 5]);
    assert_eq!(cursor, 5);

    // Nothing new: the cursor stays put.
    let empty = f.pull_ok(&reader.device_token, 5, Some(2)).await;
    assert!(empty.changes.is_empty() && !empty.has_more);
    assert_eq!(empty.next_cursor, 5);
    // The record comes back as it was pushed.
    let full = f.pull_ok(&reader.device_token, 0, None).await;
    assert_eq!(full.changes.len(), 5);
    assert!(!full.has_more);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn pulled_changes_are_what_was_pushed() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    let mut request = batch(device.branch_id, 1..=1);
    let ChangeBody::PatientUpsert(record) = &mut request.entries[0].change.body;
    record.date_of_birth = chrono::NaiveDate::from_ymd_opt(1990, 1, 1);
    record.phone = None;
    f.push_ok(&device.device_token, &request).await;
    let pulled = f.pull_ok(&device.device_token, 0, None).await;
    assert_eq!(pulled.changes.len(), 1);
    assert_eq!(pulled.changes[0].change, request.entries[0].change);
    assert_eq!(pulled.changes[0].origin_device_id, device.device_id);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn businesses_are_isolated() {
    let f = fixture().await;
    let a = f.business("Klinik A").await;
    let b = f.business("Klinik B").await;
    let device_a = f.enrol(a.tenant_id, a.branch_id).await;
    let device_b = f.enrol(b.tenant_id, b.branch_id).await;
    f.push_ok(&device_a.device_token, &batch(device_a.branch_id, 1..=3))
        .await;

    let pulled = f.pull_ok(&device_b.device_token, 0, None).await;
    assert!(pulled.changes.is_empty(), "B saw A's changes");

    // B names A's branch in a record: refused, nothing stored for either business.
    let (status, body) = error(
        f.push(&device_b.device_token, &batch(device_a.branch_id, 1..=1))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body.code, error_code::VALIDATION_FAILED);
    assert_eq!(body.fields[0].field, "entries[0].branch_id");
    assert_eq!(body.fields[0].code, "branch_not_allowed");
    assert_eq!(f.count("changes").await, 3);

    // B's token with A's tenant id swapped in is not a key to A.
    let forged = device_b.device_token.replace(
        &device_b.tenant_id.to_string(),
        &device_a.tenant_id.to_string(),
    );
    assert_eq!(
        f.pull(&forged, 0, None).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Each business numbers its own changes.
    f.push_ok(&device_b.device_token, &batch(device_b.branch_id, 1..=1))
        .await;
    let pulled = f.pull_ok(&device_b.device_token, 0, None).await;
    assert_eq!(pulled.changes.len(), 1);
    assert_eq!(pulled.changes[0].cursor, 1);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn branches_see_and_write_only_their_own_records() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let second = admin::add_branch(
        f.server.pool(),
        business.tenant_id,
        "Petaling Jaya",
        Some("pj02"),
    )
    .await
    .unwrap();
    let main_desk = f.enrol(business.tenant_id, business.branch_id).await;
    let pj_desk = f.enrol(business.tenant_id, second.branch_id).await;
    assert_eq!(pj_desk.branch_name, "Petaling Jaya");

    let main_batch = batch(main_desk.branch_id, 1..=2);
    f.push_ok(&main_desk.device_token, &main_batch).await;
    f.push_ok(&pj_desk.device_token, &batch(pj_desk.branch_id, 1..=1))
        .await;

    let pj_view = f.pull_ok(&pj_desk.device_token, 0, None).await;
    assert_eq!(pulled_names(&pj_view), ["Patient 1"]);
    assert_eq!(pj_view.changes[0].cursor, 3, "the cursor is tenant-wide");
    assert_eq!(
        f.pull_ok(&main_desk.device_token, 0, None)
            .await
            .changes
            .len(),
        2
    );

    // PJ re-uses a main-branch patient's id under its own branch: refused, the row untouched.
    let ChangeBody::PatientUpsert(stolen) = main_batch.entries[0].change.body.clone();
    let hijack = PushRequest {
        schema_version: SCHEMA_VERSION,
        entries: vec![entry(
            2,
            PatientRecord {
                branch_id: pj_desk.branch_id,
                full_name: "Hijacked".to_owned(),
                ..stolen
            },
        )],
    };
    let (status, body) = error(f.push(&pj_desk.device_token, &hijack).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body.fields[0].field, "entries[0].id");
    assert_eq!(body.fields[0].code, "row_in_other_branch");
    let name: String =
        f.db.owner_client()
            .await
            .unwrap()
            .query_one(
                "SELECT full_name FROM patients WHERE patient_id = $1",
                &[&stolen.id],
            )
            .await
            .unwrap()
            .get(0);
    assert_eq!(name, "Patient 1");
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn concurrent_pushes_of_one_business_number_changes_without_holes() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let mut desks = Vec::new();
    for _ in 0..4 {
        desks.push(f.enrol(business.tenant_id, business.branch_id).await);
    }
    let push_three_batches = |desk: &EnrolResponse| {
        let (f, token, branch) = (&f, desk.device_token.clone(), desk.branch_id);
        async move {
            for start in [1, 4, 7] {
                f.push_ok(&token, &batch(branch, start..=start + 2)).await;
            }
        }
    };
    // Four desks pushing at once, three batches each.
    tokio::join!(
        push_three_batches(&desks[0]),
        push_three_batches(&desks[1]),
        push_three_batches(&desks[2]),
        push_three_batches(&desks[3]),
    );

    let pulled = f.pull_ok(&desks[0].device_token, 0, Some(1000)).await;
    let cursors: Vec<i64> = pulled.changes.iter().map(|c| c.cursor).collect();
    assert_eq!(cursors, (1..=36).collect::<Vec<_>>());
    for desk in &desks {
        let own: Vec<String> = pulled
            .changes
            .iter()
            .filter(|c| c.origin_device_id == desk.device_id)
            .flat_map(|c| match &c.change.body {
                ChangeBody::PatientUpsert(record) => Some(record.full_name.clone()),
            })
            .collect();
        let expected: Vec<String> = (1..=9).map(|seq| format!("Patient {seq}")).collect();
        assert_eq!(own, expected, "a desk's changes keep their order");
    }
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_request_over_the_time_limit_gets_a_json_503() {
    let db = TestDatabase::create().await.unwrap();
    let pool = kaunter_sync_server::db::connect_pool(db.app_config().unwrap(), 1).unwrap();
    let state = kaunter_sync_server::AppState::new(pool.clone())
        .with_request_timeout(Duration::from_millis(200));
    let server = TestServer::start(state).await.unwrap();
    // Holding the pool's only connection makes the health check wait past the limit.
    let held = pool.get().await.unwrap();
    let response = reqwest::get(server.url("/v1/health")).await.unwrap();
    let (status, body) = error(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body.code, error_code::INTERNAL);
    drop(held);
    let response = reqwest::get(server.url("/v1/health")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(server);
    db.drop_db().await.unwrap();
}
