//! Appointments (and the overlap rule), the cash ledger, the tombstone horizon and the previous
//! client schema version, over real HTTP against the real server and a fresh database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use kaunter_core::Hlc;
use kaunter_protocol::http::{
    Change, ConflictKind, ConflictsResponse, DELETED_FIELD, EnrolRequest, EnrolResponse, Entity,
    ErrorBody, Fields, OutboxEntry, PatientRecord, PullResponse, PushRequest, PushResponse,
    Resolution, ResolveConflictRequest, WireStamp, error_code,
};
use kaunter_protocol::records::{
    AppointmentRecord, AppointmentStatus, CashKind, CashMovementRecord, EntityRecord, ringgit,
};
use kaunter_protocol::{IdType, SCHEMA_VERSION, Sex};
use kaunter_sync_server::admin::{self, CreatedBusiness, DEFAULT_ENROLMENT_CODE_TTL};
use kaunter_sync_server::purge;
use kaunter_sync_server::test_support::{TestDatabase, TestServer, digest_of_pulled};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

struct Fixture {
    server: TestServer,
    http: reqwest::Client,
    db: TestDatabase,
}

/// One enrolled device and the next seq of its outbox.
struct Desk {
    enrolled: EnrolResponse,
    next_seq: i64,
}

impl Fixture {
    async fn new() -> Fixture {
        Fixture::with_horizon(Some(purge::DEFAULT_HORIZON)).await
    }

    /// A server whose automatic purge uses `horizon` (None: off).
    async fn with_horizon(horizon: Option<std::time::Duration>) -> Fixture {
        let db = TestDatabase::create().await.unwrap();
        let state = kaunter_sync_server::AppState::new(
            kaunter_sync_server::db::connect_pool(db.app_config().unwrap(), 8).unwrap(),
        )
        .with_tombstone_horizon(horizon);
        let server = TestServer::start(state).await.unwrap();
        Fixture {
            server,
            http: reqwest::Client::new(),
            db,
        }
    }

    async fn business(&self, name: &str) -> CreatedBusiness {
        admin::create_business(self.server.pool(), name, "Main", None)
            .await
            .unwrap()
    }

    async fn desk(&self, business: &CreatedBusiness) -> Desk {
        let code = admin::create_enrolment_code(
            self.server.pool(),
            business.tenant_id,
            business.branch_id,
            DEFAULT_ENROLMENT_CODE_TTL,
        )
        .await
        .unwrap();
        let response = self
            .http
            .post(self.server.url("/v1/enrol"))
            .json(&EnrolRequest {
                code,
                device_name: "Desk".to_owned(),
                rotating_credentials: false,
                replaces_device: None,
                last_seq: 0,
            })
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        Desk {
            enrolled: response.json().await.unwrap(),
            next_seq: 1,
        }
    }

