//! The replicated rows as this desk keeps them: each entity's own table, personal fields
//! encrypted, loaded as a per-field LWW record (fields with their stamps) and saved back, with
//! the desk's state digest moved by the row's old and new digests in the same transaction.
//! One shape for every entity; the columns are matched on [`Entity`] here and nowhere else.

use chrono::{DateTime, NaiveDate, Utc};
use kaunter_core::lww::LwwRecord;
use kaunter_protocol::http::{DELETED_FIELD, Entity, Fields, PatientRecord, Stamps};
use kaunter_protocol::merge::{
    is_deleted, record_from_parts, record_into_parts, row_digest, update_digest,
};
use kaunter_protocol::records::{
    AppointmentRecord, AppointmentStatus, CashKind, CashMovementRecord, CatalogueItemRecord,
    CatalogueKind, ClinicalEntryRecord, ClinicalKind, EntityRecord, TaxCode, ringgit,
};
use rusqlite::{Connection, Row, Transaction, params};
use serde_json::Value;
use uuid::Uuid;

use crate::cipher::FieldCipher;
use crate::convert;
use crate::error::{Result, StoreError};
use crate::store::{parse_timestamp, parse_uuid, timestamp};

/// A row as this desk keeps it: the merged fields with their stamps, plus local times.
pub(crate) struct LocalRow {
    pub entity: Entity,
    pub branch_id: Uuid,
    pub record: LwwRecord<Value>,
    /// The row's digest as loaded (0 for a new row), to keep the desk's digest up to date.
    pub loaded_digest: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl LocalRow {
    pub fn new(entity: Entity, branch_id: Uuid, at: DateTime<Utc>) -> LocalRow {
        LocalRow {
            entity,
            branch_id,
            record: LwwRecord::new(),
            loaded_digest: 0,
            created_at: at,
            updated_at: at,
        }
    }
}

pub(crate) fn table(entity: Entity) -> &'static str {
    match entity {
        Entity::Patient => "patients",
        Entity::Appointment => "appointments",
        Entity::CashMovement => "cash_movements",
        Entity::CatalogueItem => "catalogue_items",
        Entity::ClinicalEntry => "clinical_entries",
    }
}

/// A row's record from its typed fields, the tombstone and the stamps.
fn merged(mut fields: Fields, deleted: bool, stamps: &str, id: Uuid) -> Result<LwwRecord<Value>> {
    let stamps: Stamps = serde_json::from_str(stamps)
        .map_err(|e| StoreError::Corrupt(format!("stamps of row {id}: {e}")))?;
    if stamps.contains_key(DELETED_FIELD) {
        fields.insert(DELETED_FIELD.to_owned(), Value::Bool(deleted));
    }
    Ok(record_from_parts(&fields, &stamps))
}

pub(crate) fn load_row(
    conn: &Connection,
    cipher: &FieldCipher,
    entity: Entity,
    id: Uuid,
) -> Result<Option<LocalRow>> {
    match entity {
        Entity::Patient => load_patient(conn, cipher, id),
        Entity::Appointment => load_appointment(conn, cipher, id),
        Entity::CashMovement => load_cash(conn, cipher, id),
        Entity::CatalogueItem => load_catalogue_item(conn, id),
        Entity::ClinicalEntry => load_clinical(conn, cipher, id),
    }
}

/// Writes the row and moves the desk's digest. `server_cursor`, when given, is the cursor of
/// the pulled change that produced this state.
pub(crate) fn save_row(
    tx: &Transaction<'_>,
    cipher: &FieldCipher,
    id: Uuid,
    row: &LocalRow,
    server_cursor: Option<i64>,
) -> Result<()> {
    let new = write_row(tx, cipher, id, row, server_cursor)?;
    move_digest(tx, row.loaded_digest, new)
}

