//! `GET /v1/conflicts` and `POST /v1/conflicts/resolve`: the conflicts the server found between
//! desks' changes (see [`record_duplicates`] and [`detect_overlaps`]), for the branch of the
//! calling device.
//!
//! Resolving records a person's decision; the data side of it (deleting the row that goes,
//! filling the kept one) travels as ordinary changes from the desk that resolved it, so it merges
//! like any other edit.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, DurationRound, Utc};

use axum::Json;
use axum::extract::State;
use kaunter_protocol::ACCEPTED_SCHEMA_VERSIONS;
use kaunter_protocol::http::{
    ConflictKind, ConflictView, ConflictsResponse, Entity, Fields, PatientRecord, Resolution,
    ResolveConflictRequest,
};
use kaunter_protocol::records::{AppointmentRecord, EntityRecord};
use serde::Deserialize;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{self, Bearer, Device, RowLock};
use crate::columns::{id_type_from_text, id_type_text, sex_from_text};
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::extract::{JsonBody, QueryParams};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `open` (the default) or `all`.
    #[serde(default)]
    pub state: StateFilter,
    /// The desk's client schema version; absent means 2, which knows only duplicate patients.
    pub schema_version: Option<u32>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateFilter {
    #[default]
    Open,
    All,
}

const COLUMNS: &str = "conflict_id, kind, entity, row_a, row_b, version_a, version_b, \
                       detected_at, detected_by, resolution, resolved_at, resolved_by";

pub async fn list(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<ConflictsResponse>> {
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let device = auth::authenticate(&tx, &token, RowLock::None).await?;
    crate::subscription::require(device.access, crate::subscription::SyncNeed::Pull)?;
    let open_only = matches!(query.state, StateFilter::Open);
    let version = query.schema_version.unwrap_or(2);
    if !ACCEPTED_SCHEMA_VERSIONS.contains(&version) {
        return Err(Error::UnsupportedSchemaVersion(version));
    }
    let kinds = kinds_known_to(version);
    let rows = tx
        .query(
            &format!(
                "SELECT {COLUMNS} FROM conflicts
                 WHERE tenant_id = $1 AND branch_id = $2 AND (NOT $3 OR resolution IS NULL)
                   AND kind = ANY($4)
                 ORDER BY detected_at DESC, conflict_id DESC
                 LIMIT 500"
            ),
            &[&device.tenant_id, &device.branch_id, &open_only, &kinds],
        )
        .await?;
    tx.commit().await?;
    let conflicts = rows.iter().map(view).collect::<Result<_>>()?;
    Ok(Json(ConflictsResponse { conflicts }))
}

pub async fn resolve(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    JsonBody(request): JsonBody<ResolveConflictRequest>,
) -> Result<Json<ConflictView>> {
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let device = auth::authenticate(&tx, &token, RowLock::None).await?;
    // Resolving is a change: not in the subscription's grace or suspension.
    crate::subscription::require(device.access, crate::subscription::SyncNeed::Push)?;
    let row = tx
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM conflicts
                 WHERE tenant_id = $1 AND branch_id = $2 AND conflict_id = $3
                 FOR UPDATE"
            ),
            &[&device.tenant_id, &device.branch_id, &request.conflict_id],
        )
        .await?
        .ok_or(Error::UnknownConflict)?;
    let current = view(&row)?;
    if current.kind == ConflictKind::AppointmentOverlap
        && request.resolution == Resolution::MergeIntoA
    {
        return Err(Error::ResolutionNotAllowed);
    }
    match current.resolution {
        Some(done) if done == request.resolution => {
            tx.commit().await?;
            return Ok(Json(current));
        }
        Some(_) => return Err(Error::ConflictAlreadyResolved),
        None => {}
    }
    let row = tx
        .query_one(
            &format!(
                "UPDATE conflicts SET resolution = $4, resolved_at = now(), resolved_by = $3
                 WHERE tenant_id = $1 AND conflict_id = $2
                 RETURNING {COLUMNS}"
            ),
            &[
                &device.tenant_id,
                &request.conflict_id,
                &device.device_id,
                &resolution_text(request.resolution),
            ],
        )
        .await?;
    tx.commit().await?;
    tracing::info!(conflict = %request.conflict_id, resolution = resolution_text(request.resolution), "conflict resolved");
    Ok(Json(view(&row)?))
}

