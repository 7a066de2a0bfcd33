//! The HTTP API over real HTTP, against the real server on a free port and a fresh PostgreSQL
//! database per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use kaunter_core::Hlc;
use kaunter_core::lww::LwwRecord;
use kaunter_protocol::http::{
    Change, DELETED_FIELD, EnrolRequest, EnrolResponse, Entity, ErrorBody, Fields, OutboxEntry,
    PatientRecord, PullResponse, PushRequest, PushResponse, RejectedEntry, Stamps, WireStamp,
    error_code,
};
use kaunter_protocol::merge::{apply_change, is_deleted, record_into_parts};
use kaunter_protocol::{IdType, SCHEMA_VERSION, Sex};
use kaunter_sync_server::admin::{self, CreatedBusiness, DEFAULT_ENROLMENT_CODE_TTL};
use kaunter_sync_server::ids::{BranchId, DeviceId, TenantId};
use kaunter_sync_server::test_support::{TestDatabase, TestServer, digest_of_pulled};
use reqwest::StatusCode;
use serde_json::{Value, json};
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

/// A patient row as the server stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredPatient {
    branch_id: Uuid,
    full_name: String,
    phone: Option<String>,
    deleted: bool,
    stamps: Stamps,
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
                rotating_credentials: false,
                replaces_device: None,
                last_seq: 0,
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

    /// A push answered 200, whatever it refused.
    async fn push_answer(&self, token: &str, request: &PushRequest) -> PushResponse {
        let response = self.push(token, request).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// A push answered 200 with every entry applied (none refused): its acked_seq.
    async fn push_ok(&self, token: &str, request: &PushRequest) -> i64 {
        let answer = self.push_answer(token, request).await;
        assert_eq!(answer.rejected, [], "no entry may be refused");
        answer.acked_seq
    }

    /// A pull as a desk of the current schema version makes it.
    async fn pull(&self, token: &str, cursor: i64, limit: Option<i64>) -> reqwest::Response {
        let mut url = format!(
            "{}?cursor={cursor}&schema_version={SCHEMA_VERSION}",
            self.server.url("/v1/sync/pull")
        );
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

    /// Rows of `table`, optionally followed by a WHERE clause: `count("changes WHERE ...")`.
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

    /// The patients recorded as sharing a document (`duplicate_id_number` conflicts), as
    /// (row_a, row_b).
    async fn duplicate_pairs(&self) -> Vec<(Uuid, Uuid)> {
        self.db
            .owner_client()
            .await
            .unwrap()
            .query(
                "SELECT row_a, row_b FROM conflicts WHERE kind = 'duplicate_id_number'",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    }

    /// The stored patient row `id` (of any tenant), if there is one.
    async fn stored_patient(&self, id: Uuid) -> Option<StoredPatient> {
        let rows = self
            .db
            .owner_client()
            .await
            .unwrap()
            .query(
                "SELECT branch_id, full_name, phone, deleted, stamps FROM patients
                 WHERE patient_id = $1",
                &[&id],
            )
            .await
            .unwrap();
        assert!(
            rows.len() <= 1,
            "patient {id} is stored {} times",
            rows.len()
        );
        rows.first().map(|row| StoredPatient {
            branch_id: row.get(0),
            full_name: row.get(1),
            phone: row.get(2),
            deleted: row.get(3),
            stamps: kaunter_sync_server::stamps::decode(row.get(4)).unwrap(),
        })
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

/// A refusal's seq, code and (field, code) pairs, for comparing in one assertion.
type RefusalSummary<'a> = (i64, &'a str, Vec<(&'a str, &'a str)>);

fn refusal_summary(rejected: &[RejectedEntry]) -> Vec<RefusalSummary<'_>> {
    rejected
        .iter()
        .map(|refusal| {
            (
                refusal.seq,
                refusal.code.as_str(),
                refusal
                    .fields
                    .iter()
                    .map(|field| (field.field.as_str(), field.code.as_str()))
                    .collect(),
            )
        })
        .collect()
}

/// The packed hybrid logical time `offset_millis` from now (counter 0).
fn hlc_from_now(offset_millis: i64) -> u64 {
    let millis = u64::try_from(Utc::now().timestamp_millis() + offset_millis).unwrap();
    Hlc::new(millis, 0).unwrap().as_u64()
}

/// A fresh stamp time: now, and always after every one issued before in this process, so the
/// stamps of a test are unique and increasing (a hybrid logical clock of its own).
fn next_hlc() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = hlc_from_now(0);
    let next = |last: u64| (last + 1).max(now);
    let previous = LAST
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(next(last)))
        .unwrap();
    next(previous)
}

fn patient(branch: Uuid, name: &str) -> PatientRecord {
    PatientRecord {
        id: Uuid::now_v7(),
        branch_id: branch,
        full_name: name.to_owned(),
        id_type: IdType::Mykad,
        id_number: "900101145678".to_owned(),
        phone: Some("+60123456789".to_owned()),
        date_of_birth: None,
        sex: Some(Sex::Female),
    }
}

fn fields(pairs: &[(&str, Value)]) -> Fields {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect()
}

/// Outbox entry `seq` of `device`: `fields` of patient `row_id` in `branch`, stamped `hlc` by
/// the device itself.
fn entry_in(
    device: &EnrolResponse,
    branch: Uuid,
    seq: i64,
    row_id: Uuid,
    hlc: u64,
    fields: Fields,
) -> OutboxEntry {
    OutboxEntry {
        actor: None,
        approver: None,
        seq,
        schema_version: SCHEMA_VERSION,
        change: Change {
            entity: Entity::Patient,
            row_id,
            branch_id: branch,
            stamp: WireStamp {
                hlc,
                device_id: device.device_id,
            },
            fields,
            recorded_at: Utc::now(),
        },
    }
}

/// An edit by `device` of patient `row_id` of its own branch, stamped `hlc`.
fn edit(device: &EnrolResponse, seq: i64, row_id: Uuid, hlc: u64, fields: Fields) -> OutboxEntry {
    entry_in(device, device.branch_id, seq, row_id, hlc, fields)
}

/// `device` registers `record` (every field, a fresh stamp) as its entry `seq`.
fn registration(device: &EnrolResponse, seq: i64, record: &PatientRecord) -> OutboxEntry {
    entry_in(
        device,
        record.branch_id,
        seq,
        record.id,
        next_hlc(),
        record.fields(),
    )
}

fn push_request(entries: Vec<OutboxEntry>) -> PushRequest {
    PushRequest {
        schema_version: SCHEMA_VERSION,
        entries,
    }
}

/// A batch of `device`'s registrations of new patients of `branch`, numbered `seqs`.
fn batch_in(
    device: &EnrolResponse,
    branch: Uuid,
    seqs: std::ops::RangeInclusive<i64>,
) -> PushRequest {
    push_request(
        seqs.map(|seq| registration(device, seq, &patient(branch, &format!("Patient {seq}"))))
            .collect(),
    )
}

/// A batch of `device`'s registrations of new patients of its own branch, numbered `seqs`.
fn batch(device: &EnrolResponse, seqs: std::ops::RangeInclusive<i64>) -> PushRequest {
    batch_in(device, device.branch_id, seqs)
}