/// Writes the row and returns its new digest; the caller moves the desk's digest (a pulled
/// page does it once for all its rows).
pub(crate) fn write_row(
    tx: &Transaction<'_>,
    cipher: &FieldCipher,
    id: Uuid,
    row: &LocalRow,
    server_cursor: Option<i64>,
) -> Result<u64> {
    let (fields, stamps) = record_into_parts(&row.record);
    let incomplete = |detail: String| {
        StoreError::Corrupt(format!(
            "{} {id} would be incomplete after merging ({detail}); its first change has not arrived",
            row.entity.as_str()
        ))
    };
    let stamps = serde_json::to_string(&stamps).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    match row.entity {
        Entity::Patient => {
            let record =
                PatientRecord::from_fields(id, row.branch_id, &fields).map_err(incomplete)?;
            save_patient(tx, cipher, &record, row, &stamps, server_cursor)?;
        }
        Entity::Appointment => {
            let record =
                AppointmentRecord::from_fields(id, row.branch_id, &fields).map_err(incomplete)?;
            save_appointment(tx, cipher, &record, row, &stamps, server_cursor)?;
        }
        Entity::CashMovement => {
            let record =
                CashMovementRecord::from_fields(id, row.branch_id, &fields).map_err(incomplete)?;
            save_cash(tx, cipher, &record, row, &stamps, server_cursor)?;
        }
        Entity::CatalogueItem => {
            let record =
                CatalogueItemRecord::from_fields(id, row.branch_id, &fields).map_err(incomplete)?;
            save_catalogue_item(tx, &record, row, &stamps, server_cursor)?;
        }
        Entity::ClinicalEntry => {
            let record =
                ClinicalEntryRecord::from_fields(id, row.branch_id, &fields).map_err(incomplete)?;
            save_clinical(tx, cipher, &record, row, &stamps, server_cursor)?;
        }
    }
    Ok(row_digest(id, &row.record))
}

/// Indexes a download of the whole branch builds once, at its end, rather than row by row
/// (as migration 1 defines them). A blind index is a keyed hash, so each insert lands on a
/// random leaf; past some tens of thousands of rows, keeping them up to date was most of a
/// download's time, and it grew with every page. While one is missing, a lookup by it scans the
/// table: slower, never wrong.
const DEFERRED_INDEXES: &[(&str, &str)] = &[
    ("patients_id_number_bidx", "patients (id_number_bidx)"),
    ("patients_phone_bidx", "patients (phone_bidx)"),
];

pub(crate) fn drop_deferred_indexes(conn: &Connection) -> Result<()> {
    for (name, _) in DEFERRED_INDEXES {
        conn.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))?;
    }
    Ok(())
}

pub(crate) fn create_deferred_indexes(conn: &Connection) -> Result<()> {
    for (name, on) in DEFERRED_INDEXES {
        conn.execute_batch(&format!("CREATE INDEX IF NOT EXISTS {name} ON {on}"))?;
    }
    Ok(())
}

/// Replaces `old` by `new` in the desk's state digest.
pub(crate) fn move_digest(conn: &Connection, old: u64, new: u64) -> Result<()> {
    let digest: i64 = conn
        .prepare_cached("SELECT state_digest FROM sync_state")?
        .query_row([], |r| r.get(0))?;
    // The u64's bits in SQLite's signed integer.
    let digest = update_digest(digest as u64, old, new);
    conn.prepare_cached("UPDATE sync_state SET state_digest = ?1")?
        .execute(params![digest as i64])?;
    Ok(())
}

/// Notes that the server's change `cursor` touched the row, when merging it changed nothing
/// here (this desk's own change, pulled back): the row's cursor is always its last change's.
pub(crate) fn touch_cursor(conn: &Connection, entity: Entity, id: Uuid, cursor: i64) -> Result<()> {
    conn.prepare_cached(&format!(
        "UPDATE {} SET server_cursor = max(coalesce(server_cursor, 0), ?2) WHERE id = ?1",
        table(entity)
    ))?
    .execute(params![id.to_string(), cursor])?;
    Ok(())
}

/// A free-text note as its envelope (notes may be clinical: never stored in plain).
fn encrypt_note(
    cipher: &FieldCipher,
    table: &'static str,
    id: &str,
    note: Option<&str>,
) -> Result<Option<Vec<u8>>> {
    note.map(|note| cipher.encrypt_str(table, "note", id, note))
        .transpose()
}

// Patients.

fn load_patient(conn: &Connection, cipher: &FieldCipher, id: Uuid) -> Result<Option<LocalRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, branch_id, full_name, id_type, id_number, phone, date_of_birth, sex, \
             created_at, 1, updated_at, stamps, deleted \
         FROM patients WHERE id = ?1",
    )?;
    let mut rows = statement.query(params![id.to_string()])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let (record, _, created_at) = read_patient(cipher, row)?;
    let updated_at: String = row.get(10)?;
    let stamps: String = row.get(11)?;
    let merged = merged(record.fields(), row.get(12)?, &stamps, id)?;
    Ok(Some(LocalRow {
        entity: Entity::Patient,
        branch_id: record.branch_id,
        loaded_digest: row_digest(id, &merged),
        record: merged,
        created_at,
        updated_at: parse_timestamp(&updated_at)?,
    }))
}