    /// Pushes one change per `(entity, row, fields)` from `desk` at `version`; the answer.
    async fn push(
        &self,
        desk: &mut Desk,
        version: u32,
        changes: Vec<(Entity, Uuid, Fields)>,
    ) -> PushResponse {
        let entries = changes
            .into_iter()
            .map(|(entity, row_id, fields)| {
                let seq = desk.next_seq;
                desk.next_seq += 1;
                OutboxEntry {
                    actor: None,
                    approver: None,
                    seq,
                    schema_version: version,
                    change: Change {
                        entity,
                        row_id,
                        branch_id: desk.enrolled.branch_id,
                        stamp: WireStamp {
                            hlc: next_hlc(),
                            device_id: desk.enrolled.device_id,
                        },
                        fields,
                        recorded_at: Utc::now(),
                    },
                }
            })
            .collect();
        let response = self
            .http
            .post(self.server.url("/v1/sync/push"))
            .bearer_auth(&desk.enrolled.device_token)
            .json(&PushRequest {
                schema_version: version,
                entries,
            })
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// Registers a new patient from `desk` and deletes it in the same push.
    async fn register_and_delete(&self, desk: &mut Desk) -> PushResponse {
        let gone = patient(desk);
        self.push(
            desk,
            SCHEMA_VERSION,
            vec![
                (Entity::Patient, gone.id, gone.fields()),
                (
                    Entity::Patient,
                    gone.id,
                    [(DELETED_FIELD.to_owned(), json!(true))].into(),
                ),
            ],
        )
        .await
    }

    async fn pull(&self, desk: &Desk, cursor: i64, version: Option<u32>) -> reqwest::Response {
        let mut url = format!("{}?cursor={cursor}", self.server.url("/v1/sync/pull"));
        if let Some(version) = version {
            url.push_str(&format!("&schema_version={version}"));
        }
        self.http
            .get(url)
            .bearer_auth(&desk.enrolled.device_token)
            .send()
            .await
            .unwrap()
    }

    async fn pull_ok(&self, desk: &Desk, cursor: i64, version: Option<u32>) -> PullResponse {
        let response = self.pull(desk, cursor, version).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// The open conflicts `desk` is shown, as a desk of the current version.
    async fn conflicts(&self, desk: &Desk) -> ConflictsResponse {
        self.conflicts_as(desk, Some(SCHEMA_VERSION)).await
    }

    async fn conflicts_as(&self, desk: &Desk, version: Option<u32>) -> ConflictsResponse {
        let mut url = self.server.url("/v1/conflicts");
        if let Some(version) = version {
            url.push_str(&format!("?schema_version={version}"));
        }
        let response = self
            .http
            .get(url)
            .bearer_auth(&desk.enrolled.device_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn resolve(
        &self,
        desk: &Desk,
        conflict_id: Uuid,
        resolution: Resolution,
    ) -> reqwest::Response {
        self.http
            .post(self.server.url("/v1/conflicts/resolve"))
            .bearer_auth(&desk.enrolled.device_token)
            .json(&ResolveConflictRequest {
                conflict_id,
                resolution,
            })
            .send()
            .await
            .unwrap()
    }

    async fn count(&self, what: &str) -> i64 {
        self.db
            .owner_client()
            .await
            .unwrap()
            .query_one(&format!("SELECT count(*) FROM {what}"), &[])
            .await
            .unwrap()
            .get(0)
    }
}

/// Unique, increasing stamps for this process (a clock of its own).
fn next_hlc() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = Hlc::new(u64::try_from(Utc::now().timestamp_millis()).unwrap(), 0)
        .unwrap()
        .as_u64();
    let previous = LAST
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some((last + 1).max(now))
        })
        .unwrap();
    (previous + 1).max(now)
}

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, hour, minute, 0).unwrap()
}

fn patient(desk: &Desk) -> PatientRecord {
    PatientRecord {
        id: Uuid::now_v7(),
        branch_id: desk.enrolled.branch_id,
        full_name: "Siti binti Ahmad".to_owned(),
        id_type: IdType::Mykad,
        id_number: format!("9001011{:05}", next_hlc() % 100_000),
        phone: None,
        date_of_birth: None,
        sex: Some(Sex::Female),
    }
}

fn booking(
    desk: &Desk,
    patient: Uuid,
    practitioner: Uuid,
    from: (u32, u32),
    to: (u32, u32),
) -> AppointmentRecord {
    AppointmentRecord {
        id: Uuid::now_v7(),
        branch_id: desk.enrolled.branch_id,
        patient_id: patient,
        practitioner_id: practitioner,
        starts_at: at(from.0, from.1),
        ends_at: at(to.0, to.1),
        status: AppointmentStatus::Booked,
        note: Some("Demam".to_owned()),
    }
}

fn codes(answer: &PushResponse) -> Vec<(i64, &str)> {
    answer
        .rejected
        .iter()
        .map(|r| (r.seq, r.code.as_str()))
        .collect()
}