/// The full name each pulled change sets (every one of them must set it).
fn pulled_names(response: &PullResponse) -> Vec<String> {
    response
        .changes
        .iter()
        .map(|pulled| {
            pulled.change.fields["full_name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// What a desk that applies `changes` (in this order) ends up with for row `id`.
fn merged(changes: &[&Change], id: Uuid) -> LwwRecord<Value> {
    let mut record = LwwRecord::new();
    for change in changes.iter().filter(|change| change.row_id == id) {
        apply_change(&mut record, change);
    }
    record
}

fn merged_patient(record: &LwwRecord<Value>, id: Uuid, branch: Uuid) -> PatientRecord {
    let (fields, _) = record_into_parts(record);
    PatientRecord::from_fields(id, branch, &fields).unwrap()
}

fn stamp(hlc: u64, device: &EnrolResponse) -> WireStamp {
    WireStamp {
        hlc,
        device_id: device.device_id,
    }
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
        answers.push(error(f.push(&bad, &batch(&device, 1..=1)).await).await);
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
    let request = batch(&device, 1..=1);

    assert_eq!(f.push_ok(&device.device_token, &request).await, 1);
    assert_eq!(f.push_ok(&device.device_token, &request).await, 1);
    assert_eq!(f.count("patients").await, 1);
    assert_eq!(f.count("changes").await, 1);

    // A batch that overlaps the high-water mark applies only its new part.
    let mut overlapping = batch(&device, 1..=3);
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
    assert_eq!(f.count("patients").await, 3);
    assert_eq!(f.count("changes").await, 3);
    assert_eq!(f.count("rejected_changes").await, 0);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_gap_is_refused_with_the_expected_seq() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    assert_eq!(
        f.push_ok(&device.device_token, &batch(&device, 1..=2))
            .await,
        2
    );

    let (status, body) = error(f.push(&device.device_token, &batch(&device, 4..=5)).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body.code, error_code::SEQUENCE_GAP);
    assert_eq!(body.expected_seq, Some(3));
    assert_eq!(f.count("changes").await, 2);

    // Entries that are not consecutive are malformed.
    let mut holey = batch(&device, 3..=4);
    holey.entries[1].seq = 6;
    let (status, body) = error(f.push(&device.device_token, &holey).await).await;
    assert_eq!(
        (status, body.code.as_str()),
        (StatusCode::BAD_REQUEST, error_code::BAD_REQUEST)
    );
    // Neither refusal stored anything or moved the high-water mark.
    assert_eq!(f.count("changes").await, 2);
    assert_eq!(f.count("rejected_changes").await, 0);
    assert_eq!(
        f.push_ok(&device.device_token, &batch(&device, 3..=3))
            .await,
        3
    );
    f.db.drop_db().await.unwrap();
}

/// Waits until `count` connections of the test database wait for a lock.
async fn lock_waiters(f: &Fixture, count: i64) {
    f.db.lock_waiters(count).await.unwrap();
}

#[tokio::test]
async fn a_batch_that_overtakes_the_one_before_it_waits_for_it() {
    // A desk keeps two pushes in flight. Here the second reaches the device's row lock first:
    // it finds a gap, lets go and waits for the first, which this server is working on, then
    // applies; both are answered 200 and nothing is refused.
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    let earlier = batch(&device, 1..=3);
    let later = batch(&device, 4..=6);
    let (earlier_answer, later_answer) =
        later_reaches_the_lock_first(&f, &device, &earlier, &later).await;
    assert_eq!(
        (earlier_answer.acked_seq, earlier_answer.rejected.len()),
        (3, 0)
    );
    assert_eq!(
        (later_answer.acked_seq, later_answer.rejected.len()),
        (6, 0)
    );
    assert_eq!(f.count("patients").await, 6);
    assert_eq!(f.count("changes").await, 6);

    // With nothing before it in flight, a gap is still refused at once.
    let (status, body) = error(f.push(&device.device_token, &batch(&device, 9..=9)).await).await;
    assert_eq!(
        (status, body.code.as_str(), body.expected_seq),
        (StatusCode::CONFLICT, error_code::SEQUENCE_GAP, Some(7))
    );
    f.db.drop_db().await.unwrap();
}

/// Holds `device`'s marks row (what a push locks first) until the returned transaction ends.
async fn hold_marks<'a>(
    owner: &'a mut tokio_postgres::Client,
    device: &EnrolResponse,
) -> tokio_postgres::Transaction<'a> {
    let hold = owner.transaction().await.unwrap();
    hold.execute(
        "SELECT 1 FROM device_marks WHERE device_id = $1 FOR UPDATE",
        &[&device.device_id],
    )
    .await
    .unwrap();
    hold
}

/// Pushes two consecutive batches of `device` as a desk with two in flight does, the later
/// one reaching the device's lock first (both queue for its marks, held meanwhile); their
/// answers, the earlier's first.
async fn later_reaches_the_lock_first(
    f: &Fixture,
    device: &EnrolResponse,
    earlier: &PushRequest,
    later: &PushRequest,
) -> (PushResponse, PushResponse) {
    let mut owner = f.db.owner_client().await.unwrap();
    let hold = hold_marks(&mut owner, device).await;
    let later_push = f.push_answer(&device.device_token, later);
    let earlier_push = async {
        lock_waiters(f, 1).await;
        f.push_answer(&device.device_token, earlier).await
    };
    let release = async {
        lock_waiters(f, 2).await;
        hold.rollback().await.unwrap();
    };
    let (later_answer, earlier_answer, ()) = tokio::join!(later_push, earlier_push, release);
    (earlier_answer, later_answer)
}

#[tokio::test]
async fn what_a_push_looked_up_before_its_locks_is_looked_up_again_after_another_desk_wrote() {
    // A push looks its rows and its new patients' documents up before it takes the locks. Here
    // desk B writes in between: it edits a row A's push edits too and registers the document A's
    // push registers. A's push must merge into B's row and find B's registration.
    let f = fixture().await;
    let [a, b] = <[EnrolResponse; 2]>::try_from(desks(&f, 2).await).unwrap();
    let existing = patient(a.branch_id, "Siti binti Ahmad");
    f.push_ok(
        &a.device_token,
        &push_request(vec![registration(&a, 1, &existing)]),
    )
    .await;
    let document = "880202105555";
    let of_a = PatientRecord {
        id_number: document.to_owned(),
        ..patient(a.branch_id, "Aminah binti Yusof")
    };
    let of_b = PatientRecord {
        id_number: document.to_owned(),
        ..patient(b.branch_id, "Aminah Yusof")
    };
    let a_push = push_request(vec![
        edit(
            &a,
            2,
            existing.id,
            next_hlc(),
            fields(&[("full_name", json!("Siti Aminah binti Ahmad"))]),
        ),
        registration(&a, 3, &of_a),
    ]);
    let b_push = push_request(vec![
        edit(
            &b,
            1,
            existing.id,
            next_hlc(),
            fields(&[("phone", json!("+60198765432"))]),
        ),
        registration(&b, 2, &of_b),
    ]);
    let mut owner = f.db.owner_client().await.unwrap();
    let hold = hold_marks(&mut owner, &a).await;
    let a_answer = f.push_answer(&a.device_token, &a_push);
    let b_then_release = async {
        // A's push has looked ahead and waits for its marks; B's needs no lock A holds.
        lock_waiters(&f, 1).await;
        let b_answer = f.push_answer(&b.device_token, &b_push).await;
        hold.rollback().await.unwrap();
        b_answer
    };
    let (a_answer, b_answer) = tokio::join!(a_answer, b_then_release);
    assert_eq!((a_answer.acked_seq, a_answer.rejected.len()), (3, 0));
    assert_eq!((b_answer.acked_seq, b_answer.rejected.len()), (2, 0));
    let stored = f.stored_patient(existing.id).await.unwrap();
    assert_eq!(
        (stored.full_name.as_str(), stored.phone.as_deref()),
        ("Siti Aminah binti Ahmad", Some("+60198765432"))
    );
    let pairs = f.duplicate_pairs().await;
    // (row_a is the earlier registration: A's, made first on its desk.)
    assert_eq!(pairs, vec![(of_a.id, of_b.id)]);
    f.db.drop_db().await.unwrap();
}

/// Patients with distinct documents, of `branch`.
fn patients_with_own_documents(branch: Uuid, names: &[&str]) -> Vec<PatientRecord> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| PatientRecord {
            id_number: format!("9001011{i:05}"),
            ..patient(branch, name)
        })
        .collect()
}