fn save_patient(
    tx: &Transaction<'_>,
    cipher: &FieldCipher,
    record: &PatientRecord,
    row: &LocalRow,
    stamps: &str,
    server_cursor: Option<i64>,
) -> Result<()> {
    let id = record.id.to_string();
    let full_name = cipher.encrypt_str("patients", "full_name", &id, &record.full_name)?;
    let id_number = cipher.encrypt_str("patients", "id_number", &id, &record.id_number)?;
    let id_number_bidx = cipher.blind_index("patients", "id_number", &record.id_number);
    let (phone, phone_bidx) = match &record.phone {
        Some(phone) => (
            Some(cipher.encrypt_str("patients", "phone", &id, phone)?),
            Some(cipher.blind_index("patients", "phone", phone)),
        ),
        None => (None, None),
    };
    let date_of_birth = record
        .date_of_birth
        .map(|d| cipher.encrypt_str("patients", "date_of_birth", &id, &d.to_string()))
        .transpose()?;
    tx.prepare_cached(
        "INSERT INTO patients (id, branch_id, full_name, id_type, id_number, id_number_bidx, \
             phone, phone_bidx, date_of_birth, sex, created_at, updated_at, server_cursor, \
             stamps, deleted) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
         ON CONFLICT (id) DO UPDATE SET branch_id = excluded.branch_id, \
             full_name = excluded.full_name, id_type = excluded.id_type, \
             id_number = excluded.id_number, id_number_bidx = excluded.id_number_bidx, \
             phone = excluded.phone, phone_bidx = excluded.phone_bidx, \
             date_of_birth = excluded.date_of_birth, sex = excluded.sex, \
             updated_at = excluded.updated_at, \
             server_cursor = coalesce(excluded.server_cursor, patients.server_cursor), \
             stamps = excluded.stamps, deleted = excluded.deleted",
    )?
    .execute(params![
        id,
        record.branch_id.to_string(),
        full_name,
        convert::id_type_column(record.id_type),
        id_number,
        id_number_bidx,
        phone,
        phone_bidx,
        date_of_birth,
        record.sex.map(convert::sex_column),
        timestamp(row.created_at),
        timestamp(row.updated_at),
        server_cursor,
        stamps,
        is_deleted(&row.record),
    ])?;
    Ok(())
}

/// Reads a row selected with the column list of `Store::search_patients`.
pub(crate) fn read_patient(
    cipher: &FieldCipher,
    row: &Row<'_>,
) -> Result<(PatientRecord, bool, DateTime<Utc>)> {
    let id: String = row.get(0)?;
    let branch_id: String = row.get(1)?;
    let full_name: Vec<u8> = row.get(2)?;
    let id_type: String = row.get(3)?;
    let id_number: Vec<u8> = row.get(4)?;
    let phone: Option<Vec<u8>> = row.get(5)?;
    let date_of_birth: Option<Vec<u8>> = row.get(6)?;
    let sex: Option<String> = row.get(7)?;
    let created_at: String = row.get(8)?;
    let synced: bool = row.get(9)?;
    let date_of_birth = date_of_birth
        .map(|envelope| {
            let text = cipher.decrypt_string("patients", "date_of_birth", &id, &envelope)?;
            NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                .map_err(|_| StoreError::Corrupt(format!("bad date of birth in {id}")))
        })
        .transpose()?;
    let record = PatientRecord {
        id: parse_uuid(&id)?,
        branch_id: parse_uuid(&branch_id)?,
        full_name: cipher.decrypt_string("patients", "full_name", &id, &full_name)?,
        id_type: convert::id_type_from_column(&id_type)
            .ok_or_else(|| StoreError::Corrupt(format!("bad id type {id_type:?}")))?,
        id_number: cipher.decrypt_string("patients", "id_number", &id, &id_number)?,
        phone: phone
            .map(|envelope| cipher.decrypt_string("patients", "phone", &id, &envelope))
            .transpose()?,
        date_of_birth,
        sex: sex.as_deref().and_then(convert::sex_from_column),
    };
    Ok((record, synced, parse_timestamp(&created_at)?))
}

// Appointments: the note is clinical, so encrypted; the rest is plain for the day view.