/// The conflict kinds a desk of client schema `version` can read.
fn kinds_known_to(version: u32) -> Vec<&'static str> {
    if version >= 3 {
        vec!["duplicate_id_number", "appointment_overlap"]
    } else {
        vec!["duplicate_id_number"]
    }
}

/// Counts the open conflicts of the device's branch that a desk of `version` can read (for the
/// status every pull reports).
pub async fn open_count(tx: &TenantTx<'_>, device: &Device, version: u32) -> Result<u32> {
    let count: i64 = tx
        .query_one_cached(
            "SELECT count(*) FROM conflicts
             WHERE tenant_id = $1 AND branch_id = $2 AND resolution IS NULL AND kind = ANY($3)",
            &[
                &device.tenant_id,
                &device.branch_id,
                &kinds_known_to(version),
            ],
        )
        .await?
        .try_get(0)?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// A live patient with when it was first registered (the earliest of a pair is `row_a`).
pub type Registered = (PatientRecord, DateTime<Utc>);

/// A [`Registered`] borrowed.
type RegisteredRef<'a> = (&'a PatientRecord, DateTime<Utc>);

/// Before a batch's rows are written: the live patients already stored with one of the
/// document `numbers` (those of the live patients the batch leaves). The caller drops the rows
/// the batch changed (their stored state is stale). Asked before the write so the index probes
/// meet only other rows: for a branch's first upload, nothing at all (one probe per number, in
/// one query; the lateral subquery with OFFSET 0 is not flattened into a join, so no plan can
/// scan the business; see rows.rs).
pub async fn duplicate_candidates(
    tx: &TenantTx<'_>,
    device: &Device,
    numbers: &[&str],
) -> Result<Vec<Registered>> {
    if numbers.is_empty() {
        return Ok(Vec::new());
    }
    let found = tx
        .query_cached(
            "SELECT p.* FROM unnest($2::text[]) AS k(number)
             CROSS JOIN LATERAL (
                 SELECT patient_id, branch_id, full_name, id_type, id_number, phone,
                        date_of_birth, sex, created_at
                 FROM patients
                 WHERE tenant_id = $1 AND id_number = k.number AND NOT deleted
                 OFFSET 0
             ) AS p",
            &[&device.tenant_id, &numbers],
        )
        .await?;
    found
        .iter()
        .map(|row| {
            let id_type: String = row.try_get(3)?;
            let sex: Option<String> = row.try_get(7)?;
            let record = PatientRecord {
                id: row.try_get(0)?,
                branch_id: row.try_get(1)?,
                full_name: row.try_get(2)?,
                id_type: id_type_from_text(&id_type)?,
                id_number: row.try_get(4)?,
                phone: row.try_get(5)?,
                date_of_birth: row.try_get(6)?,
                sex: sex.as_deref().map(sex_from_text).transpose()?,
            };
            Ok((record, row.try_get(8)?))
        })
        .collect()
}