/// How many connections waiting for a lock hold the lock a write takes on `patients`: a push
/// that wrote its rows before it takes its locks (a head start) and waits for them.
async fn waiting_writers_of_patients(f: &Fixture) -> i64 {
    f.db.owner_client()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE a.datname = current_database() AND a.wait_event_type = 'Lock'
               AND l.granted AND l.relation = 'patients'::regclass
               AND l.mode = 'RowExclusiveLock'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Checks what a fresh desk of the branch pulls from `token`'s point of view: every stored
/// patient once, at the change seq the change log gives its last change, and a checkpoint
/// digest that is the digest of the rows pulled.
async fn assert_pull_matches_the_log(f: &Fixture, token: &str, patients: usize) {
    let pulled = f.pull_ok(token, 0, None).await;
    assert!(!pulled.has_more);
    let mut rows: Vec<Uuid> = pulled.changes.iter().map(|c| c.change.row_id).collect();
    rows.dedup();
    assert_eq!(rows.len(), patients, "each patient pulled once");
    assert_eq!(
        pulled.checkpoint.map(|c| c.digest),
        Some(digest_of_pulled(&pulled.changes)),
        "the branch's digest counts each row once"
    );
    assert_eq!(f.count("patients").await, patients as i64);
    assert_eq!(
        f.count(
            "patients p WHERE p.last_change_seq = (SELECT max(c.seq) FROM changes c
                 WHERE c.tenant_id = p.tenant_id AND c.row_id = p.patient_id)"
        )
        .await,
        patients as i64,
        "every row carries the seq of its last change"
    );
}