pub(crate) const APPOINTMENT_COLUMNS: &str = "id, branch_id, patient_id, practitioner_id, \
     starts_at, ends_at, status, note, stamps, deleted, created_at, updated_at";

/// Reads a row selected with [`APPOINTMENT_COLUMNS`].
pub(crate) fn read_appointment(
    cipher: &FieldCipher,
    row: &Row<'_>,
) -> Result<(AppointmentRecord, LocalRow)> {
    let id_text: String = row.get(0)?;
    let id = parse_uuid(&id_text)?;
    let status: String = row.get(6)?;
    let note: Option<Vec<u8>> = row.get(7)?;
    let record = AppointmentRecord {
        id,
        branch_id: parse_uuid(&row.get::<_, String>(1)?)?,
        patient_id: parse_uuid(&row.get::<_, String>(2)?)?,
        practitioner_id: parse_uuid(&row.get::<_, String>(3)?)?,
        starts_at: parse_timestamp(&row.get::<_, String>(4)?)?,
        ends_at: parse_timestamp(&row.get::<_, String>(5)?)?,
        status: AppointmentStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("bad appointment status {status:?}")))?,
        note: note
            .map(|envelope| cipher.decrypt_string("appointments", "note", &id_text, &envelope))
            .transpose()?,
    };
    let stamps: String = row.get(8)?;
    let merged = merged(record.fields(), row.get(9)?, &stamps, id)?;
    let local = LocalRow {
        entity: Entity::Appointment,
        branch_id: record.branch_id,
        loaded_digest: row_digest(id, &merged),
        record: merged,
        created_at: parse_timestamp(&row.get::<_, String>(10)?)?,
        updated_at: parse_timestamp(&row.get::<_, String>(11)?)?,
    };
    Ok((record, local))
}

fn load_appointment(conn: &Connection, cipher: &FieldCipher, id: Uuid) -> Result<Option<LocalRow>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE id = ?1"
    ))?;
    let mut rows = statement.query(params![id.to_string()])?;
    match rows.next()? {
        Some(row) => Ok(Some(read_appointment(cipher, row)?.1)),
        None => Ok(None),
    }
}

fn save_appointment(
    tx: &Transaction<'_>,
    cipher: &FieldCipher,
    record: &AppointmentRecord,
    row: &LocalRow,
    stamps: &str,
    server_cursor: Option<i64>,
) -> Result<()> {
    let id = record.id.to_string();
    let note = encrypt_note(cipher, "appointments", &id, record.note.as_deref())?;
    tx.prepare_cached(
        "INSERT INTO appointments (id, branch_id, patient_id, practitioner_id, starts_at, \
             ends_at, status, note, stamps, deleted, created_at, updated_at, server_cursor) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
         ON CONFLICT (id) DO UPDATE SET patient_id = excluded.patient_id, \
             practitioner_id = excluded.practitioner_id, starts_at = excluded.starts_at, \
             ends_at = excluded.ends_at, status = excluded.status, note = excluded.note, \
             stamps = excluded.stamps, deleted = excluded.deleted, \
             updated_at = excluded.updated_at, \
             server_cursor = coalesce(excluded.server_cursor, appointments.server_cursor)",
    )?
    .execute(params![
        id,
        record.branch_id.to_string(),
        record.patient_id.to_string(),
        record.practitioner_id.to_string(),
        timestamp(record.starts_at),
        timestamp(record.ends_at),
        record.status.as_str(),
        note,
        stamps,
        is_deleted(&row.record),
        timestamp(row.created_at),
        timestamp(row.updated_at),
        server_cursor,
    ])?;
    Ok(())
}

// Cash movements: written once. The amount and kind are plain, so the balance is a SUM.

fn load_cash(conn: &Connection, cipher: &FieldCipher, id: Uuid) -> Result<Option<LocalRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, branch_id, kind, amount_sen, patient_id, note, stamps, created_at \
         FROM cash_movements WHERE id = ?1",
    )?;
    let mut rows = statement.query(params![id.to_string()])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let (record, created_at) = read_cash(cipher, row)?;
    let stamps: String = row.get(6)?;
    let merged = merged(record.fields(), false, &stamps, id)?;
    Ok(Some(LocalRow {
        entity: Entity::CashMovement,
        branch_id: record.branch_id,
        loaded_digest: row_digest(id, &merged),
        record: merged,
        created_at,
        updated_at: created_at,
    }))
}

