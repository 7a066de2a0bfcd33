//! `POST /v1/sync/push`: a desk uploads its outbox. Exactly-once: the device's high-water mark
//! and the changes it covers are written in one transaction, so a batch is either applied with
//! its acknowledgement or not at all; a replayed batch changes nothing and gets the same answer.

use axum::Json;
use axum::extract::State;
use kaunter_protocol::ACCEPTED_SCHEMA_VERSIONS;
use kaunter_protocol::FieldError;
use kaunter_protocol::http::{ChangeBody, OutboxEntry, PatientRecord, PushRequest, PushResponse};
use kaunter_protocol::{IdType, Sex};
use tokio_postgres::Statement;

use crate::AppState;
use crate::auth::{self, Bearer, Device, RowLock};
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::extract::JsonBody;
use crate::validate;

pub async fn push(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    JsonBody(request): JsonBody<PushRequest>,
) -> Result<Json<PushResponse>> {
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    // The row lock makes two pushes of one device take turns, so both see the same high-water.
    let device = auth::authenticate(&tx, &token, RowLock::ForUpdate).await?;
    if !ACCEPTED_SCHEMA_VERSIONS.contains(&request.schema_version) {
        return Err(Error::UnsupportedSchemaVersion(request.schema_version));
    }

    let first_new = match plan(&request.entries, device.high_water)? {
        Plan::NothingNew => {
            return Ok(Json(PushResponse {
                acked_seq: device.high_water,
            }));
        }
        Plan::ApplyFrom(index) => index,
    };
    let new_entries = request
        .entries
        .get(first_new..)
        .ok_or_else(|| Error::Internal("push plan index out of range".to_owned()))?;

    let mut field_errors = Vec::new();
    for (offset, entry) in new_entries.iter().enumerate() {
        match &entry.change.body {
            ChangeBody::PatientUpsert(patient) => field_errors.extend(validate::patient(
                first_new + offset,
                patient,
                device.branch_id,
            )),
        }
    }
    if !field_errors.is_empty() {
        return Err(Error::ValidationFailed(field_errors));
    }

    let acked_seq = apply(&tx, &device, first_new, new_entries).await?;
    tx.commit().await?;
    Ok(Json(PushResponse { acked_seq }))
}

/// What to do with a batch, given the device's high-water mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Every entry is at or below the high-water mark (or there are none): a replay.
    NothingNew,
    /// Entries from this index on are new; the first of them is high-water + 1.
    ApplyFrom(usize),
}

fn plan(entries: &[OutboxEntry], high_water: i64) -> Result<Plan> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(Plan::NothingNew);
    };
    if first.seq < 1 {
        return Err(Error::BadRequest("seq numbers start at 1".to_owned()));
    }
    let consecutive = entries
        .windows(2)
        .all(|pair| pair[0].seq.checked_add(1) == Some(pair[1].seq));
    if !consecutive {
        return Err(Error::BadRequest(
            "the entries of a batch must have consecutive seq numbers".to_owned(),
        ));
    }
    if last.seq <= high_water {
        return Ok(Plan::NothingNew);
    }
    let expected = high_water
        .checked_add(1)
        .ok_or_else(|| Error::BadRequest("seq numbers are exhausted".to_owned()))?;
    if first.seq > expected {
        return Err(Error::SequenceGap { expected });
    }
    // first.seq <= expected <= last.seq, and entries are consecutive, so this index exists.
    usize::try_from(expected - first.seq)
        .map(Plan::ApplyFrom)
        .map_err(|_| Error::Internal("push plan index out of range".to_owned()))
}