#[tokio::test]
async fn overlapping_bookings_from_two_desks_become_a_conflict_resolved_by_cancelling_one() {
    let fx = Fixture::new().await;
    let business = fx.business("Klinik Overlap").await;
    let (mut desk_a, mut desk_b) = (fx.desk(&business).await, fx.desk(&business).await);
    let doctor = Uuid::now_v7();
    let siti = patient(&desk_a);
    let first = booking(&desk_a, siti.id, doctor, (9, 0), (9, 30));
    let answer = fx
        .push(
            &mut desk_a,
            SCHEMA_VERSION,
            vec![
                (Entity::Patient, siti.id, siti.fields()),
                (Entity::Appointment, first.id, first.fields()),
            ],
        )
        .await;
    assert_eq!(codes(&answer), []);
    // Desk B, offline, booked the same doctor at 9:15; and someone else at 9:30 (no clash).
    let clash = booking(&desk_b, siti.id, doctor, (9, 15), (9, 45));
    let back_to_back = booking(&desk_b, siti.id, doctor, (9, 30), (10, 0));
    let answer = fx
        .push(
            &mut desk_b,
            SCHEMA_VERSION,
            vec![
                (Entity::Appointment, clash.id, clash.fields()),
                (Entity::Appointment, back_to_back.id, back_to_back.fields()),
            ],
        )
        .await;
    assert_eq!(codes(&answer), [], "both are stored: nothing is dropped");

    // 9:15-9:45 clashes with 9:00-9:30 and with 9:30-10:00; back to back is fine.
    let conflicts = fx.conflicts(&desk_a).await.conflicts;
    let mut pairs: Vec<(Uuid, Uuid)> = conflicts.iter().map(|c| (c.row_a, c.row_b)).collect();
    pairs.sort();
    let mut want = vec![(first.id, clash.id), (clash.id, back_to_back.id)];
    want.sort();
    assert_eq!(pairs, want);
    let conflict = conflicts
        .iter()
        .find(|c| c.row_a == first.id)
        .expect("the 9:00/9:15 conflict");
    assert_eq!(conflict.kind, ConflictKind::AppointmentOverlap);
    assert_eq!(conflict.entity, Entity::Appointment);
    assert_eq!(conflict.version_a, first.fields());
    assert_eq!(conflict.version_b, clash.fields());
    assert_eq!(conflict.detected_by, desk_b.enrolled.device_id);

    // Two bookings cannot be merged; keeping the first can be recorded.
    let response = fx
        .resolve(&desk_a, conflict.conflict_id, Resolution::MergeIntoA)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.code, error_code::RESOLUTION_NOT_ALLOWED);
    let response = fx
        .resolve(&desk_a, conflict.conflict_id, Resolution::KeepA)
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    // Another business's desk sees none of it and cannot resolve it.
    let other = fx.business("Klinik Lain").await;
    let stranger = fx.desk(&other).await;
    assert!(fx.conflicts(&stranger).await.conflicts.is_empty());
    let response = fx
        .resolve(&stranger, conflict.conflict_id, Resolution::KeepB)
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // The data side: desk A cancels the later booking; a cancelled booking clashes with nobody.
    let answer = fx
        .push(
            &mut desk_a,
            SCHEMA_VERSION,
            vec![(
                Entity::Appointment,
                clash.id,
                [("status".to_owned(), json!("cancelled"))].into(),
            )],
        )
        .await;
    assert_eq!(codes(&answer), []);
    let before = fx.count("conflicts").await;
    // Moving the cancelled one back to 9:00 creates no new conflict.
    let answer = fx
        .push(
            &mut desk_b,
            SCHEMA_VERSION,
            vec![(
                Entity::Appointment,
                clash.id,
                [
                    ("starts_at".to_owned(), json!(at(9, 0))),
                    ("ends_at".to_owned(), json!(at(9, 30))),
                ]
                .into(),
            )],
        )
        .await;
    assert_eq!(codes(&answer), []);
    assert_eq!(fx.count("conflicts").await, before);
    fx.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn bookings_are_checked_and_their_times_travel_together() {
    let fx = Fixture::new().await;
    let business = fx.business("Klinik Semak").await;
    let mut desk = fx.desk(&business).await;
    let doctor = Uuid::now_v7();
    let good = booking(&desk, Uuid::now_v7(), doctor, (10, 0), (10, 30));
    let backwards = booking(&desk, Uuid::now_v7(), doctor, (11, 0), (10, 30));
    let mut seconds = booking(&desk, Uuid::now_v7(), doctor, (12, 0), (12, 30)).fields();
    seconds.insert("starts_at".to_owned(), json!("2026-12-01T12:00:05Z"));
    let mut offset = booking(&desk, Uuid::now_v7(), doctor, (13, 0), (13, 30)).fields();
    offset.insert("starts_at".to_owned(), json!("2026-12-01T21:00:00+08:00"));
    let answer = fx
        .push(
            &mut desk,
            SCHEMA_VERSION,
            vec![
                (Entity::Appointment, good.id, good.fields()),
                (Entity::Appointment, backwards.id, backwards.fields()),
                (Entity::Appointment, Uuid::now_v7(), seconds),
                (Entity::Appointment, Uuid::now_v7(), offset),
                // Moving only the start would pair it with another write's end.
                (
                    Entity::Appointment,
                    good.id,
                    [("starts_at".to_owned(), json!(at(9, 0)))].into(),
                ),
                (
                    Entity::Appointment,
                    good.id,
                    [("status".to_owned(), json!("on_leave"))].into(),
                ),
            ],
        )
        .await;
    let fields: Vec<(i64, Vec<(&str, &str)>)> = answer
        .rejected
        .iter()
        .map(|r| {
            (
                r.seq,
                r.fields
                    .iter()
                    .map(|f| (f.field.as_str(), f.code.as_str()))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            (2, vec![("seq[2].ends_at", "invalid")]),
            (3, vec![("seq[3].starts_at", "invalid")]),
            (4, vec![("seq[4].starts_at", "not_canonical")]),
            (5, vec![("seq[5].ends_at", "required_with_pair")]),
            (6, vec![]),
        ]
    );
    assert!(answer.rejected[4].message.contains("would be incomplete"));
    assert_eq!(answer.acked_seq, 6);
    assert_eq!(fx.count("appointments").await, 1);
    fx.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn ledger_entries_are_written_once_and_the_balance_is_their_sum() {
    let fx = Fixture::new().await;
    let business = fx.business("Klinik Tunai").await;
    let (mut desk_a, mut desk_b) = (fx.desk(&business).await, fx.desk(&business).await);
    let movement = |desk: &Desk, kind: CashKind, amount: &str| CashMovementRecord {
        id: Uuid::now_v7(),
        branch_id: desk.enrolled.branch_id,
        kind,
        amount: ringgit::parse(amount).unwrap(),
        patient_id: None,
        note: None,
    };
    let float = movement(&desk_a, CashKind::FloatIn, "200.00");
    let paid = movement(&desk_a, CashKind::Payment, "45.50");
    let refund = movement(&desk_b, CashKind::Refund, "10.00");
    let answer = fx
        .push(
            &mut desk_a,
            SCHEMA_VERSION,
            vec![
                (Entity::CashMovement, float.id, float.fields()),
                (Entity::CashMovement, paid.id, paid.fields()),
            ],
        )
        .await;
    assert_eq!(codes(&answer), []);
    let mut sloppy = movement(&desk_b, CashKind::Payment, "1.00").fields();
    sloppy.insert("amount".to_owned(), json!("12.3"));
    let answer = fx
        .push(
            &mut desk_b,
            SCHEMA_VERSION,
            vec![
                (Entity::CashMovement, refund.id, refund.fields()),
                // Changing or deleting an entry: refused, the entry stays as written.
                (
                    Entity::CashMovement,
                    paid.id,
                    [("amount".to_owned(), json!("4.55"))].into(),
                ),
                (
                    Entity::CashMovement,
                    float.id,
                    [(DELETED_FIELD.to_owned(), json!(true))].into(),
                ),
                (Entity::CashMovement, Uuid::now_v7(), sloppy),
            ],
        )
        .await;
    assert_eq!(
        codes(&answer),
        [
            (2, error_code::LEDGER_ENTRY_IMMUTABLE),
            (3, error_code::VALIDATION_FAILED),
            (4, error_code::VALIDATION_FAILED),
        ]
    );
    let balance: i64 = fx
        .db
        .owner_client()
        .await
        .unwrap()
        .query_one(
            "SELECT sum(CASE WHEN kind IN ('payment', 'float_in') THEN amount_sen
                             ELSE -amount_sen END)::bigint FROM cash_movements",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(balance, 20_000 + 4_550 - 1_000);
    // Both desks are sent all three entries.
    let pulled = fx.pull_ok(&desk_b, 0, Some(SCHEMA_VERSION)).await;
    let mut ids: Vec<Uuid> = pulled.changes.iter().map(|c| c.change.row_id).collect();
    ids.sort();
    let mut want = vec![float.id, paid.id, refund.id];
    want.sort();
    assert_eq!(ids, want);
    fx.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_desk_of_the_previous_version_is_served_what_it_knows() {
    let fx = Fixture::new().await;
    let business = fx.business("Klinik Lama").await;
    let (mut old, mut new) = (fx.desk(&business).await, fx.desk(&business).await);
    let siti = patient(&old);
    let too_new = booking(&old, siti.id, Uuid::now_v7(), (9, 0), (9, 30));
    let answer = fx
        .push(
            &mut old,
            2,
            vec![
                (Entity::Patient, siti.id, siti.fields()),
                // Version 2 had no appointments: an entry claiming one is refused alone.
                (Entity::Appointment, too_new.id, too_new.fields()),
            ],
        )
        .await;
    assert_eq!(
        codes(&answer),
        [(2, error_code::UNSUPPORTED_SCHEMA_VERSION)]
    );
    let doctor = Uuid::now_v7();
    let visit = booking(&new, siti.id, doctor, (9, 0), (9, 30));
    let clash = booking(&new, siti.id, doctor, (9, 15), (9, 45));
    let answer = fx
        .push(
            &mut new,
            SCHEMA_VERSION,
            vec![
                (Entity::Appointment, visit.id, visit.fields()),
                (Entity::Appointment, clash.id, clash.fields()),
            ],
        )
        .await;
    assert_eq!(codes(&answer), []);
    // An overlap conflict exists; the old desk is neither shown it nor counts it (it could not
    // read its kind), the new one is.
    assert!(fx.conflicts_as(&old, None).await.conflicts.is_empty());
    assert_eq!(fx.conflicts(&new).await.conflicts.len(), 1);
    let raw = fx.pull(&old, 0, None).await.text().await.unwrap();
    assert!(!raw.contains("purged_seq"), "{raw}");
    assert!(!raw.contains("created_at"), "{raw}");
    assert!(raw.contains("\"open_conflicts\":0"), "{raw}");

    // The old desk (no schema_version on pull) gets the patient only, and no checkpoint: its
    // rows are not the whole branch, so no digest describes them.
    let page = fx.pull_ok(&old, 0, None).await;
    let entities: Vec<Entity> = page.changes.iter().map(|c| c.change.entity).collect();
    assert_eq!(entities, [Entity::Patient]);
    assert_eq!(page.checkpoint, None);
    // The current desk gets both, with a checkpoint.
    let page = fx.pull_ok(&new, 0, Some(SCHEMA_VERSION)).await;
    let entities: Vec<Entity> = page.changes.iter().map(|c| c.change.entity).collect();
    assert_eq!(
        entities,
        [Entity::Patient, Entity::Appointment, Entity::Appointment]
    );
    assert!(page.checkpoint.is_some());
    assert!(page.changes.iter().all(|c| c.created_at.is_some()));
    assert_eq!((page.open_conflicts, page.purged_seq), (1, Some(0)));
    // A version the server does not know is refused with its code.
    for version in [1, SCHEMA_VERSION + 1] {
        let response = fx.pull(&new, 0, Some(version)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: ErrorBody = response.json().await.unwrap();
        assert_eq!(body.code, error_code::UNSUPPORTED_SCHEMA_VERSION);
    }
    fx.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn purged_tombstones_are_gone_cannot_come_back_and_send_stale_desks_to_resync() {
    let fx = Fixture::new().await;
    let business = fx.business("Klinik Purge").await;
    let (mut desk_a, mut desk_b) = (fx.desk(&business).await, fx.desk(&business).await);
    let (gone, kept) = (patient(&desk_a), patient(&desk_a));
    let paid = CashMovementRecord {
        id: Uuid::now_v7(),
        branch_id: desk_a.enrolled.branch_id,
        kind: CashKind::Payment,
        amount: ringgit::parse("30.00").unwrap(),
        patient_id: Some(gone.id),
        note: None,
    };
    fx.push(
        &mut desk_a,
        SCHEMA_VERSION,
        vec![
            (Entity::Patient, gone.id, gone.fields()),
            (Entity::Patient, kept.id, kept.fields()),
            (Entity::CashMovement, paid.id, paid.fields()),
        ],
    )
    .await;
    // Desk B pulls once (cursor 3), then goes away.
    let early = fx.pull_ok(&desk_b, 0, Some(SCHEMA_VERSION)).await;
    assert_eq!(early.next_cursor, 3);
    fx.push(
        &mut desk_a,
        SCHEMA_VERSION,
        vec![(
            Entity::Patient,
            gone.id,
            [(DELETED_FIELD.to_owned(), json!(true))].into(),
        )],
    )
    .await;
    // A refused edit of the patient (its record keeps the change's values until the purge).
    let refused = fx
        .push(
            &mut desk_a,
            SCHEMA_VERSION,
            vec![(
                Entity::Patient,
                gone.id,
                [("phone".to_owned(), json!("012-345 6789"))].into(),
            )],
        )
        .await;
    assert_eq!(codes(&refused), [(5, error_code::VALIDATION_FAILED)]);
    let before = fx.pull_ok(&desk_a, 0, Some(SCHEMA_VERSION)).await;

    // Nothing is older than a 90-day horizon yet: the default purge removes nothing.
    let report =
        purge::purge_older_than(fx.server.pool(), business.tenant_id, purge::DEFAULT_HORIZON)
            .await
            .unwrap();
    assert_eq!((report.purged_seq, report.rows), (0, 0));
    // With the horizon at now, the deleted patient goes; its change-log entries (ids only)
    // stay.
    let report = purge::purge_older_than(
        fx.server.pool(),
        business.tenant_id,
        std::time::Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!((report.purged_seq, report.rows), (4, 1));
    assert_eq!(fx.count("patients").await, 1);
    assert_eq!(
        fx.count("cash_movements").await,
        1,
        "ledger entries are never purged"
    );
    assert_eq!(fx.count("purged_rows").await, 1);

    // A fresh pull no longer carries the deleted patient, and its digest no longer counts it:
    // it equals the digest of the rows that are left.
    let after = fx.pull_ok(&desk_a, 0, Some(SCHEMA_VERSION)).await;
    let rows: Vec<Uuid> = after.changes.iter().map(|c| c.change.row_id).collect();
    assert_eq!(rows, [kept.id, paid.id]);
    assert_eq!(after.purged_seq, Some(4));
    assert_ne!(after.checkpoint, before.checkpoint);
    assert_eq!(
        after.checkpoint.map(|c| c.digest),
        Some(digest_of_pulled(&after.changes))
    );

    // Desk B, behind the horizon, is told to resync; from 0 it is served.
    let response = fx
        .pull(&desk_b, early.next_cursor, Some(SCHEMA_VERSION))
        .await;
    assert_eq!(response.status(), StatusCode::GONE);
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.code, error_code::RESYNC_REQUIRED);
    // Its late edit of the purged patient is refused: it cannot bring the row back.
    let answer = fx
        .push(
            &mut desk_b,
            SCHEMA_VERSION,
            vec![(
                Entity::Patient,
                gone.id,
                [("full_name".to_owned(), json!("Siti binti Ali"))].into(),
            )],
        )
        .await;
    assert_eq!(codes(&answer), [(1, error_code::ROW_PURGED)]);
    assert_eq!(fx.count("patients").await, 1);
    // No refusal kept on the server still carries the purged patient's values.
    let kept: Vec<serde_json::Value> = fx
        .db
        .owner_client()
        .await
        .unwrap()
        .query(
            "SELECT change FROM rejected_changes ORDER BY received_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(kept.len(), 2);
    for change in &kept {
        let text = change.to_string();
        assert!(
            !text.contains("345 6789") && !text.contains("Siti"),
            "{text}"
        );
    }
    fx.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn the_server_purges_each_business_once_a_day_after_a_push() {
    // A horizon of zero: anything deleted before the purge runs is old enough.
    let fx = Fixture::with_horizon(Some(std::time::Duration::ZERO)).await;
    let business = fx.business("Klinik Jadual").await;
    let mut desk = fx.desk(&business).await;
    let answer = fx.register_and_delete(&mut desk).await;
    assert_eq!(codes(&answer), []);
    // That push claimed the day's purge, which runs after it commits.
    let mut waited = 0;
    while fx.count("purged_rows").await == 0 {
        assert!(waited < 100, "the scheduled purge did not run within 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(fx.count("patients").await, 0);
    // The next purge is a day away: a second deleted patient stays until then.
    fx.register_and_delete(&mut desk).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(fx.count("patients").await, 1);
    assert_eq!(fx.count("purged_rows").await, 1);
    let due: bool = fx
        .db
        .owner_client()
        .await
        .unwrap()
        .query_one(
            "SELECT next_purge_at > now() + interval '23 hours' FROM tenants WHERE tenant_id = $1",
            &[&business.tenant_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(due, "the next purge is a day on");
    fx.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn with_the_automatic_purge_off_nothing_is_purged() {
    let fx = Fixture::with_horizon(None).await;
    let business = fx.business("Klinik Tanpa").await;
    let mut desk = fx.desk(&business).await;
    fx.register_and_delete(&mut desk).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(fx.count("patients").await, 1);
    assert_eq!(fx.count("purged_rows").await, 0);
    fx.db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_sale_and_a_registration_whose_push_was_overtaken_are_stored_once() {
    // Desk A's push (a float-in, a new patient) gets its head start, then waits for the
    // device's lock while desk B's push takes the business's next change seqs. A's guess no
    // longer holds: its patient, written ahead, is taken back and written again; its ledger
    // entry (insert-only to the server) was never written ahead. Both end up stored once, and
    // a fresh pull's digest counts each row once.
    let fx = Fixture::new().await;
    let business = fx.business("Klinik Tunai").await;
    let (mut desk_a, mut desk_b) = (fx.desk(&business).await, fx.desk(&business).await);
    let float_in = |desk: &Desk| CashMovementRecord {
        id: Uuid::now_v7(),
        branch_id: desk.enrolled.branch_id,
        kind: CashKind::FloatIn,
        amount: ringgit::parse("200.00").unwrap(),
        patient_id: None,
        note: None,
    };
    let (of_a, of_b, registered) = (float_in(&desk_a), float_in(&desk_b), patient(&desk_a));
    let mut owner = fx.db.owner_client().await.unwrap();
    let hold = owner.transaction().await.unwrap();
    hold.execute(
        "SELECT 1 FROM device_marks WHERE device_id = $1 FOR UPDATE",
        &[&desk_a.enrolled.device_id],
    )
    .await
    .unwrap();
    let a_push = fx.push(
        &mut desk_a,
        SCHEMA_VERSION,
        vec![
            (Entity::CashMovement, of_a.id, of_a.fields()),
            (Entity::Patient, registered.id, registered.fields()),
        ],
    );
    let b_then_release = async {
        fx.db.lock_waiters(1).await.unwrap();
        let b = fx
            .push(
                &mut desk_b,
                SCHEMA_VERSION,
                vec![(Entity::CashMovement, of_b.id, of_b.fields())],
            )
            .await;
        hold.rollback().await.unwrap();
        b
    };
    let (a, b) = tokio::join!(a_push, b_then_release);
    assert_eq!((a.acked_seq, a.rejected.len()), (2, 0));
    assert_eq!((b.acked_seq, b.rejected.len()), (1, 0));
    assert_eq!(fx.count("cash_movements").await, 2);
    assert_eq!(fx.count("patients").await, 1);
    // B's change came first.
    assert_eq!(
        fx.count("cash_movements WHERE last_change_seq = 1").await,
        1
    );
    let pulled = fx.pull_ok(&desk_b, 0, Some(SCHEMA_VERSION)).await;
    let mut rows: Vec<Uuid> = pulled.changes.iter().map(|c| c.change.row_id).collect();
    rows.sort_unstable();
    rows.dedup();
    let mut expected = vec![of_a.id, of_b.id, registered.id];
    expected.sort_unstable();
    assert_eq!(rows, expected);
    assert_eq!(
        pulled.checkpoint.map(|c| c.digest),
        Some(digest_of_pulled(&pulled.changes))
    );
    fx.db.drop_db().await.unwrap();
}