/// Reads a row selected as `id, branch_id, kind, amount_sen, patient_id, note, _, created_at`.
pub(crate) fn read_cash(
    cipher: &FieldCipher,
    row: &Row<'_>,
) -> Result<(CashMovementRecord, DateTime<Utc>)> {
    let id: String = row.get(0)?;
    let kind: String = row.get(2)?;
    let patient: Option<String> = row.get(4)?;
    let note: Option<Vec<u8>> = row.get(5)?;
    let record = CashMovementRecord {
        id: parse_uuid(&id)?,
        branch_id: parse_uuid(&row.get::<_, String>(1)?)?,
        kind: CashKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("bad cash kind {kind:?}")))?,
        amount: ringgit::from_sen(row.get(3)?),
        patient_id: patient.as_deref().map(parse_uuid).transpose()?,
        note: note
            .map(|envelope| cipher.decrypt_string("cash_movements", "note", &id, &envelope))
            .transpose()?,
    };
    Ok((record, parse_timestamp(&row.get::<_, String>(7)?)?))
}

fn save_cash(
    tx: &Transaction<'_>,
    cipher: &FieldCipher,
    record: &CashMovementRecord,
    row: &LocalRow,
    stamps: &str,
    server_cursor: Option<i64>,
) -> Result<()> {
    let id = record.id.to_string();
    let note = encrypt_note(cipher, "cash_movements", &id, record.note.as_deref())?;
    let sen = ringgit::to_sen(record.amount)
        .ok_or_else(|| StoreError::Corrupt(format!("cash movement {id} has no sen amount")))?;
    tx.prepare_cached(
        "INSERT INTO cash_movements (id, branch_id, kind, amount_sen, patient_id, note, stamps, \
             created_at, server_cursor) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (id) DO UPDATE SET \
             server_cursor = coalesce(excluded.server_cursor, cash_movements.server_cursor)",
    )?
    .execute(params![
        id,
        record.branch_id.to_string(),
        record.kind.as_str(),
        sen,
        record.patient_id.map(|p| p.to_string()),
        note,
        stamps,
        timestamp(row.created_at),
        server_cursor,
    ])?;
    Ok(())
}

// Catalogue items: tenant-wide and not personal data, so plain columns.

pub(crate) const CATALOGUE_COLUMNS: &str = "id, branch_id, kind, code, name, price_sen, \
     tax_code, duration_minutes, active, stamps, deleted, created_at, updated_at";

/// Reads a row selected with [`CATALOGUE_COLUMNS`].
pub(crate) fn read_catalogue_item(row: &Row<'_>) -> Result<(CatalogueItemRecord, LocalRow)> {
    let id = parse_uuid(&row.get::<_, String>(0)?)?;
    let kind: String = row.get(2)?;
    let tax: String = row.get(6)?;
    let record = CatalogueItemRecord {
        id,
        branch_id: parse_uuid(&row.get::<_, String>(1)?)?,
        kind: CatalogueKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("bad catalogue kind {kind:?}")))?,
        code: row.get(3)?,
        name: row.get(4)?,
        price: ringgit::from_sen(row.get(5)?),
        tax: TaxCode::parse(&tax)
            .ok_or_else(|| StoreError::Corrupt(format!("bad tax code {tax:?}")))?,
        duration_minutes: row.get(7)?,
        active: row.get(8)?,
    };
    let stamps: String = row.get(9)?;
    let merged = merged(record.fields(), row.get(10)?, &stamps, id)?;
    let local = LocalRow {
        entity: Entity::CatalogueItem,
        branch_id: record.branch_id,
        loaded_digest: row_digest(id, &merged),
        record: merged,
        created_at: parse_timestamp(&row.get::<_, String>(11)?)?,
        updated_at: parse_timestamp(&row.get::<_, String>(12)?)?,
    };
    Ok((record, local))
}

fn load_catalogue_item(conn: &Connection, id: Uuid) -> Result<Option<LocalRow>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {CATALOGUE_COLUMNS} FROM catalogue_items WHERE id = ?1"
    ))?;
    let mut rows = statement.query(params![id.to_string()])?;
    match rows.next()? {
        Some(row) => Ok(Some(read_catalogue_item(row)?.1)),
        None => Ok(None),
    }
}