/// Writes `entries` (already validated, the first being high-water + 1) and returns the new
/// high-water mark.
async fn apply(
    tx: &TenantTx<'_>,
    device: &Device,
    first_index: usize,
    entries: &[OutboxEntry],
) -> Result<i64> {
    let count =
        i64::try_from(entries.len()).map_err(|_| Error::Internal("batch too large".to_owned()))?;
    // Number the changes from the tenant's counter. The UPDATE holds this tenant row's lock until
    // commit, so pushes of one tenant commit one after another in the order of their numbers.
    // Pull relies on that: once a reader sees change N committed, no change below N can commit
    // later, so "seq > cursor" never skips one.
    let last_tenant_seq: i64 = tx
        .query_one(
            "UPDATE tenants SET change_seq = change_seq + $2 WHERE tenant_id = $1
             RETURNING change_seq",
            &[&device.tenant_id, &count],
        )
        .await?
        .try_get(0)?;
    let first_tenant_seq = last_tenant_seq - count + 1;

    let upsert_patient = tx
        .prepare(
            "INSERT INTO patients (tenant_id, patient_id, branch_id, full_name, id_type, id_number,
                 phone, date_of_birth, sex, created_at, updated_at, origin_device_id, last_change_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (tenant_id, patient_id) DO UPDATE SET
                 full_name = EXCLUDED.full_name,
                 id_type = EXCLUDED.id_type,
                 id_number = EXCLUDED.id_number,
                 phone = EXCLUDED.phone,
                 date_of_birth = EXCLUDED.date_of_birth,
                 sex = EXCLUDED.sex,
                 updated_at = EXCLUDED.updated_at,
                 last_change_seq = EXCLUDED.last_change_seq
             -- A row of another branch is not this device's to overwrite.
             WHERE patients.branch_id = EXCLUDED.branch_id",
        )
        .await?;
    let insert_change = tx
        .prepare(
            "INSERT INTO changes (tenant_id, seq, device_id, device_seq, entity, row_id,
                 branch_id, change, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await?;

    let mut conflicts = Vec::new();
    for ((offset, entry), tenant_seq) in entries.iter().enumerate().zip(first_tenant_seq..) {
        let (entity, branch_id) = match &entry.change.body {
            ChangeBody::PatientUpsert(patient) => {
                let written = upsert(tx, &upsert_patient, device, patient, tenant_seq).await?;
                if !written {
                    conflicts.push(FieldError {
                        field: format!("entries[{}].id", first_index + offset),
                        code: "row_in_other_branch".to_owned(),
                        message: "This record belongs to another branch.".to_owned(),
                    });
                }
                ("patient", patient.branch_id)
            }
        };
        let change = serde_json::to_value(&entry.change)
            .map_err(|error| Error::Internal(format!("encoding a change: {error}")))?;
        tx.execute(
            &insert_change,
            &[
                &device.tenant_id,
                &tenant_seq,
                &device.device_id,
                &entry.seq,
                &entity,
                &entry.change.body.row_id(),
                &branch_id,
                &change,
                &entry.change.recorded_at,
            ],
        )
        .await?;
    }
    if !conflicts.is_empty() {
        // Nothing is committed: the transaction rolls back when it is dropped.
        return Err(Error::ValidationFailed(conflicts));
    }

    let high_water = entries.last().map_or(device.high_water, |entry| entry.seq);
    tx.execute(
        "UPDATE devices SET high_water = $3, last_seen_at = now()
         WHERE tenant_id = $1 AND device_id = $2",
        &[&device.tenant_id, &device.device_id, &high_water],
    )
    .await?;
    Ok(high_water)
}

/// Last write (in server order) wins for now; returns false when the id belongs to a patient of
/// another branch, which is left untouched.
async fn upsert(
    tx: &TenantTx<'_>,
    statement: &Statement,
    device: &Device,
    patient: &PatientRecord,
    tenant_seq: i64,
) -> Result<bool> {
    let written = tx
        .execute(
            statement,
            &[
                &device.tenant_id,
                &patient.id,
                &patient.branch_id,
                &patient.full_name,
                &id_type_text(patient.id_type),
                &patient.id_number,
                &patient.phone,
                &patient.date_of_birth,
                &patient.sex.map(sex_text),
                &patient.created_at,
                &patient.updated_at,
                &device.device_id,
                &tenant_seq,
            ],
        )
        .await?;
    Ok(written == 1)
}

/// Stored spellings; the CHECK constraints of migration 0001 list the same ones.
fn id_type_text(id_type: IdType) -> &'static str {
    match id_type {
        IdType::Mykad => "mykad",
        IdType::Passport => "passport",
        IdType::ArmyPolice => "army_police",
        IdType::OldIc => "old_ic",
    }
}

fn sex_text(sex: Sex) -> &'static str {
    match sex {
        Sex::Male => "male",
        Sex::Female => "female",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::Utc;
    use kaunter_protocol::http::Change;
    use uuid::Uuid;

    use super::*;

    fn entries(seqs: &[i64]) -> Vec<OutboxEntry> {
        let now = Utc::now();
        seqs.iter()
            .map(|&seq| OutboxEntry {
                seq,
                change: Change {
                    recorded_at: now,
                    body: ChangeBody::PatientUpsert(PatientRecord {
                        id: Uuid::now_v7(),
                        branch_id: Uuid::now_v7(),
                        full_name: "A".to_owned(),
                        id_type: IdType::Passport,
                        id_number: "A1".to_owned(),
                        phone: None,
                        date_of_birth: None,
                        sex: None,
                        created_at: now,
                        updated_at: now,
                    }),
                },
            })
            .collect()
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Want {
        Plan(Plan),
        Gap { expected: i64 },
    }

    #[test]
    fn plan_table() {
        let table: &[(&[i64], i64, Want)] = &[
            // (batch seqs, device high-water, outcome)
            (&[], 0, Want::Plan(Plan::NothingNew)),
            (&[1, 2, 3], 0, Want::Plan(Plan::ApplyFrom(0))),
            (&[1, 2, 3], 3, Want::Plan(Plan::NothingNew)),
            (&[1, 2, 3], 5, Want::Plan(Plan::NothingNew)),
            (&[1, 2, 3, 4], 2, Want::Plan(Plan::ApplyFrom(2))),
            (&[3, 4], 2, Want::Plan(Plan::ApplyFrom(0))),
            (&[4, 5], 2, Want::Gap { expected: 3 }),
            (&[2], 0, Want::Gap { expected: 1 }),
        ];
        for (seqs, high_water, want) in table {
            let got = match plan(&entries(seqs), *high_water) {
                Ok(plan) => Want::Plan(plan),
                Err(Error::SequenceGap { expected }) => Want::Gap { expected },
                Err(other) => panic!("{seqs:?} hw {high_water}: {other:?}"),
            };
            assert_eq!(&got, want, "{seqs:?} hw {high_water}");
        }
    }

    #[test]
    fn malformed_batches_are_bad_requests() {
        for seqs in [&[1, 3][..], &[2, 1], &[0, 1], &[-1], &[1, 1]] {
            assert!(
                matches!(plan(&entries(seqs), 0), Err(Error::BadRequest(_))),
                "{seqs:?}"
            );
        }
    }
}