/// After the batch's rows are written: records a `duplicate_id_number` conflict for every pair
/// of live patients of the business that share an identity document (type and number), when one
/// of the two is in `touched`; `stored` are the [`duplicate_candidates`]. The earliest
/// registration is `row_a` (ties by id); a pair already recorded is left alone. Returns how many
/// were new.
pub async fn record_duplicates(
    tx: &TenantTx<'_>,
    device: &Device,
    touched: &[Registered],
    stored: Vec<Registered>,
) -> Result<u64> {
    if touched.is_empty() {
        return Ok(0);
    }
    let touched_ids: HashSet<Uuid> = touched.iter().map(|(record, _)| record.id).collect();
    // Grouped by document, borrowed: a branch's first upload has hundreds of patients and
    // (nearly) no group of two.
    let mut groups: BTreeMap<(&'static str, &str), Vec<RegisteredRef<'_>>> = BTreeMap::new();
    for (record, created_at) in stored.iter().chain(touched) {
        // As PostgreSQL keeps it (rounded to microseconds), so a row sorts the same before and after it
        // is stored.
        let created_at = created_at
            .duration_round(chrono::TimeDelta::microseconds(1))
            .unwrap_or(*created_at);
        groups
            .entry((id_type_text(record.id_type), record.id_number.as_str()))
            .or_default()
            .push((record, created_at));
    }
    let mut found = 0;
    for group in groups.values_mut().filter(|group| group.len() > 1) {
        group.sort_by_key(|(record, created_at)| (*created_at, record.id));
        let first = group[0].0;
        for &(later, _) in &group[1..] {
            if !touched_ids.contains(&first.id) && !touched_ids.contains(&later.id) {
                continue;
            }
            found += record(
                tx,
                device,
                ConflictKind::DuplicateIdNumber,
                later.branch_id,
                (first.id, &first.fields()),
                (later.id, &later.fields()),
            )
            .await?;
        }
    }
    if found > 0 {
        tracing::info!(tenant = %device.tenant_id, found, "duplicate identity documents found");
    }
    Ok(found)
}

/// Records an `appointment_overlap` conflict for every pair of live bookings of one practitioner
/// at one branch whose slots overlap, when one of the two is in `touched` (just written). The earlier-made
/// booking is `row_a`; a pair already recorded is left alone. Returns how many were new.
pub async fn detect_overlaps(tx: &TenantTx<'_>, device: &Device, touched: &[Uuid]) -> Result<u64> {
    if touched.is_empty() {
        return Ok(0);
    }
    const COLUMNS: &str = "appointment_id, branch_id, created_at, patient_id, practitioner_id, \
                           starts_at, ends_at, status, note";
    let mine = tx
        .prepare(&format!(
            "SELECT {COLUMNS} FROM appointments
             WHERE tenant_id = $1 AND appointment_id = $2 AND NOT deleted
               AND status IN ('booked', 'arrived')"
        ))
        .await?;
    // The practitioner's other live bookings at the same branch that start before this one
    // ends and end after it starts. A booking lasts at most a day, so none starting a day or
    // more before this one can reach it: that bounds the walk of the partial index. (Bookings
    // of one practitioner at two branches are not compared: no desk of either branch could
    // resolve such a pair, and neither branch may see the other's bookings.)
    let others = tx
        .prepare(&format!(
            "SELECT {COLUMNS} FROM appointments
             WHERE tenant_id = $1 AND practitioner_id = $2 AND appointment_id <> $3
               AND starts_at < $5 AND starts_at > $4::timestamptz - interval '1 day'
               AND ends_at > $4
               AND branch_id = $6
               AND NOT deleted AND status IN ('booked', 'arrived')"
        ))
        .await?;
    let decode = |row: &Row| -> Result<(Uuid, chrono::DateTime<chrono::Utc>, AppointmentRecord)> {
        let id: Uuid = row.try_get(0)?;
        let branch_id: Uuid = row.try_get(1)?;
        let fields = crate::rows::typed_fields(Entity::Appointment, id, branch_id, row, 3)?;
        let record = AppointmentRecord::from_fields(id, branch_id, &fields)
            .map_err(|e| Error::Internal(format!("a stored appointment: {e}")))?;
        Ok((branch_id, row.try_get(2)?, record))
    };
    let mut found = 0;
    for id in touched {
        let Some(row) = tx.query_opt(&mine, &[&device.tenant_id, id]).await? else {
            continue;
        };
        let (branch_a, created_a, this) = decode(&row)?;
        let clashing = tx
            .query(
                &others,
                &[
                    &device.tenant_id,
                    &this.practitioner_id,
                    &this.id,
                    &this.starts_at,
                    &this.ends_at,
                    &branch_a,
                ],
            )
            .await?;
        for other in &clashing {
            let (branch_b, created_b, other) = decode(other)?;
            // Earlier-made first; the later booking's branch sees and resolves it.
            let ((_, first), (branch, later)) = if (created_a, this.id) <= (created_b, other.id) {
                ((branch_a, &this), (branch_b, &other))
            } else {
                ((branch_b, &other), (branch_a, &this))
            };
            found += record(
                tx,
                device,
                ConflictKind::AppointmentOverlap,
                branch,
                (first.id, &first.fields()),
                (later.id, &later.fields()),
            )
            .await?;
        }
    }
    if found > 0 {
        tracing::info!(tenant = %device.tenant_id, found, "overlapping bookings found");
    }
    Ok(found)
}

/// Records a conflict between rows `a` (the earlier) and `b` with the versions found, for
/// `branch`'s desks to resolve; a pair already recorded is left alone. Returns 1 if new.
async fn record(
    tx: &TenantTx<'_>,
    device: &Device,
    kind: ConflictKind,
    branch: Uuid,
    (row_a, version_a): (Uuid, &Fields),
    (row_b, version_b): (Uuid, &Fields),
) -> Result<u64> {
    let (kind, entity) = match kind {
        ConflictKind::DuplicateIdNumber => ("duplicate_id_number", Entity::Patient),
        ConflictKind::AppointmentOverlap => ("appointment_overlap", Entity::Appointment),
    };
    tx.execute_cached(
        "INSERT INTO conflicts (tenant_id, conflict_id, kind, entity, branch_id,
                 row_a, row_b, version_a, version_b, detected_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (tenant_id, kind, row_a, row_b) DO NOTHING",
        &[
            &device.tenant_id,
            &Uuid::now_v7(),
            &kind,
            &entity.as_str(),
            &branch,
            &row_a,
            &row_b,
            &json(version_a)?,
            &json(version_b)?,
            &device.device_id,
        ],
    )
    .await
}

fn json(fields: &Fields) -> Result<serde_json::Value> {
    serde_json::to_value(fields).map_err(|e| Error::Internal(format!("encoding a version: {e}")))
}

fn resolution_text(resolution: Resolution) -> &'static str {
    match resolution {
        Resolution::KeepBoth => "keep_both",
        Resolution::KeepA => "keep_a",
        Resolution::KeepB => "keep_b",
        Resolution::MergeIntoA => "merge_into_a",
    }
}