fn save_catalogue_item(
    tx: &Transaction<'_>,
    record: &CatalogueItemRecord,
    row: &LocalRow,
    stamps: &str,
    server_cursor: Option<i64>,
) -> Result<()> {
    let price = ringgit::to_sen(record.price).ok_or_else(|| {
        StoreError::Corrupt(format!("catalogue item {} has no sen price", record.id))
    })?;
    tx.prepare_cached(
        "INSERT INTO catalogue_items (id, branch_id, kind, code, name, price_sen, tax_code, \
             duration_minutes, active, stamps, deleted, created_at, updated_at, server_cursor) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, code = excluded.code, \
             name = excluded.name, price_sen = excluded.price_sen, \
             tax_code = excluded.tax_code, duration_minutes = excluded.duration_minutes, \
             active = excluded.active, stamps = excluded.stamps, deleted = excluded.deleted, \
             updated_at = excluded.updated_at, \
             server_cursor = coalesce(excluded.server_cursor, catalogue_items.server_cursor)",
    )?
    .execute(params![
        record.id.to_string(),
        record.branch_id.to_string(),
        record.kind.as_str(),
        record.code,
        record.name,
        price,
        record.tax.as_str(),
        record.duration_minutes,
        record.active,
        stamps,
        is_deleted(&row.record),
        timestamp(row.created_at),
        timestamp(row.updated_at),
        server_cursor,
    ])?;
    Ok(())
}

// Clinical entries: written once; the body is clinical, so encrypted.

/// The last column says whether the server has the entry (none of its changes wait in the
/// outbox).
pub(crate) const CLINICAL_COLUMNS: &str = "id, branch_id, patient_id, kind, body, author_id, \
     stamps, created_at, NOT EXISTS (SELECT 1 FROM outbox o WHERE o.row_id = clinical_entries.id)";

fn load_clinical(conn: &Connection, cipher: &FieldCipher, id: Uuid) -> Result<Option<LocalRow>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {CLINICAL_COLUMNS} FROM clinical_entries WHERE id = ?1"
    ))?;
    let mut rows = statement.query(params![id.to_string()])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let (record, created_at, _) = read_clinical(cipher, row)?;
    let stamps: String = row.get(6)?;
    let merged = merged(record.fields(), false, &stamps, id)?;
    Ok(Some(LocalRow {
        entity: Entity::ClinicalEntry,
        branch_id: record.branch_id,
        loaded_digest: row_digest(id, &merged),
        record: merged,
        created_at,
        updated_at: created_at,
    }))
}

/// Reads a row selected with [`CLINICAL_COLUMNS`]: the entry, when it was written, and whether
/// the server has it (a server cursor).
pub(crate) fn read_clinical(
    cipher: &FieldCipher,
    row: &Row<'_>,
) -> Result<(ClinicalEntryRecord, DateTime<Utc>, bool)> {
    let id: String = row.get(0)?;
    let kind: String = row.get(3)?;
    let body: Vec<u8> = row.get(4)?;
    let author: Option<String> = row.get(5)?;
    let record = ClinicalEntryRecord {
        id: parse_uuid(&id)?,
        branch_id: parse_uuid(&row.get::<_, String>(1)?)?,
        patient_id: parse_uuid(&row.get::<_, String>(2)?)?,
        kind: ClinicalKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("bad clinical kind {kind:?}")))?,
        body: cipher.decrypt_string("clinical_entries", "body", &id, &body)?,
        author_id: author.as_deref().map(parse_uuid).transpose()?,
    };
    let synced: bool = row.get(8)?;
    Ok((record, parse_timestamp(&row.get::<_, String>(7)?)?, synced))
}

fn save_clinical(
    tx: &Transaction<'_>,
    cipher: &FieldCipher,
    record: &ClinicalEntryRecord,
    row: &LocalRow,
    stamps: &str,
    server_cursor: Option<i64>,
) -> Result<()> {
    let id = record.id.to_string();
    let body = cipher.encrypt_str("clinical_entries", "body", &id, &record.body)?;
    tx.prepare_cached(
        "INSERT INTO clinical_entries (id, branch_id, patient_id, kind, body, author_id, stamps, \
             created_at, server_cursor) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (id) DO UPDATE SET \
             server_cursor = coalesce(excluded.server_cursor, clinical_entries.server_cursor)",
    )?
    .execute(params![
        id,
        record.branch_id.to_string(),
        record.patient_id.to_string(),
        record.kind.as_str(),
        body,
        record.author_id.map(|a| a.to_string()),
        stamps,
        timestamp(row.created_at),
        server_cursor,
    ])?;
    Ok(())
}