#[tokio::test]
async fn a_push_writes_its_new_rows_before_it_takes_the_device_lock() {
    // A push inserts its new rows before it queues for the device's lock (while a desk's push
    // before it holds the lock, this one gets its rows in): here it is seen holding the write
    // lock on patients while it waits, and once let through it is applied in full. Its batch
    // also edits a stored patient, giving it another's document: that edit is merged ahead
    // too, and the duplicate it makes is found.
    let f = fixture().await;
    let [a, b] = <[EnrolResponse; 2]>::try_from(desks(&f, 2).await).unwrap();
    let [stored, other] = <[PatientRecord; 2]>::try_from(patients_with_own_documents(
        a.branch_id,
        &["Nurul", "Nur Aisyah"],
    ))
    .unwrap();
    let other = PatientRecord {
        id_number: "850505105151".to_owned(),
        ..other
    };
    f.push_ok(
        &a.device_token,
        &push_request(vec![
            registration(&a, 1, &stored),
            registration(&a, 2, &other),
        ]),
    )
    .await;
    let records = patients_with_own_documents(a.branch_id, &["Siti", "Aminah", "Mei Ling"]);
    let mut entries = vec![edit(
        &a,
        3,
        stored.id,
        next_hlc(),
        fields(&[("id_number", json!(other.id_number))]),
    )];
    entries.extend(
        records
            .iter()
            .zip(4..)
            .map(|(record, seq)| registration(&a, seq, record)),
    );
    let request = push_request(entries);
    let mut owner = f.db.owner_client().await.unwrap();
    let hold = hold_marks(&mut owner, &a).await;
    let answer = f.push_answer(&a.device_token, &request);
    let seen_then_release = async {
        lock_waiters(&f, 1).await;
        let writers = waiting_writers_of_patients(&f).await;
        hold.rollback().await.unwrap();
        writers
    };
    let (answer, writers) = tokio::join!(answer, seen_then_release);
    assert_eq!(writers, 1, "the waiting push has written its rows");
    assert_eq!((answer.acked_seq, answer.rejected.len()), (6, 0));
    for record in &records {
        assert_eq!(
            f.stored_patient(record.id).await.unwrap().full_name,
            record.full_name
        );
    }
    assert_eq!(f.duplicate_pairs().await, vec![(stored.id, other.id)]);
    assert_eq!(f.count("changes").await, 6);
    assert_pull_matches_the_log(&f, &b.device_token, 5).await;
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn rows_a_push_wrote_ahead_are_written_again_when_another_desk_numbered_first() {
    // A push writes its new rows before its locks with the change seqs it expects to get. Here
    // desk B's push takes the business's next seqs meanwhile, so A's guess is wrong: A must
    // take its rows back and write them again with the seqs it got (else two changes would
    // share a seq, or pull would miss A's rows).
    let f = fixture().await;
    let [a, b, c] = <[EnrolResponse; 3]>::try_from(desks(&f, 3).await).unwrap();
    let of_a = patients_with_own_documents(a.branch_id, &["Siti", "Aminah", "Mei Ling"]);
    let of_b = patients_with_own_documents(b.branch_id, &["Kumar", "Farah"]);
    let of_b: Vec<PatientRecord> = of_b
        .into_iter()
        .map(|record| PatientRecord {
            id_number: format!("8{}", &record.id_number[1..]),
            ..record
        })
        .collect();
    let request = |desk: &EnrolResponse, records: &[PatientRecord]| {
        push_request(
            records
                .iter()
                .zip(1..)
                .map(|(record, seq)| registration(desk, seq, record))
                .collect(),
        )
    };
    let mut owner = f.db.owner_client().await.unwrap();
    let hold = hold_marks(&mut owner, &a).await;
    let a_request = request(&a, &of_a);
    let a_answer = f.push_answer(&a.device_token, &a_request);
    let b_then_release = async {
        lock_waiters(&f, 1).await;
        // A's rows are in, at the seqs it expects (1-3).
        assert_eq!(waiting_writers_of_patients(&f).await, 1);
        let b_answer = f.push_answer(&b.device_token, &request(&b, &of_b)).await;
        hold.rollback().await.unwrap();
        b_answer
    };
    let (a_answer, b_answer) = tokio::join!(a_answer, b_then_release);
    assert_eq!((a_answer.acked_seq, a_answer.rejected.len()), (3, 0));
    assert_eq!((b_answer.acked_seq, b_answer.rejected.len()), (2, 0));
    let seqs_of = |records: &[PatientRecord]| {
        let ids: Vec<Uuid> = records.iter().map(|r| r.id).collect();
        let f = &f;
        async move {
            let mut seqs: Vec<i64> =
                f.db.owner_client()
                    .await
                    .unwrap()
                    .query(
                        "SELECT last_change_seq FROM patients WHERE patient_id = ANY($1)",
                        &[&ids],
                    )
                    .await
                    .unwrap()
                    .iter()
                    .map(|row| row.get(0))
                    .collect();
            seqs.sort_unstable();
            seqs
        }
    };
    assert_eq!(seqs_of(&of_b).await, [1, 2]);
    assert_eq!(seqs_of(&of_a).await, [3, 4, 5]);
    assert_eq!(f.count("changes").await, 5);
    assert_pull_matches_the_log(&f, &c.device_token, 5).await;
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_batch_sent_again_does_not_hold_up_the_next_one_that_started_ahead() {
    // Batch 1 was applied but its answer lost, so the desk sends it again just as batch 2
    // (which edits batch 1's patient and registers another) is between its head start and the
    // device's lock. Batch 2 must not wait for the resent batch 1 (which waits behind batch 2,
    // whose rows it names) until the wait runs out: both are answered at once.
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    let [first, other] = <[PatientRecord; 2]>::try_from(patients_with_own_documents(
        device.branch_id,
        &["Siti", "Mei Ling"],
    ))
    .unwrap();
    let batch_1 = push_request(vec![registration(&device, 1, &first)]);
    f.push_ok(&device.device_token, &batch_1).await;
    let renamed = PatientRecord {
        full_name: "Siti Aminah".to_owned(),
        ..first.clone()
    };
    let batch_2 = push_request(vec![
        registration(&device, 2, &renamed),
        registration(&device, 3, &other),
    ]);
    // The branch row held: batch 2's insert (its foreign-key check) waits there, after its
    // head start has begun.
    let mut owner = f.db.owner_client().await.unwrap();
    let hold = owner.transaction().await.unwrap();
    hold.execute(
        "SELECT 1 FROM branches WHERE branch_id = $1 FOR UPDATE",
        &[&business.branch_id],
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let second = async {
        let answer = f.push_answer(&device.device_token, &batch_2).await;
        (answer.acked_seq, started.elapsed())
    };
    let resent = async {
        lock_waiters(&f, 1).await;
        let resent = async {
            let answer = f.push_answer(&device.device_token, &batch_1).await;
            (answer.acked_seq, started.elapsed())
        };
        let release = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            hold.rollback().await.unwrap();
        };
        tokio::join!(resent, release).0
    };
    let ((second_acked, second_took), (resent_acked, resent_took)) = tokio::join!(second, resent);
    // (The replay is answered with the device's mark: 3 if batch 2 committed first.)
    assert_eq!(second_acked, 3);
    assert!(resent_acked == 1 || resent_acked == 3, "{resent_acked}");
    // (How long a push waits for another at most: push_turns::WAIT, 10 s.)
    let wait = Duration::from_secs(10);
    assert!(
        second_took < wait / 2 && resent_took < wait / 2,
        "answered after {second_took:?} and {resent_took:?}: they waited for each other"
    );
    assert_eq!(
        f.stored_patient(first.id).await.unwrap().full_name,
        "Siti Aminah"
    );
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_row_the_push_before_registered_is_looked_up_again() {
    // A desk's two pushes in flight: the later one edits the patient the earlier one registers.
    // It looks ahead before the earlier one is applied, so it must see under the locks that the
    // row it found missing is now there (else it would insert it a second time).
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    let record = patient(device.branch_id, "Siti binti Ahmad");
    let earlier = push_request(vec![registration(&device, 1, &record)]);
    let later = push_request(vec![edit(
        &device,
        2,
        record.id,
        next_hlc(),
        fields(&[("phone", json!("+60198765432"))]),
    )]);
    let (earlier_answer, later_answer) =
        later_reaches_the_lock_first(&f, &device, &earlier, &later).await;
    assert_eq!(
        (earlier_answer.acked_seq, earlier_answer.rejected.len()),
        (1, 0)
    );
    assert_eq!(
        (later_answer.acked_seq, later_answer.rejected.len()),
        (2, 0)
    );
    let stored = f.stored_patient(record.id).await.unwrap();
    assert_eq!(
        (stored.full_name.as_str(), stored.phone.as_deref()),
        ("Siti binti Ahmad", Some("+60198765432"))
    );
    assert_eq!(f.count("changes").await, 2);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_document_the_push_before_registered_is_found() {
    // The same two pushes in flight, each registering a patient with one document: the later
    // one looked the document up before the earlier was applied, so under the locks it must
    // see that the push before it registered that document (else the duplicate would go
    // unrecorded).
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    let document = "850505105151";
    let first = PatientRecord {
        id_number: document.to_owned(),
        ..patient(device.branch_id, "Aminah binti Yusof")
    };
    let second = PatientRecord {
        id_number: document.to_owned(),
        ..patient(device.branch_id, "Aminah Yusof")
    };
    let earlier = push_request(vec![registration(&device, 1, &first)]);
    let later = push_request(vec![registration(&device, 2, &second)]);
    let (earlier_answer, later_answer) =
        later_reaches_the_lock_first(&f, &device, &earlier, &later).await;
    assert_eq!((earlier_answer.acked_seq, later_answer.acked_seq), (1, 2));
    let pairs = f.duplicate_pairs().await;
    assert_eq!(pairs, vec![(first.id, second.id)]);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn an_entry_of_an_unsupported_schema_version_is_refused_alone() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    let mut request = batch(&device, 1..=3);
    request.entries[1].schema_version = 1;
    let answer = f.push_answer(&device.device_token, &request).await;
    assert_eq!(answer.acked_seq, 3);
    assert_eq!(answer.rejected.len(), 1);
    assert_eq!(
        (answer.rejected[0].seq, answer.rejected[0].code.as_str()),
        (2, error_code::UNSUPPORTED_SCHEMA_VERSION)
    );
    assert_eq!(f.count("patients").await, 2);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn an_unsupported_schema_version_is_refused() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    let mut request = batch(&device, 1..=1);
    request.schema_version = 999;
    let (status, body) = error(f.push(&device.device_token, &request).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body.code, error_code::UNSUPPORTED_SCHEMA_VERSION);
    assert_eq!(f.count("changes").await, 0);
    assert_eq!(f.count("rejected_changes").await, 0);
    // The high-water mark did not move.
    request.schema_version = SCHEMA_VERSION;
    assert_eq!(f.push_ok(&device.device_token, &request).await, 1);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn an_invalid_entry_is_refused_alone_with_its_fields() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    let mut request = batch(&device, 1..=3);
    let invalid = &mut request.entries[2].change.fields;
    invalid.insert("full_name".to_owned(), json!(" "));
    invalid.insert("phone".to_owned(), json!("012-345 6789"));

    let answer = f.push_answer(&device.device_token, &request).await;
    // The refused entry is handled too: the high-water mark moves past it.
    assert_eq!(answer.acked_seq, 3);
    assert_eq!(
        refusal_summary(&answer.rejected),
        [(
            3,
            error_code::VALIDATION_FAILED,
            vec![
                ("seq[3].full_name", "required"),
                ("seq[3].phone", "phone_invalid")
            ]
        )]
    );
    assert!(!answer.rejected[0].message.is_empty());
    // The valid entries of the batch are applied; the invalid one is only recorded as refused.
    assert_eq!(f.count("patients").await, 2);
    assert_eq!(f.count("changes").await, 2);
    assert_eq!(f.count("changes WHERE device_seq = 3").await, 0);
    assert_eq!(
        f.count("rejected_changes WHERE device_seq = 3 AND code = 'validation_failed'")
            .await,
        1
    );
    assert_eq!(
        f.stored_patient(request.entries[2].change.row_id).await,
        None
    );

    // A replay gets the very same answer and changes nothing.
    assert_eq!(f.push_answer(&device.device_token, &request).await, answer);
    // So does a batch that overlaps the high-water mark, for its replayed part.
    let mut overlapping = batch(&device, 3..=4);
    overlapping.entries[0] = request.entries[2].clone();
    let overlap_answer = f.push_answer(&device.device_token, &overlapping).await;
    assert_eq!(overlap_answer.acked_seq, 4);
    assert_eq!(overlap_answer.rejected, answer.rejected);
    assert_eq!(
        f.push_answer(&device.device_token, &overlapping).await,
        overlap_answer
    );
    assert_eq!(f.count("patients").await, 3);
    assert_eq!(f.count("changes").await, 3);
    assert_eq!(f.count("rejected_changes").await, 1);

    // An edit that would make a stored row invalid is refused; the row keeps its value.
    let first = request.entries[0].change.row_id;
    let bad_edit = push_request(vec![edit(
        &device,
        5,
        first,
        next_hlc(),
        fields(&[("phone", json!("not a phone"))]),
    )]);
    let answer = f.push_answer(&device.device_token, &bad_edit).await;
    assert_eq!(answer.acked_seq, 5);
    assert_eq!(
        refusal_summary(&answer.rejected),
        [(
            5,
            error_code::VALIDATION_FAILED,
            vec![("seq[5].phone", "phone_invalid")]
        )]
    );
    let stored = f.stored_patient(first).await.unwrap();
    assert_eq!(stored.phone.as_deref(), Some("+60123456789"));
    assert_eq!(stored.stamps["phone"], request.entries[0].change.stamp);

    // Pull hands out only what was applied.
    let pulled = f.pull_ok(&device.device_token, 0, None).await;
    assert_eq!(
        pulled_names(&pulled),
        ["Patient 1", "Patient 2", "Patient 4"]
    );
    // The next entry expected is 6.
    let (status, body) = error(f.push(&device.device_token, &batch(&device, 7..=7)).await).await;
    assert_eq!(
        (status, body.code.as_str(), body.expected_seq),
        (StatusCode::CONFLICT, error_code::SEQUENCE_GAP, Some(6))
    );
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn entries_that_make_no_complete_known_record_are_refused() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    let known = patient(device.branch_id, "Siti binti Ahmad");
    let nobody = Uuid::now_v7();
    let mut with_unknown_field = patient(device.branch_id, "Aminah binti Yusof").fields();
    with_unknown_field.insert("nickname".to_owned(), json!("Minah"));
    let mut with_bad_id_type = patient(device.branch_id, "Tan Mei Ling").fields();
    with_bad_id_type.insert("id_type".to_owned(), json!("driving_licence"));
    let entries = vec![
        // An edit of a row nobody registered.
        edit(
            &device,
            1,
            nobody,
            next_hlc(),
            fields(&[("full_name", json!("Nobody"))]),
        ),
        // A field the protocol does not know.
        edit(&device, 2, Uuid::now_v7(), next_hlc(), with_unknown_field),
        // A value of the wrong kind.
        edit(&device, 3, Uuid::now_v7(), next_hlc(), with_bad_id_type),
        registration(&device, 4, &known),
        // A tombstone that is not a boolean.
        edit(
            &device,
            5,
            known.id,
            next_hlc(),
            fields(&[(DELETED_FIELD, json!("yes"))]),
        ),
        // A change of nothing.
        edit(&device, 6, known.id, next_hlc(), Fields::new()),
    ];
    let push = push_request(entries);
    let answer = f.push_answer(&device.device_token, &push).await;
    assert_eq!(answer.acked_seq, 6);
    assert_eq!(
        refusal_summary(&answer.rejected),
        [
            (1, error_code::VALIDATION_FAILED, vec![]),
            (
                2,
                error_code::VALIDATION_FAILED,
                vec![("seq[2].nickname", "unknown_field")]
            ),
            (3, error_code::VALIDATION_FAILED, vec![]),
            (
                5,
                error_code::VALIDATION_FAILED,
                vec![("seq[5].deleted", "invalid")]
            ),
            (6, error_code::VALIDATION_FAILED, vec![]),
        ]
    );
    assert_eq!(f.count("patients").await, 1);
    assert_eq!(f.count("changes").await, 1);
    assert_eq!(f.count("rejected_changes").await, 5);
    assert_eq!(f.stored_patient(nobody).await, None);
    assert!(!f.stored_patient(known.id).await.unwrap().deleted);
    assert_eq!(f.push_answer(&device.device_token, &push).await, answer);
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

/// `body` compressed with zstd, as a desk sends it.
fn zstd(body: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(body, 1).unwrap()
}

/// A push of `body` as sent, with `Content-Encoding: <encoding>`.
async fn push_encoded(
    f: &Fixture,
    token: &str,
    encoding: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    f.http
        .post(f.server.url("/v1/sync/push"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("content-encoding", encoding)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_push_compressed_with_zstd_is_taken_as_the_same_push_sent_plain() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    let request = batch(&device, 1..=20);
    let json = serde_json::to_vec(&request).unwrap();
    let compressed = zstd(&json);
    assert!(
        compressed.len() * 3 < json.len(),
        "{} of {}",
        compressed.len(),
        json.len()
    );

    let response = push_encoded(&f, &device.device_token, "zstd", compressed.clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Every answer says the server reads zstd bodies; that is how a desk knows to send them.
    assert_eq!(response.headers()["accept-encoding"], "zstd");
    let answer: PushResponse = response.json().await.unwrap();
    assert_eq!((answer.acked_seq, answer.rejected.len()), (20, 0));
    for entry in &request.entries {
        let stored = f.stored_patient(entry.change.row_id).await.unwrap();
        assert_eq!(
            Value::String(stored.full_name),
            entry.change.fields["full_name"]
        );
    }
    // Sent again compressed, it is a replay like any other: same answer, nothing new.
    let replay = push_encoded(&f, &device.device_token, "zstd", compressed).await;
    assert_eq!(replay.json::<PushResponse>().await.unwrap(), answer);
    assert_eq!(f.count("changes").await, 20);
    // `identity` is a body as it is; an empty list element counts for nothing.
    let next = serde_json::to_vec(&batch(&device, 21..=21)).unwrap();
    let response = push_encoded(&f, &device.device_token, "identity", next).await;
    assert_eq!(response.json::<PushResponse>().await.unwrap().acked_seq, 21);
    let next = zstd(&serde_json::to_vec(&batch(&device, 22..=22)).unwrap());
    let response = push_encoded(&f, &device.device_token, "zstd, ", next).await;
    assert_eq!(response.json::<PushResponse>().await.unwrap().acked_seq, 22);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_compressed_body_is_held_to_the_limit_once_decompressed_and_must_be_zstd() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let device = f.enrol(business.tenant_id, business.branch_id).await;
    // 8 MiB of JSON in a few hundred bytes: refused at the limit (1 MiB).
    let bomb = json!({
        "schema_version": SCHEMA_VERSION,
        "entries": [],
        "padding": " ".repeat(8 * 1024 * 1024),
    });
    let bomb = zstd(&serde_json::to_vec(&bomb).unwrap());
    assert!(bomb.len() < 4096, "{}", bomb.len());
    let (status, body) =
        error(push_encoded(&f, &device.device_token, "zstd", bomb.clone()).await).await;
    assert_eq!(
        (status, body.code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, error_code::PAYLOAD_TOO_LARGE)
    );
    // Also before any authentication.
    let response = f
        .http
        .post(f.server.url("/v1/enrol"))
        .header("content-type", "application/json")
        .header("content-encoding", "zstd")
        .body(bomb)
        .send()
        .await
        .unwrap();
    let (status, body) = error(response).await;
    assert_eq!(
        (status, body.code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, error_code::PAYLOAD_TOO_LARGE)
    );

    let json = serde_json::to_vec(&batch(&device, 1..=2)).unwrap();
    // A frame that asks the server to set aside a window of 128 MiB for a body that may hold
    // 1 MiB at most: refused before any of it is decompressed.
    let mut wide = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    wide.window_log(27).unwrap();
    std::io::Write::write_all(&mut wide, &json).unwrap();
    let wide = wide.finish().unwrap();
    assert_eq!(zstd::decode_all(&wide[..]).unwrap(), json);
    // Not zstd at all, cut short, empty, or too wide a window: a bad request.
    for body in [json.clone(), zstd(&json)[..20].to_vec(), Vec::new(), wide] {
        let (status, body) =
            error(push_encoded(&f, &device.device_token, "zstd", body).await).await;
        assert_eq!(
            (status, body.code.as_str()),
            (StatusCode::BAD_REQUEST, error_code::BAD_REQUEST)
        );
    }
    // Codings the server does not read, or zstd twice: refused as such, with the coding named.
    for encoding in ["gzip", "br", "zstd, zstd", "zstd, gzip"] {
        let (status, body) =
            error(push_encoded(&f, &device.device_token, encoding, zstd(&json)).await).await;
        assert_eq!(
            (status, body.code.as_str()),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                error_code::UNSUPPORTED_CONTENT_ENCODING
            ),
            "{encoding}"
        );
        assert!(body.message.contains("zstd"), "{}", body.message);
    }
    // Nothing of it was taken; the same batch plain still goes in from seq 1.
    assert_eq!(f.count("changes").await, 0);
    assert_eq!(
        f.push_ok(&device.device_token, &batch(&device, 1..=2))
            .await,
        2
    );
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_pull_page_comes_compressed_to_a_caller_that_accepts_it() {
    let f = fixture().await;
    let business = f.business("Klinik Demo").await;
    let writer = f.enrol(business.tenant_id, business.branch_id).await;
    let reader = f.enrol(business.tenant_id, business.branch_id).await;
    assert_eq!(
        f.push_ok(&writer.device_token, &batch(&writer, 1..=50))
            .await,
        50
    );
    // A client that does not decompress, to see the bytes as sent.
    let raw = reqwest::Client::builder().no_zstd().build().unwrap();
    let url = format!(
        "{}?cursor=0&schema_version={SCHEMA_VERSION}",
        f.server.url("/v1/sync/pull")
    );
    let get = |accept: Option<&'static str>| {
        let mut request = raw.get(&url).bearer_auth(&reader.device_token);
        if let Some(accept) = accept {
            request = request.header("accept-encoding", accept);
        }
        request.send()
    };

    let plain = get(None).await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    let compressed = get(Some("gzip;q=0.5, zstd")).await.unwrap();
    assert_eq!(compressed.status(), StatusCode::OK);
    assert_eq!(compressed.headers()["content-encoding"], "zstd");
    let compressed = compressed.bytes().await.unwrap();
    assert!(
        compressed.len() * 3 < plain.len(),
        "{} of {}",
        compressed.len(),
        plain.len()
    );
    let decompressed = zstd::decode_all(&compressed[..]).unwrap();
    let (plain, decompressed): (PullResponse, PullResponse) = (
        serde_json::from_slice(&plain).unwrap(),
        serde_json::from_slice(&decompressed).unwrap(),
    );
    assert_eq!(decompressed, plain);
    assert_eq!(plain.changes.len(), 50);
    // A browser asking for gzip only gets gzip.
    let gzipped = get(Some("gzip")).await.unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    // A short answer is not worth compressing.
    let short = raw
        .get(f.server.url("/v1/health"))
        .header("accept-encoding", "zstd")
        .send()
        .await
        .unwrap();
    assert!(short.headers().get("content-encoding").is_none());
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
        f.push_ok(&writer.device_token, &batch(&writer, 1..=3))
            .await,
        3
    );
    assert_eq!(
        f.push_ok(&writer.device_token, &batch(&writer, 4..=5))
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
                .all(|c| c.change.stamp.device_id == writer.device_id)
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
    let mut record = patient(device.branch_id, "Siti binti Ahmad");
    record.date_of_birth = chrono::NaiveDate::from_ymd_opt(1990, 1, 1);
    record.phone = None;
    let request = push_request(vec![registration(&device, 1, &record)]);
    f.push_ok(&device.device_token, &request).await;
    let pulled = f.pull_ok(&device.device_token, 0, None).await;
    assert_eq!(pulled.changes.len(), 1);
    // The row as it stands: one write, so one change, the pushed one (its time to the
    // microsecond PostgreSQL keeps), and when the row was first written.
    let pushed = &request.entries[0].change;
    let mut change = pulled.changes[0].change.clone();
    let drift = (change.recorded_at - pushed.recorded_at)
        .num_nanoseconds()
        .unwrap();
    assert!(drift.abs() < 1_000, "recorded_at moved by {drift} ns");
    change.recorded_at = pushed.recorded_at;
    assert_eq!(&change, pushed);
    assert_eq!(
        pulled.changes[0].created_at.map(|at| at.timestamp_micros()),
        Some(pushed.recorded_at.timestamp_micros())
    );
    assert_eq!(pulled.changes[0].change.stamp.device_id, device.device_id);
    let change = &pulled.changes[0].change;
    assert_eq!(
        PatientRecord::from_fields(change.row_id, change.branch_id, &change.fields).unwrap(),
        record
    );
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn businesses_are_isolated() {
    let f = fixture().await;
    let a = f.business("Klinik A").await;
    let b = f.business("Klinik B").await;
    let device_a = f.enrol(a.tenant_id, a.branch_id).await;
    let device_b = f.enrol(b.tenant_id, b.branch_id).await;
    let a_batch = batch(&device_a, 1..=3);
    f.push_ok(&device_a.device_token, &a_batch).await;

    let pulled = f.pull_ok(&device_b.device_token, 0, None).await;
    assert!(pulled.changes.is_empty(), "B saw A's changes");

    // B names A's branch in a record: that entry is refused, nothing stored for either business.
    let intrusion = batch_in(&device_b, device_a.branch_id, 1..=1);
    let answer = f.push_answer(&device_b.device_token, &intrusion).await;
    assert_eq!(answer.acked_seq, 1);
    assert_eq!(
        refusal_summary(&answer.rejected),
        [(
            1,
            error_code::VALIDATION_FAILED,
            vec![("seq[1].branch_id", "branch_not_allowed")]
        )]
    );
    assert_eq!(f.count("changes").await, 3);
    assert_eq!(f.count("patients").await, 3);
    assert_eq!(
        f.stored_patient(intrusion.entries[0].change.row_id).await,
        None
    );
    assert_eq!(
        f.push_answer(&device_b.device_token, &intrusion).await,
        answer
    );
    assert!(
        f.pull_ok(&device_a.device_token, 0, None)
            .await
            .changes
            .iter()
            .all(|c| c.change.stamp.device_id == device_a.device_id)
    );

    // B's token with A's tenant id swapped in is not a key to A.
    let forged = device_b.device_token.replace(
        &device_b.tenant_id.to_string(),
        &device_a.tenant_id.to_string(),
    );
    assert_eq!(
        f.pull(&forged, 0, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        f.push(&forged, &batch(&device_b, 2..=2)).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Each business numbers its own changes (B's refused entry left its number 1 unused).
    f.push_ok(&device_b.device_token, &batch(&device_b, 2..=2))
        .await;
    let pulled = f.pull_ok(&device_b.device_token, 0, None).await;
    assert_eq!(pulled.changes.len(), 1);
    assert_eq!(pulled.changes[0].cursor, 2);

    // B edits a row id of A's under its own branch: B cannot see A's row, so at most B gets a
    // row of its own; A's row is untouched and A sees nothing of it.
    let a_row = a_batch.entries[0].change.row_id;
    let before = f.stored_patient(a_row).await.unwrap();
    let mut copy = patient(device_b.branch_id, "Hijacked");
    copy.id = a_row;
    f.push_answer(
        &device_b.device_token,
        &push_request(vec![registration(&device_b, 3, &copy)]),
    )
    .await;
    let a_rows: Vec<(Uuid, String)> = f
        .db
        .owner_client()
        .await
        .unwrap()
        .query(
            "SELECT branch_id, full_name FROM patients WHERE tenant_id = $1 AND patient_id = $2",
            &[&device_a.tenant_id, &a_row],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(a_rows, [(before.branch_id, before.full_name)]);
    assert_eq!(
        f.pull_ok(&device_a.device_token, 0, None)
            .await
            .changes
            .len(),
        3
    );
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

    let main_batch = batch(&main_desk, 1..=2);
    f.push_ok(&main_desk.device_token, &main_batch).await;
    f.push_ok(&pj_desk.device_token, &batch(&pj_desk, 1..=1))
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
    // Naming the main branch outright is refused too.
    let stolen = main_batch.entries[0].change.row_id;
    let mut hijacked = patient(pj_desk.branch_id, "Hijacked");
    hijacked.id = stolen;
    let hijack = push_request(vec![
        registration(&pj_desk, 2, &hijacked),
        entry_in(
            &pj_desk,
            main_desk.branch_id,
            3,
            stolen,
            next_hlc(),
            fields(&[("full_name", json!("Hijacked"))]),
        ),
    ]);
    let answer = f.push_answer(&pj_desk.device_token, &hijack).await;
    assert_eq!(answer.acked_seq, 3);
    assert_eq!(
        refusal_summary(&answer.rejected),
        [
            (2, error_code::ROW_IN_OTHER_BRANCH, vec![]),
            (
                3,
                error_code::VALIDATION_FAILED,
                vec![("seq[3].branch_id", "branch_not_allowed")]
            ),
        ]
    );
    assert_eq!(f.push_answer(&pj_desk.device_token, &hijack).await, answer);
    let row = f.stored_patient(stolen).await.unwrap();
    assert_eq!(
        (row.branch_id, row.full_name.as_str()),
        (main_desk.branch_id, "Patient 1")
    );
    assert_eq!(f.count("changes").await, 3);
    assert_eq!(
        f.pull_ok(&main_desk.device_token, 0, None)
            .await
            .changes
            .len(),
        2
    );
    assert_eq!(
        f.pull_ok(&pj_desk.device_token, 0, None)
            .await
            .changes
            .len(),
        1
    );
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
        let (f, desk) = (&f, desk.clone());
        async move {
            for start in [1, 4, 7] {
                let acked = f
                    .push_ok(&desk.device_token, &batch(&desk, start..=start + 2))
                    .await;
                assert_eq!(acked, start + 2);
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
            .filter(|c| c.change.stamp.device_id == desk.device_id)
            .map(|c| c.change.fields["full_name"].as_str().unwrap().to_owned())
            .collect();
        let expected: Vec<String> = (1..=9).map(|seq| format!("Patient {seq}")).collect();
        assert_eq!(own, expected, "a desk's changes keep their order");
    }
    assert_eq!(f.count("patients").await, 36);
    assert_eq!(f.count("rejected_changes").await, 0);
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

/// A business with one branch and `desks` desks enrolled in it.
async fn desks(f: &Fixture, count: usize) -> Vec<EnrolResponse> {
    let business = f.business("Klinik Demo").await;
    let mut desks = Vec::new();
    for _ in 0..count {
        desks.push(f.enrol(business.tenant_id, business.branch_id).await);
    }
    desks
}

#[tokio::test]
async fn edits_of_different_fields_by_two_desks_are_both_kept() {
    let f = fixture().await;
    let [a, b, c] = <[EnrolResponse; 3]>::try_from(desks(&f, 3).await).unwrap();
    let record = patient(a.branch_id, "Siti binti Ahmad");
    f.push_ok(
        &a.device_token,
        &push_request(vec![registration(&a, 1, &record)]),
    )
    .await;

    // Both desks edit the registration; B's edit is stamped before A's but reaches the server
    // after it.
    let b_hlc = next_hlc();
    let a_hlc = next_hlc();
    assert!(b_hlc < a_hlc);
    let a_edit = edit(
        &a,
        2,
        record.id,
        a_hlc,
        fields(&[("full_name", json!("Siti Aminah binti Ahmad"))]),
    );
    let b_edit = edit(
        &b,
        1,
        record.id,
        b_hlc,
        fields(&[("phone", json!("+60198765432"))]),
    );
    assert_eq!(
        f.push_ok(&a.device_token, &push_request(vec![a_edit]))
            .await,
        2
    );
    assert_eq!(
        f.push_ok(&b.device_token, &push_request(vec![b_edit]))
            .await,
        1
    );

    let expected = PatientRecord {
        full_name: "Siti Aminah binti Ahmad".to_owned(),
        phone: Some("+60198765432".to_owned()),
        ..record.clone()
    };
    let stored = f.stored_patient(record.id).await.unwrap();
    assert_eq!(
        (
            stored.full_name.as_str(),
            stored.phone.as_deref(),
            stored.deleted
        ),
        (
            expected.full_name.as_str(),
            expected.phone.as_deref(),
            false
        )
    );
    assert_eq!(stored.stamps["full_name"], stamp(a_hlc, &a));
    assert_eq!(stored.stamps["phone"], stamp(b_hlc, &b));
    assert_eq!(stored.stamps["id_number"].device_id, a.device_id);
    assert_eq!(f.count("changes").await, 3);

    // A third desk merging what it pulls ends up with the same row, in either order.
    let pulled = f.pull_ok(&c.device_token, 0, None).await;
    assert_eq!(pulled.changes.len(), 3);
    let mut changes: Vec<&Change> = pulled.changes.iter().map(|p| &p.change).collect();
    let in_order = merged(&changes, record.id);
    assert_eq!(merged_patient(&in_order, record.id, c.branch_id), expected);
    changes.reverse();
    assert_eq!(merged(&changes, record.id), in_order);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn an_older_edit_loses_to_a_newer_one_whatever_the_push_order() {
    let f = fixture().await;
    let [a, b] = <[EnrolResponse; 2]>::try_from(desks(&f, 2).await).unwrap();
    let record = patient(a.branch_id, "Siti binti Ahmad");
    f.push_ok(
        &a.device_token,
        &push_request(vec![registration(&a, 1, &record)]),
    )
    .await;

    let older = next_hlc();
    let newer = next_hlc();
    // The newer edit arrives first, the older one after it.
    let newer_edit = edit(
        &a,
        2,
        record.id,
        newer,
        fields(&[("full_name", json!("Newer Name"))]),
    );
    let older_edit = edit(
        &b,
        1,
        record.id,
        older,
        fields(&[("full_name", json!("Older Name"))]),
    );
    f.push_ok(&a.device_token, &push_request(vec![newer_edit]))
        .await;
    // The older edit is not an error: it is applied (logged) and simply loses the field.
    assert_eq!(
        f.push_ok(&b.device_token, &push_request(vec![older_edit.clone()]))
            .await,
        1
    );
    let stored = f.stored_patient(record.id).await.unwrap();
    assert_eq!(stored.full_name, "Newer Name");
    assert_eq!(stored.stamps["full_name"], stamp(newer, &a));
    assert_eq!(f.count("changes").await, 3);
    let b_id = b.device_id;
    assert_eq!(
        f.count(&format!("changes WHERE device_id = '{b_id}'"))
            .await,
        1
    );
    // Pull sends the row as it stands: the losing write is not among its writes.
    let pulled = f.pull_ok(&a.device_token, 0, None).await;
    assert!(
        pulled
            .changes
            .iter()
            .all(|p| p.change.stamp != older_edit.change.stamp)
    );
    let changes: Vec<&Change> = pulled.changes.iter().map(|p| &p.change).collect();
    assert_eq!(
        merged_patient(&merged(&changes, record.id), record.id, a.branch_id).full_name,
        "Newer Name"
    );

    // Equal clocks: the greater device id wins, whichever arrives first.
    let tie = next_hlc();
    let (low, high) = if a.device_id < b.device_id {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let high_seq = if high.device_id == a.device_id { 3 } else { 2 };
    let low_seq = if low.device_id == a.device_id { 3 } else { 2 };
    let high_edit = edit(
        high,
        high_seq,
        record.id,
        tie,
        fields(&[("phone", json!("+60111111111"))]),
    );
    let low_edit = edit(
        low,
        low_seq,
        record.id,
        tie,
        fields(&[("phone", json!("+60122222222"))]),
    );
    f.push_ok(&high.device_token, &push_request(vec![high_edit]))
        .await;
    f.push_ok(&low.device_token, &push_request(vec![low_edit]))
        .await;
    let stored = f.stored_patient(record.id).await.unwrap();
    assert_eq!(stored.phone.as_deref(), Some("+60111111111"));
    assert_eq!(stored.stamps["phone"], stamp(tie, high));
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_delete_is_not_undone_by_an_older_edit() {
    let f = fixture().await;
    let [a, b, c] = <[EnrolResponse; 3]>::try_from(desks(&f, 3).await).unwrap();
    let record = patient(a.branch_id, "Siti binti Ahmad");
    f.push_ok(
        &a.device_token,
        &push_request(vec![registration(&a, 1, &record)]),
    )
    .await;

    let edit_hlc = next_hlc();
    let undelete_hlc = next_hlc();
    let delete_hlc = next_hlc();
    let delete = edit(
        &b,
        1,
        record.id,
        delete_hlc,
        fields(&[(DELETED_FIELD, json!(true))]),
    );
    f.push_ok(&b.device_token, &push_request(vec![delete]))
        .await;
    let stored = f.stored_patient(record.id).await.unwrap();
    assert!(stored.deleted);
    assert_eq!(stored.full_name, "Siti binti Ahmad");
    assert_eq!(stored.stamps[DELETED_FIELD], stamp(delete_hlc, &b));
    assert_eq!(f.count("patients WHERE deleted").await, 1);

    // A's edits were made before the delete but arrive after it.
    let late = push_request(vec![
        edit(
            &a,
            2,
            record.id,
            edit_hlc,
            fields(&[("full_name", json!("Siti Aminah binti Ahmad"))]),
        ),
        edit(
            &a,
            3,
            record.id,
            undelete_hlc,
            fields(&[(DELETED_FIELD, json!(false))]),
        ),
    ]);
    assert_eq!(f.push_ok(&a.device_token, &late).await, 3);
    let stored = f.stored_patient(record.id).await.unwrap();
    assert!(stored.deleted, "an older edit undeleted the row");
    assert_eq!(stored.stamps[DELETED_FIELD], stamp(delete_hlc, &b));
    // The edit of another field still merges into the (deleted) row, as on every desk.
    assert_eq!(stored.full_name, "Siti Aminah binti Ahmad");
    assert_eq!(f.count("changes").await, 4);

    // A desk merging the row's writes, in any order, agrees: the registration (id fields),
    // the late name edit and the delete each won a field; the undelete won none.
    let pulled = f.pull_ok(&c.device_token, 0, None).await;
    let mut changes: Vec<&Change> = pulled.changes.iter().map(|p| &p.change).collect();
    assert_eq!(changes.len(), 3);
    assert!(
        changes
            .iter()
            .all(|change| change.stamp.hlc != undelete_hlc)
    );
    // A page of one row holds all of that row's writes: they are never split across pages.
    let one = f.pull_ok(&c.device_token, 0, Some(1)).await;
    assert_eq!(
        (one.changes.len(), one.row_count(), one.has_more),
        (3, 1, false)
    );
    assert!(one.changes.iter().all(|p| p.cursor == one.next_cursor));
    assert!(is_deleted(&merged(&changes, record.id)));
    changes.reverse();
    assert!(is_deleted(&merged(&changes, record.id)));
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn an_entry_stamped_by_another_device_is_refused() {
    let f = fixture().await;
    let [a, b] = <[EnrolResponse; 2]>::try_from(desks(&f, 2).await).unwrap();
    let mut as_b = registration(&a, 1, &patient(a.branch_id, "Patient 1"));
    as_b.change.stamp.device_id = b.device_id;
    let mut as_stranger = registration(&a, 2, &patient(a.branch_id, "Patient 2"));
    as_stranger.change.stamp.device_id = Uuid::now_v7();
    let own = registration(&a, 3, &patient(a.branch_id, "Patient 3"));
    let request = push_request(vec![as_b.clone(), as_stranger, own]);

    let answer = f.push_answer(&a.device_token, &request).await;
    assert_eq!(answer.acked_seq, 3);
    assert_eq!(
        refusal_summary(&answer.rejected),
        [
            (1, error_code::WRONG_DEVICE, vec![]),
            (2, error_code::WRONG_DEVICE, vec![])
        ]
    );
    assert_eq!(f.count("patients").await, 1);
    assert_eq!(f.count("changes").await, 1);
    assert_eq!(
        f.count("rejected_changes WHERE code = 'wrong_device'")
            .await,
        2
    );
    assert_eq!(f.stored_patient(as_b.change.row_id).await, None);
    assert_eq!(f.push_answer(&a.device_token, &request).await, answer);
    let pulled = f.pull_ok(&b.device_token, 0, None).await;
    assert_eq!(pulled_names(&pulled), ["Patient 3"]);
    assert_eq!(pulled.changes[0].change.stamp.device_id, a.device_id);
    // B's own outbox is untouched by the entry that named it.
    assert_eq!(f.push_ok(&b.device_token, &batch(&b, 1..=1)).await, 1);
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn an_entry_from_a_clock_far_ahead_is_refused_and_the_rest_applies() {
    const DAY_MS: i64 = 24 * 60 * 60 * 1000;
    let f = fixture().await;
    let [desk] = <[EnrolResponse; 1]>::try_from(desks(&f, 1).await).unwrap();
    let mut request = batch(&desk, 1..=4);
    request.entries[0].change.stamp.hlc = hlc_from_now(3 * DAY_MS);
    // A day ahead is within the allowed drift.
    request.entries[3].change.stamp.hlc = hlc_from_now(DAY_MS);

    let answer = f.push_answer(&desk.device_token, &request).await;
    assert_eq!(answer.acked_seq, 4);
    assert_eq!(
        refusal_summary(&answer.rejected),
        [(1, error_code::CLOCK_AHEAD, vec![])]
    );
    assert_eq!(f.count("patients").await, 3);
    assert_eq!(f.count("changes").await, 3);
    assert_eq!(
        f.count("rejected_changes WHERE device_seq = 1 AND code = 'clock_ahead'")
            .await,
        1
    );
    assert_eq!(
        f.stored_patient(request.entries[0].change.row_id).await,
        None
    );
    assert_eq!(f.push_answer(&desk.device_token, &request).await, answer);
    let pulled = f.pull_ok(&desk.device_token, 0, None).await;
    assert_eq!(
        pulled_names(&pulled),
        ["Patient 2", "Patient 3", "Patient 4"]
    );
    f.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_desk_status_report_keeps_a_nul_in_its_error_as_a_replacement_and_refuses_one_in_its_version()
 {
    let f = fixture().await;
    let business = f.business("Klinik Laporan").await;
    let desk = f.enrol(business.tenant_id, business.branch_id).await;
    let report = |last_error: &str, app_version: &str| {
        f.http
            .post(f.server.url("/v1/sync/status"))
            .bearer_auth(&desk.device_token)
            .json(&serde_json::json!({
                "pending": 3, "refused": 0, "schema_version": 5,
                "last_error": last_error, "app_version": app_version,
            }))
            .send()
    };
    let answer = report("disk said \u{0}no", "0.1.0").await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let stored: String =
        f.db.owner_client()
            .await
            .unwrap()
            .query_one(
                "SELECT status_last_error FROM devices WHERE device_id = $1",
                &[&desk.device_id],
            )
            .await
            .unwrap()
            .get(0);
    assert_eq!(stored, "disk said \u{fffd}no");
    let (status, body) = error(report("fine", "0.1\u{0}").await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.message.contains("NUL"), "{}", body.message);
}