fn view(row: &Row) -> Result<ConflictView> {
    let kind: String = row.try_get(1)?;
    let resolution: Option<String> = row.try_get(9)?;
    let decode = |value: serde_json::Value| -> Result<Fields> {
        serde_json::from_value(value).map_err(|e| Error::Internal(format!("a stored version: {e}")))
    };
    Ok(ConflictView {
        conflict_id: row.try_get(0)?,
        kind: match kind.as_str() {
            "duplicate_id_number" => ConflictKind::DuplicateIdNumber,
            "appointment_overlap" => ConflictKind::AppointmentOverlap,
            other => return Err(Error::Internal(format!("unknown conflict kind {other:?}"))),
        },
        entity: {
            let entity: String = row.try_get(2)?;
            Entity::parse(&entity)
                .ok_or_else(|| Error::Internal(format!("unknown conflict entity {entity:?}")))?
        },
        row_a: row.try_get(3)?,
        row_b: row.try_get(4)?,
        version_a: decode(row.try_get(5)?)?,
        version_b: decode(row.try_get(6)?)?,
        detected_at: row.try_get(7)?,
        detected_by: row.try_get(8)?,
        resolution: resolution
            .map(|text| {
                [
                    Resolution::KeepBoth,
                    Resolution::KeepA,
                    Resolution::KeepB,
                    Resolution::MergeIntoA,
                ]
                .into_iter()
                .find(|r| resolution_text(*r) == text)
                .ok_or_else(|| Error::Internal(format!("unknown resolution {text:?}")))
            })
            .transpose()?,
        resolved_at: row.try_get(10)?,
        resolved_by: row.try_get(11)?,
    })
}
