//! The replicated rows as push merges them: loaded (locked) from their typed tables as per-field
//! LWW records, merged in memory, written back with one statement per table, and the branch
//! digests moved by the rows' old and new digests. One shape for every entity; what differs
//! (columns, validation) is matched on [`Entity`] here and nowhere else.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use kaunter_core::lww::LwwRecord;
use kaunter_protocol::http::{Change, DELETED_FIELD, Entity, Fields, PatientRecord, WireStamp};
use kaunter_protocol::merge::{
    is_deleted, record_from_parts, row_digest, stamp_to_wire, update_digest,
};
use kaunter_protocol::records::{
    AppointmentRecord, AppointmentStatus, CashKind, CashMovementRecord, CatalogueItemRecord,
    CatalogueKind, ClinicalEntryRecord, ClinicalKind, EntityRecord, TaxCode, ringgit,
};
use kaunter_protocol::{FieldError, records};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::RowLock;
use crate::columns::{id_type_from_text, id_type_text, sex_from_text, sex_text};
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::validate;

pub type RowKey = (Entity, Uuid);

/// A row as stored, while a batch is merged into it.
pub struct StoredRow {
    pub branch_id: Uuid,
    pub record: LwwRecord<Value>,
    /// The row's digest as loaded (0 for a new row), to update its branch's digest.
    pub loaded_digest: u64,
    /// Whether the row was in the database before this batch (a ledger entry then is final).
    pub existed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_change_seq: i64,
    pub dirty: bool,
    /// `record` as its entity's typed record, when the merge already made it (the row's last
    /// change in this batch won every field it set, so what validation decoded is the row);
    /// `None`: decode `record` when needed.
    pub typed: Option<Typed>,
    /// `record`'s stamps as stored and its digest, when worked out before the push took its
    /// locks ([`Prepared`]); `None`: encode them from `record` when the row is written.
    pub encoded: Option<Encoded>,
}

/// A row's stamps as its `stamps` column stores them, and its digest.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub stamps: Vec<u8>,
    pub digest: u64,
}

/// What one change makes of a row that does not exist yet: the change's fields as a record
/// (every field at the change's stamp), that record validated as its entity's typed record,
/// its stamps encoded and its digest. Push works these out for a batch's entries before it
/// takes its locks ([`Prepared::new_row`] is pure), and uses one only where the row turns out
/// to be new and the batch changes it once; there it is exactly what merging the change into
/// a new row makes.
#[derive(Debug)]
pub struct Prepared {
    record: LwwRecord<Value>,
    typed: Typed,
    encoded: Encoded,
}

impl Prepared {
    /// The new row `change` would make, `None` when that would not be a valid row (the merge
    /// then refuses it with its reasons) or its stamps cannot be encoded. `seq` is the entry's,
    /// for [`check_merged`]'s field names.
    pub fn new_row(change: &Change, seq: i64) -> Option<Prepared> {
        let typed = check_merged(
            change.entity,
            change.row_id,
            change.branch_id,
            &change.fields,
            &change.fields,
            seq,
        )
        .ok()?;
        let stamp = kaunter_protocol::merge::stamp_from_wire(change.stamp);
        let mut record = LwwRecord::new();
        for (name, value) in &change.fields {
            record.offer(name, value.clone(), stamp);
        }
        let stamps = crate::stamps::encode_record(&record).ok()?;
        let digest = row_digest(change.row_id, &record);
        Some(Prepared {
            record,
            typed,
            encoded: Encoded { stamps, digest },
        })
    }

    /// The new row, made by the change of tenant seq `seq` (the batch's only change of it).
    pub fn into_row(self, change: &Change, seq: i64) -> StoredRow {
        StoredRow {
            branch_id: change.branch_id,
            record: self.record,
            loaded_digest: 0,
            existed: false,
            created_at: change.recorded_at,
            updated_at: change.recorded_at,
            last_change_seq: seq,
            dirty: true,
            typed: Some(self.typed),
            encoded: Some(self.encoded),
        }
    }
}

/// A row as its entity's typed record: what [`check_merged`] decoded, kept so that storing the
/// row or looking for its duplicates does not decode it again.
#[derive(Debug, Clone)]
pub enum Typed {
    Patient(PatientRecord),
    Appointment(AppointmentRecord),
    CashMovement(CashMovementRecord),
    CatalogueItem(CatalogueItemRecord),
    ClinicalEntry(ClinicalEntryRecord),
}

/// A typed record [`Typed`] may hold.
trait Cached: EntityRecord + Clone {
    fn cached(typed: &Typed) -> Option<&Self>;
}

macro_rules! cached {
    ($record:ty, $variant:ident) => {
        impl Cached for $record {
            fn cached(typed: &Typed) -> Option<&Self> {
                match typed {
                    Typed::$variant(record) => Some(record),
                    _ => None,
                }
            }
        }
    };
}
cached!(PatientRecord, Patient);
cached!(AppointmentRecord, Appointment);
cached!(CashMovementRecord, CashMovement);
cached!(CatalogueItemRecord, CatalogueItem);
cached!(ClinicalEntryRecord, ClinicalEntry);

impl StoredRow {
    /// The row as a patient record, `None` for another entity's row.
    pub fn patient(&self, id: Uuid) -> Result<Option<PatientRecord>> {
        match &self.typed {
            Some(Typed::Patient(patient)) => Ok(Some(patient.clone())),
            Some(_) => Ok(None),
            None => typed_record::<PatientRecord>(id, self).map(Some),
        }
    }
}

impl StoredRow {
    pub fn new(branch_id: Uuid, at: DateTime<Utc>, seq: i64) -> StoredRow {
        StoredRow {
            branch_id,
            record: LwwRecord::new(),
            loaded_digest: 0,
            existed: false,
            created_at: at,
            updated_at: at,
            last_change_seq: seq,
            dirty: false,
            typed: None,
            encoded: None,
        }
    }
}

/// The rows in `keys` as stored; with [`RowLock::ForUpdate`], locked until commit (ledger
/// entries never change, so they are not locked).
pub async fn load(
    tx: &TenantTx<'_>,
    tenant: Uuid,
    keys: &[RowKey],
    lock: RowLock,
) -> Result<HashMap<RowKey, StoredRow>> {
    let mut keys = keys.to_vec();
    // In key order, so two pushes lock rows in the same order.
    keys.sort_unstable_by_key(|(entity, id)| (entity.as_str(), *id));
    keys.dedup();
    let mut rows = HashMap::with_capacity(keys.len());
    for entity in Entity::ALL {
        let ids: Vec<Uuid> = keys
            .iter()
            .filter(|(e, _)| *e == entity)
            .map(|(_, id)| *id)
            .collect();
        if ids.is_empty() {
            continue;
        }
        for row in tx
            .query_cached(&select_by_ids_sql(entity, lock), &[&tenant, &ids])
            .await?
        {
            let (id, stored) = decode_row(entity, &row)?;
            rows.insert((entity, id), stored);
        }
    }
    Ok(rows)
}

/// Which of `keys` not in `rows` were purged (only a business that has purged anything needs
/// to ask).
pub async fn purged_among(
    tx: &TenantTx<'_>,
    tenant: Uuid,
    keys: &[RowKey],
    rows: &HashMap<RowKey, StoredRow>,
) -> Result<HashSet<RowKey>> {
    // purged_rows grows only by purges (slowly), so one `= ANY` query per entity is safe here.
    let mut purged = HashSet::new();
    for entity in Entity::ALL.into_iter().filter(|entity| !entity.is_ledger()) {
        let mut missing: Vec<Uuid> = keys
            .iter()
            .filter(|key| key.0 == entity && !rows.contains_key(*key))
            .map(|(_, id)| *id)
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            continue;
        }
        let found = tx
            .query(
                "SELECT row_id FROM purged_rows
                 WHERE tenant_id = $1 AND entity = $2 AND row_id = ANY($3)",
                &[&tenant, &entity.as_str(), &missing],
            )
            .await?;
        for row in found {
            purged.insert((entity, row.try_get(0)?));
        }
    }
    Ok(purged)
}

/// The tombstones of a business whose last change is at most `$2`, in [`decode_row`]'s column
/// order, locked.
pub fn select_tombstones_sql(entity: Entity) -> String {
    format!(
        "SELECT {} FROM {} WHERE tenant_id = $1 AND deleted AND last_change_seq <= $2 FOR UPDATE",
        columns(entity),
        table(entity)
    )
}

/// Which of a business's rows a pull looks at: one branch's, or every branch's (tenant-wide
/// rows are always every branch's).
fn branch_filter(entity: Entity, one_branch: bool) -> &'static str {
    if one_branch && !entity.is_tenant_wide() {
        "branch_id = $2"
    } else {
        // $2 stays in the statement so every variant takes the same parameters.
        "$2::uuid IS NOT NULL"
    }
}

/// The rows whose last change seq is in `($3, $4]`, in that order, at most `$5` of them, in
/// [`decode_row`]'s column order (`$1` tenant, `$2` the device's branch: the only branch looked
/// at when `one_branch`).
pub fn select_changed_sql(entity: Entity, one_branch: bool) -> String {
    format!(
        "SELECT {} FROM {} WHERE tenant_id = $1 AND {}
             AND last_change_seq > $3 AND last_change_seq <= $4
         ORDER BY last_change_seq LIMIT $5",
        columns(entity),
        table(entity),
        branch_filter(entity, one_branch)
    )
}

/// How many rows [`select_changed_sql`] would find without its limit (`$1`-`$4` alike).
pub fn count_changed_sql(entity: Entity, one_branch: bool) -> String {
    format!(
        "SELECT count(*) FROM {} WHERE tenant_id = $1 AND {}
             AND last_change_seq > $3 AND last_change_seq <= $4",
        table(entity),
        branch_filter(entity, one_branch)
    )
}

/// The table that holds an entity's rows.
pub fn table(entity: Entity) -> &'static str {
    match entity {
        Entity::Patient => "patients",
        Entity::Appointment => "appointments",
        Entity::CashMovement => "cash_movements",
        Entity::CatalogueItem => "catalogue_items",
        Entity::ClinicalEntry => "clinical_entries",
    }
}

/// A row as the changes that rebuild it: its winning field writes grouped by stamp, oldest
/// stamp first, each recorded at the row's last update.
pub fn as_changes(entity: Entity, id: Uuid, row: &StoredRow) -> Vec<Change> {
    let mut writes: BTreeMap<(u64, Uuid), Fields> = BTreeMap::new();
    for (name, register) in row.record.registers() {
        let stamp = stamp_to_wire(register.stamp);
        writes
            .entry((stamp.hlc, stamp.device_id))
            .or_default()
            .insert(name.to_owned(), register.value.clone());
    }
    writes
        .into_iter()
        .map(|((hlc, device_id), fields)| Change {
            entity,
            row_id: id,
            branch_id: row.branch_id,
            stamp: WireStamp { hlc, device_id },
            fields,
            recorded_at: row.updated_at,
        })
        .collect()
}

/// An entity's columns in [`decode_row`]'s order (the first seven are common to all).
fn columns(entity: Entity) -> &'static str {
    match entity {
        Entity::Patient => {
            "patient_id, branch_id, stamps, created_at, updated_at, last_change_seq, deleted,
             full_name, id_type, id_number, phone, date_of_birth, sex"
        }
        Entity::Appointment => {
            "appointment_id, branch_id, stamps, created_at, updated_at, last_change_seq, deleted,
             patient_id, practitioner_id, starts_at, ends_at, status, note"
        }
        Entity::CashMovement => {
            "movement_id, branch_id, stamps, created_at, recorded_at, last_change_seq, false,
             kind, amount_sen, patient_id, note"
        }
        Entity::CatalogueItem => {
            "item_id, branch_id, stamps, created_at, updated_at, last_change_seq, deleted,
             kind, code, name, price_sen, tax_code, duration_minutes, active"
        }
        Entity::ClinicalEntry => {
            "entry_id, branch_id, stamps, created_at, recorded_at, last_change_seq, false,
             patient_id, kind, body, author_id"
        }
    }
}

fn id_column(entity: Entity) -> &'static str {
    match entity {
        Entity::Patient => "patient_id",
        Entity::Appointment => "appointment_id",
        Entity::CashMovement => "movement_id",
        Entity::CatalogueItem => "item_id",
        Entity::ClinicalEntry => "entry_id",
    }
}

/// The rows of a business (`$1`) with the ids in `$2`, in the array's order, locked (except
/// ledger entries: they never change, the app role may not even lock them, and two pushes of
/// one business already take turns on the tenant row).
///
/// One query, yet one primary-key probe per id whatever the statistics say: a lateral subquery
/// that locks rows cannot be flattened into a join. (A plain `= ANY` or join was at the mercy of
/// the planner: while a business grows fast, as on a branch's first upload, its statistics lag
/// and the planner scanned the whole business once per push.)
fn select_by_ids_sql(entity: Entity, lock: RowLock) -> String {
    // (OFFSET 0 keeps the lateral subquery from being flattened, like FOR UPDATE does.)
    let lock = if entity.is_ledger() || lock == RowLock::None {
        "OFFSET 0"
    } else {
        "FOR UPDATE"
    };
    format!(
        "SELECT r.* FROM unnest($2::uuid[]) AS k(id)
         CROSS JOIN LATERAL (
             SELECT {} FROM {} WHERE tenant_id = $1 AND {} = k.id {lock}
         ) AS r",
        columns(entity),
        table(entity),
        id_column(entity)
    )
}

/// A row selected with [`columns`]: the first seven columns are common to every entity.
pub fn decode_row(entity: Entity, row: &tokio_postgres::Row) -> Result<(Uuid, StoredRow)> {
    let id: Uuid = row.try_get(0)?;
    let branch_id: Uuid = row.try_get(1)?;
    let mut fields = typed_fields(entity, id, branch_id, row, 7)?;
    let stamps = crate::stamps::decode(row.try_get(2)?)
        .map_err(|error| Error::Internal(format!("row {id}: {error}")))?;
    if stamps.contains_key(DELETED_FIELD) {
        fields.insert(DELETED_FIELD.to_owned(), Value::Bool(row.try_get(6)?));
    }
    let record = record_from_parts(&fields, &stamps);
    Ok((
        id,
        StoredRow {
            branch_id,
            loaded_digest: row_digest(id, &record),
            record,
            existed: true,
            created_at: row.try_get(3)?,
            updated_at: row.try_get(4)?,
            last_change_seq: row.try_get(5)?,
            dirty: false,
            typed: None,
            encoded: None,
        },
    ))
}

/// The entity's replicated fields from its typed columns, which start at column `at`.
pub fn typed_fields(
    entity: Entity,
    id: Uuid,
    branch_id: Uuid,
    row: &tokio_postgres::Row,
    at: usize,
) -> Result<Fields> {
    Ok(match entity {
        Entity::Patient => {
            let id_type: String = row.try_get(at + 1)?;
            let sex: Option<String> = row.try_get(at + 5)?;
            PatientRecord {
                id,
                branch_id,
                full_name: row.try_get(at)?,
                id_type: id_type_from_text(&id_type)?,
                id_number: row.try_get(at + 2)?,
                phone: row.try_get(at + 3)?,
                date_of_birth: row.try_get(at + 4)?,
                sex: sex.as_deref().map(sex_from_text).transpose()?,
            }
            .fields()
        }
        Entity::Appointment => {
            let status: String = row.try_get(at + 4)?;
            AppointmentRecord {
                id,
                branch_id,
                patient_id: row.try_get(at)?,
                practitioner_id: row.try_get(at + 1)?,
                starts_at: row.try_get(at + 2)?,
                ends_at: row.try_get(at + 3)?,
                status: AppointmentStatus::parse(&status).ok_or_else(|| {
                    Error::Internal(format!("stored appointment status {status:?} is unknown"))
                })?,
                note: row.try_get(at + 5)?,
            }
            .fields()
        }
        Entity::CashMovement => {
            let kind: String = row.try_get(at)?;
            CashMovementRecord {
                id,
                branch_id,
                kind: CashKind::parse(&kind).ok_or_else(|| {
                    Error::Internal(format!("stored cash kind {kind:?} is unknown"))
                })?,
                amount: ringgit::from_sen(row.try_get(at + 1)?),
                patient_id: row.try_get(at + 2)?,
                note: row.try_get(at + 3)?,
            }
            .fields()
        }
        Entity::CatalogueItem => {
            let kind: String = row.try_get(at)?;
            let tax: String = row.try_get(at + 4)?;
            let duration: Option<i32> = row.try_get(at + 5)?;
            CatalogueItemRecord {
                id,
                branch_id,
                kind: CatalogueKind::parse(&kind).ok_or_else(|| {
                    Error::Internal(format!("stored catalogue kind {kind:?} is unknown"))
                })?,
                code: row.try_get(at + 1)?,
                name: row.try_get(at + 2)?,
                price: ringgit::from_sen(row.try_get(at + 3)?),
                tax: TaxCode::parse(&tax).ok_or_else(|| {
                    Error::Internal(format!("stored tax code {tax:?} is unknown"))
                })?,
                duration_minutes: duration.and_then(|minutes| u32::try_from(minutes).ok()),
                active: row.try_get(at + 6)?,
            }
            .fields()
        }
        Entity::ClinicalEntry => {
            let kind: String = row.try_get(at + 1)?;
            ClinicalEntryRecord {
                id,
                branch_id,
                patient_id: row.try_get(at)?,
                kind: ClinicalKind::parse(&kind).ok_or_else(|| {
                    Error::Internal(format!("stored clinical kind {kind:?} is unknown"))
                })?,
                body: row.try_get(at + 2)?,
                author_id: row.try_get(at + 3)?,
            }
            .fields()
        }
    })
}

/// Why a merged row is not a valid row of its entity: (message, field errors). `changed` are
/// the fields the change set, checked for their canonical spelling; field names in errors are
/// `seq[<seq>].<field>`.
pub fn check_merged(
    entity: Entity,
    id: Uuid,
    branch_id: Uuid,
    fields: &Fields,
    changed: &Fields,
    seq: i64,
) -> std::result::Result<Typed, (String, Vec<FieldError>)> {
    let incomplete =
        |detail: String| (format!("The record would be incomplete: {detail}."), vec![]);
    let field = |name: &str| format!("seq[{seq}].{name}");
    let problems = |list: Vec<(&'static str, String)>| -> Vec<FieldError> {
        list.into_iter()
            .map(|(name, message)| FieldError {
                field: field(name),
                code: "invalid".to_owned(),
                message,
            })
            .collect()
    };
    let (mut errors, canonical, typed) = match entity {
        Entity::Patient => {
            let record = PatientRecord::from_fields(id, branch_id, fields).map_err(incomplete)?;
            let errors = validate::patient(&record, seq);
            (errors, record.fields(), Typed::Patient(record))
        }
        Entity::Appointment => {
            let record =
                AppointmentRecord::from_fields(id, branch_id, fields).map_err(incomplete)?;
            let errors = problems(record.problems());
            (errors, record.fields(), Typed::Appointment(record))
        }
        Entity::CashMovement => {
            let record =
                CashMovementRecord::from_fields(id, branch_id, fields).map_err(incomplete)?;
            let errors = problems(record.problems());
            (errors, record.fields(), Typed::CashMovement(record))
        }
        Entity::CatalogueItem => {
            let record =
                CatalogueItemRecord::from_fields(id, branch_id, fields).map_err(incomplete)?;
            let errors = problems(record.problems());
            (errors, record.fields(), Typed::CatalogueItem(record))
        }
        Entity::ClinicalEntry => {
            let record =
                ClinicalEntryRecord::from_fields(id, branch_id, fields).map_err(incomplete)?;
            let errors = problems(record.problems());
            (errors, record.fields(), Typed::ClinicalEntry(record))
        }
    };
    for name in records::non_canonical_fields(changed, &canonical) {
        errors.push(FieldError {
            field: field(&name),
            code: "not_canonical".to_owned(),
            message: "This value is not written the way Kaunter writes it.".to_owned(),
        });
    }
    if errors.is_empty() {
        Ok(typed)
    } else {
        Err(("Some fields are not valid.".to_owned(), errors))
    }
}

/// Writes every row the batch changed (one statement per table) and moves the branch digests.
pub async fn store(
    tx: &TenantTx<'_>,
    tenant: Uuid,
    device: Uuid,
    rows: &HashMap<RowKey, StoredRow>,
    part: Part,
) -> Result<()> {
    // Each digest moves by its rows' old and new digests (an UPDATE that adds the difference,
    // so it need not be read first), sent with the writes below.
    let mut moves: HashMap<DigestOf, (u64, u64)> = HashMap::new();
    let moved = match part {
        Part::All | Part::AllButNew => rows.iter().filter(|(_, row)| row.dirty).collect(),
        Part::New => Vec::new(),
    };
    for ((entity, id), row) in moved {
        let entry = moves
            .entry(DigestOf::row(*entity, row.branch_id))
            .or_default();
        entry.0 = entry.0.wrapping_add(row.loaded_digest);
        let digest = match &row.encoded {
            Some(encoded) => encoded.digest,
            None => row_digest(*id, &row.record),
        };
        entry.1 = entry.1.wrapping_add(digest);
    }
    let digests = async {
        for (of, (old, new)) in moves {
            move_digest(tx, tenant, of, old, new).await?;
        }
        Ok(())
    };
    // New rows are plainly inserted, stored ones upserted: a new row's id is known only to the
    // desk that made it until it is committed, and that desk's pushes here do not write one
    // row at once (see push's head start), so no other push inserts it meanwhile; a plain
    // insert skips the speculative-insertion work ON CONFLICT costs every row. (Were one to,
    // one of the two would fail, and its desk send again.)
    let writes = async {
        for entity in Entity::ALL {
            for existed in [false, true] {
                let written = match part {
                    Part::All => true,
                    Part::New => !existed && written_ahead(entity),
                    Part::AllButNew => existed || !written_ahead(entity),
                };
                if !written {
                    continue;
                }
                let dirty: Vec<(Uuid, &StoredRow)> = rows
                    .iter()
                    .filter(|((e, _), row)| *e == entity && row.dirty && row.existed == existed)
                    .map(|((_, id), row)| (*id, row))
                    .collect();
                if dirty.is_empty() {
                    continue;
                }
                let write = Write {
                    tenant,
                    device,
                    upsert: existed,
                };
                match entity {
                    Entity::Patient => store_patients(tx, write, &dirty).await?,
                    Entity::Appointment => store_appointments(tx, write, &dirty).await?,
                    Entity::CashMovement => store_cash(tx, write, &dirty).await?,
                    Entity::CatalogueItem => store_catalogue(tx, write, &dirty).await?,
                    Entity::ClinicalEntry => store_clinical(tx, write, &dirty).await?,
                }
            }
        }
        Ok(())
    };
    // One connection runs them in the order sent, without waiting for each answer.
    tokio::try_join!(biased; writes, digests).map(|_| ())
}

/// Deletes the new rows among `rows` that [`store`] wrote with [`Part::New`] (in this
/// transaction, before its locks): a push's head start that did not hold.
pub async fn unstore_new(
    tx: &TenantTx<'_>,
    tenant: Uuid,
    rows: &HashMap<RowKey, StoredRow>,
) -> Result<()> {
    for entity in Entity::ALL
        .into_iter()
        .filter(|entity| written_ahead(*entity))
    {
        let ids: Vec<Uuid> = rows
            .iter()
            .filter(|((e, _), row)| *e == entity && row.dirty && !row.existed)
            .map(|((_, id), _)| *id)
            .collect();
        if ids.is_empty() {
            continue;
        }
        tx.execute_cached(
            &format!(
                "DELETE FROM {} WHERE tenant_id = $1 AND {} = ANY($2)",
                table(entity),
                id_column(entity)
            ),
            &[&tenant, &ids],
        )
        .await?;
    }
    Ok(())
}

/// Whether new rows of `entity` are written before a push's locks ([`Part::New`]): only where
/// they can be deleted again if the push's guess does not hold ([`unstore_new`]). The ledger
/// and clinical records are insert-only to the app's role.
pub fn written_ahead(entity: Entity) -> bool {
    matches!(
        entity,
        Entity::Patient | Entity::Appointment | Entity::CatalogueItem
    )
}

/// Which of a batch's dirty rows [`store`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Every row, and the digests.
    All,
    /// The new rows of the entities [`written_ahead`] (a push's head start, before its locks);
    /// no digest moves.
    New,
    /// The rest, and the digests of every row.
    AllButNew,
}

/// Which digest a row counts in: its branch's, or (a tenant-wide row) the business's catalogue
/// digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestOf {
    Branch(Uuid),
    TenantWide,
}

impl DigestOf {
    pub fn row(entity: Entity, branch_id: Uuid) -> DigestOf {
        if entity.is_tenant_wide() {
            DigestOf::TenantWide
        } else {
            DigestOf::Branch(branch_id)
        }
    }
}

/// `column + $n` as the wrapping sum of two u64 stored in signed columns (their bits), in
/// numeric so it cannot overflow: the same as [`update_digest`], done where the digest is, so
/// moving it is one statement and no round trip to read it first.
macro_rules! wrapping_add_sql {
    ($column:literal, $param:literal) => {
        concat!(
            "(((",
            $column,
            "::numeric + ",
            $param,
            "::bigint::numeric + 9223372036854775808)",
            " % 18446744073709551616 + 18446744073709551616) % 18446744073709551616",
            " - 9223372036854775808)::bigint"
        )
    };
}

/// Replaces `old` by `new` in a branch's or the catalogue's digest.
pub async fn move_digest(
    tx: &TenantTx<'_>,
    tenant: Uuid,
    of: DigestOf,
    old: u64,
    new: u64,
) -> Result<()> {
    // Adding new - old (wrapping) is replacing old by new: see update_digest.
    let delta = update_digest(0, old, new) as i64;
    let moved = match of {
        DigestOf::Branch(branch_id) => {
            tx.execute_cached(
                concat!(
                    "UPDATE branches SET state_digest = ",
                    wrapping_add_sql!("state_digest", "$3"),
                    " WHERE tenant_id = $1 AND branch_id = $2"
                ),
                &[&tenant, &branch_id, &delta],
            )
            .await?
        }
        DigestOf::TenantWide => {
            tx.execute_cached(
                concat!(
                    "UPDATE tenants SET catalogue_digest = ",
                    wrapping_add_sql!("catalogue_digest", "$2"),
                    " WHERE tenant_id = $1"
                ),
                &[&tenant, &delta],
            )
            .await?
        }
    };
    if moved != 1 {
        return Err(Error::Internal(format!("no digest to move for {of:?}")));
    }
    Ok(())
}

/// Who writes a statement's rows, and whether they may exist already (else a plain insert).
#[derive(Clone, Copy)]
struct Write {
    tenant: Uuid,
    device: Uuid,
    upsert: bool,
}

/// A merged row as its typed record: the one the merge kept, else decoded from its fields.
fn typed_record<T: Cached>(id: Uuid, row: &StoredRow) -> Result<T> {
    typed_ref::<T>(id, row).map(Cow::into_owned)
}

/// [`typed_record`], borrowed when the merge kept it.
fn typed_ref<T: Cached>(id: Uuid, row: &StoredRow) -> Result<Cow<'_, T>> {
    if let Some(record) = row.typed.as_ref().and_then(T::cached) {
        return Ok(Cow::Borrowed(record));
    }
    let fields: Fields = row
        .record
        .registers()
        .map(|(name, register)| (name.to_owned(), register.value.clone()))
        .collect();
    T::from_fields(id, row.branch_id, &fields)
        .map(Cow::Owned)
        .map_err(|detail| Error::Internal(format!("a merged row does not decode: {detail}")))
}

/// A merged row's stamps as stored: borrowed when they were encoded before the push's locks.
fn stamps_of(id: Uuid, row: &StoredRow) -> Result<Cow<'_, [u8]>> {
    match &row.encoded {
        Some(encoded) => Ok(Cow::Borrowed(&encoded.stamps)),
        None => crate::stamps::encode_record(&row.record)
            .map(Cow::Owned)
            .map_err(|error| Error::Internal(format!("row {id}: {error}"))),
    }
}

/// A merged row as its typed record and its stamps as stored.
fn merged<T: Cached>(id: Uuid, row: &StoredRow) -> Result<(T, Vec<u8>)> {
    Ok((
        typed_record::<T>(id, row)?,
        stamps_of(id, row)?.into_owned(),
    ))
}

async fn store_patients(
    tx: &TenantTx<'_>,
    Write {
        tenant,
        device,
        upsert,
    }: Write,
    dirty: &[(Uuid, &StoredRow)],
) -> Result<()> {
    // Borrowed from the rows where the merge or the preparation kept them: a branch's first
    // upload writes hundreds of new patients per push.
    let merged: Vec<(Cow<'_, PatientRecord>, Cow<'_, [u8]>)> = dirty
        .iter()
        .map(|(id, row)| Ok((typed_ref::<PatientRecord>(*id, row)?, stamps_of(*id, row)?)))
        .collect::<Result<_>>()?;
    let ids: Vec<Uuid> = dirty.iter().map(|(id, _)| *id).collect();
    let branch_ids: Vec<Uuid> = dirty.iter().map(|(_, row)| row.branch_id).collect();
    let names: Vec<&str> = merged.iter().map(|(p, _)| p.full_name.as_str()).collect();
    let id_types: Vec<&str> = merged
        .iter()
        .map(|(p, _)| id_type_text(p.id_type))
        .collect();
    let id_numbers: Vec<&str> = merged.iter().map(|(p, _)| p.id_number.as_str()).collect();
    let phones: Vec<Option<&str>> = merged.iter().map(|(p, _)| p.phone.as_deref()).collect();
    let births: Vec<Option<NaiveDate>> = merged.iter().map(|(p, _)| p.date_of_birth).collect();
    let sexes: Vec<Option<&str>> = merged.iter().map(|(p, _)| p.sex.map(sex_text)).collect();
    let created: Vec<DateTime<Utc>> = dirty.iter().map(|(_, row)| row.created_at).collect();
    let updated: Vec<DateTime<Utc>> = dirty.iter().map(|(_, row)| row.updated_at).collect();
    let change_seqs: Vec<i64> = dirty.iter().map(|(_, row)| row.last_change_seq).collect();
    let stamps: Vec<&[u8]> = merged.iter().map(|(_, stamps)| stamps.as_ref()).collect();
    let deleted: Vec<bool> = dirty
        .iter()
        .map(|(_, row)| is_deleted(&row.record))
        .collect();
    let on_conflict = if upsert {
        "ON CONFLICT (tenant_id, patient_id) DO UPDATE SET
             full_name = EXCLUDED.full_name,
             id_type = EXCLUDED.id_type,
             id_number = EXCLUDED.id_number,
             phone = EXCLUDED.phone,
             date_of_birth = EXCLUDED.date_of_birth,
             sex = EXCLUDED.sex,
             updated_at = EXCLUDED.updated_at,
             last_change_seq = EXCLUDED.last_change_seq,
             stamps = EXCLUDED.stamps,
             deleted = EXCLUDED.deleted"
    } else {
        ""
    };
    tx.execute_cached(
        &format!(
            "INSERT INTO patients (tenant_id, patient_id, branch_id, full_name, id_type, id_number,
             phone, date_of_birth, sex, created_at, updated_at, origin_device_id,
             last_change_seq, stamps, deleted)
         SELECT $1, u.id, u.branch_id, u.full_name, u.id_type, u.id_number, u.phone, u.born,
                u.sex, u.created_at, u.updated_at, $2, u.change_seq, u.stamps, u.deleted
         FROM unnest($3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[],
                     $9::date[], $10::text[], $11::timestamptz[], $12::timestamptz[],
                     $13::bigint[], $14::bytea[], $15::boolean[])
              AS u(id, branch_id, full_name, id_type, id_number, phone, born, sex, created_at,
                   updated_at, change_seq, stamps, deleted)
         {on_conflict}"
        ),
        &[
            &tenant,
            &device,
            &ids,
            &branch_ids,
            &names,
            &id_types,
            &id_numbers,
            &phones,
            &births,
            &sexes,
            &created,
            &updated,
            &change_seqs,
            &stamps,
            &deleted,
        ],
    )
    .await?;
    Ok(())
}

async fn store_appointments(
    tx: &TenantTx<'_>,
    Write {
        tenant,
        device,
        upsert,
    }: Write,
    dirty: &[(Uuid, &StoredRow)],
) -> Result<()> {
    let n = dirty.len();
    let (mut ids, mut branch_ids, mut patients, mut practitioners, mut starts) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut ends, mut statuses, mut notes, mut created, mut updated) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut change_seqs, mut stamps, mut deleted) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (id, row) in dirty {
        let (appointment, row_stamps) = merged::<AppointmentRecord>(*id, row)?;
        ids.push(*id);
        branch_ids.push(row.branch_id);
        patients.push(appointment.patient_id);
        practitioners.push(appointment.practitioner_id);
        starts.push(appointment.starts_at);
        ends.push(appointment.ends_at);
        statuses.push(appointment.status.as_str());
        notes.push(appointment.note);
        created.push(row.created_at);
        updated.push(row.updated_at);
        change_seqs.push(row.last_change_seq);
        stamps.push(row_stamps);
        deleted.push(is_deleted(&row.record));
    }
    let on_conflict = if upsert {
        "ON CONFLICT (tenant_id, appointment_id) DO UPDATE SET
             patient_id = EXCLUDED.patient_id,
             practitioner_id = EXCLUDED.practitioner_id,
             starts_at = EXCLUDED.starts_at,
             ends_at = EXCLUDED.ends_at,
             status = EXCLUDED.status,
             note = EXCLUDED.note,
             updated_at = EXCLUDED.updated_at,
             last_change_seq = EXCLUDED.last_change_seq,
             stamps = EXCLUDED.stamps,
             deleted = EXCLUDED.deleted"
    } else {
        ""
    };
    tx.execute_cached(
        &format!(
            "INSERT INTO appointments (tenant_id, appointment_id, branch_id, patient_id,
             practitioner_id, starts_at, ends_at, status, note, created_at, updated_at,
             origin_device_id, last_change_seq, stamps, deleted)
         SELECT $1, u.id, u.branch_id, u.patient_id, u.practitioner_id, u.starts_at, u.ends_at,
                u.status, u.note, u.created_at, u.updated_at, $2, u.change_seq, u.stamps,
                u.deleted
         FROM unnest($3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[], $7::timestamptz[],
                     $8::timestamptz[], $9::text[], $10::text[], $11::timestamptz[],
                     $12::timestamptz[], $13::bigint[], $14::bytea[], $15::boolean[])
              AS u(id, branch_id, patient_id, practitioner_id, starts_at, ends_at, status, note,
                   created_at, updated_at, change_seq, stamps, deleted)
         {on_conflict}"
        ),
        &[
            &tenant,
            &device,
            &ids,
            &branch_ids,
            &patients,
            &practitioners,
            &starts,
            &ends,
            &statuses,
            &notes,
            &created,
            &updated,
            &change_seqs,
            &stamps,
            &deleted,
        ],
    )
    .await?;
    Ok(())
}

/// Ledger entries are only ever inserted: push refuses any change to one that exists.
async fn store_cash(
    tx: &TenantTx<'_>,
    Write { tenant, device, .. }: Write,
    dirty: &[(Uuid, &StoredRow)],
) -> Result<()> {
    let n = dirty.len();
    let (mut ids, mut branch_ids, mut kinds, mut amounts, mut patients) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut notes, mut recorded, mut change_seqs, mut stamps) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (id, row) in dirty {
        if row.existed {
            return Err(Error::Internal(
                "a stored ledger entry was about to change".to_owned(),
            ));
        }
        let (movement, row_stamps) = merged::<CashMovementRecord>(*id, row)?;
        let sen = ringgit::to_sen(movement.amount)
            .ok_or_else(|| Error::Internal("a validated amount has no sen value".to_owned()))?;
        ids.push(*id);
        branch_ids.push(row.branch_id);
        kinds.push(movement.kind.as_str());
        amounts.push(sen);
        patients.push(movement.patient_id);
        notes.push(movement.note);
        recorded.push(row.created_at);
        change_seqs.push(row.last_change_seq);
        stamps.push(row_stamps);
    }
    tx.execute_cached(
        "INSERT INTO cash_movements (tenant_id, movement_id, branch_id, kind, amount_sen,
             patient_id, note, recorded_at, origin_device_id, last_change_seq, stamps)
         SELECT $1, u.id, u.branch_id, u.kind, u.amount_sen, u.patient_id, u.note,
                u.recorded_at, $2, u.change_seq, u.stamps
         FROM unnest($3::uuid[], $4::uuid[], $5::text[], $6::bigint[], $7::uuid[], $8::text[],
                     $9::timestamptz[], $10::bigint[], $11::bytea[])
              AS u(id, branch_id, kind, amount_sen, patient_id, note, recorded_at, change_seq,
                   stamps)",
        &[
            &tenant,
            &device,
            &ids,
            &branch_ids,
            &kinds,
            &amounts,
            &patients,
            &notes,
            &recorded,
            &change_seqs,
            &stamps,
        ],
    )
    .await?;
    Ok(())
}

async fn store_catalogue(
    tx: &TenantTx<'_>,
    Write {
        tenant,
        device,
        upsert,
    }: Write,
    dirty: &[(Uuid, &StoredRow)],
) -> Result<()> {
    let items = dirty
        .iter()
        .map(|(id, row)| merged::<CatalogueItemRecord>(*id, row).map(|merged| (*id, *row, merged)))
        .collect::<Result<Vec<_>>>()?;
    let ids: Vec<Uuid> = items.iter().map(|(id, ..)| *id).collect();
    let branch_ids: Vec<Uuid> = items.iter().map(|(_, row, _)| row.branch_id).collect();
    let kinds: Vec<&str> = items.iter().map(|(.., (i, _))| i.kind.as_str()).collect();
    let codes: Vec<&str> = items.iter().map(|(.., (i, _))| i.code.as_str()).collect();
    let names: Vec<&str> = items.iter().map(|(.., (i, _))| i.name.as_str()).collect();
    let prices = items
        .iter()
        .map(|(.., (i, _))| {
            ringgit::to_sen(i.price)
                .ok_or_else(|| Error::Internal("a merged price has no sen".to_owned()))
        })
        .collect::<Result<Vec<i64>>>()?;
    let taxes: Vec<&str> = items.iter().map(|(.., (i, _))| i.tax.as_str()).collect();
    let durations: Vec<Option<i32>> = items
        .iter()
        .map(|(.., (i, _))| i.duration_minutes.and_then(|m| i32::try_from(m).ok()))
        .collect();
    let active: Vec<bool> = items.iter().map(|(.., (i, _))| i.active).collect();
    let created: Vec<DateTime<Utc>> = items.iter().map(|(_, row, _)| row.created_at).collect();
    let updated: Vec<DateTime<Utc>> = items.iter().map(|(_, row, _)| row.updated_at).collect();
    let change_seqs: Vec<i64> = items
        .iter()
        .map(|(_, row, _)| row.last_change_seq)
        .collect();
    let stamps: Vec<&[u8]> = items.iter().map(|(.., (_, s))| s.as_slice()).collect();
    let deleted: Vec<bool> = items
        .iter()
        .map(|(_, row, _)| is_deleted(&row.record))
        .collect();
    let on_conflict = if upsert {
        "ON CONFLICT (tenant_id, item_id) DO UPDATE SET
             kind = EXCLUDED.kind, code = EXCLUDED.code, name = EXCLUDED.name,
             price_sen = EXCLUDED.price_sen, tax_code = EXCLUDED.tax_code,
             duration_minutes = EXCLUDED.duration_minutes, active = EXCLUDED.active,
             updated_at = EXCLUDED.updated_at, last_change_seq = EXCLUDED.last_change_seq,
             stamps = EXCLUDED.stamps, deleted = EXCLUDED.deleted"
    } else {
        ""
    };
    tx.execute_cached(
        &format!(
            "INSERT INTO catalogue_items (tenant_id, item_id, branch_id, kind, code, name,
                 price_sen, tax_code, duration_minutes, active, created_at, updated_at,
                 origin_device_id, last_change_seq, stamps, deleted)
             SELECT $1, u.id, u.branch_id, u.kind, u.code, u.name, u.price, u.tax, u.duration,
                    u.active, u.created_at, u.updated_at, $2, u.change_seq, u.stamps, u.deleted
             FROM unnest($3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[],
                         $8::bigint[], $9::text[], $10::integer[], $11::boolean[],
                         $12::timestamptz[], $13::timestamptz[], $14::bigint[], $15::bytea[],
                         $16::boolean[])
                  AS u(id, branch_id, kind, code, name, price, tax, duration, active,
                       created_at, updated_at, change_seq, stamps, deleted)
             {on_conflict}"
        ),
        &[
            &tenant,
            &device,
            &ids,
            &branch_ids,
            &kinds,
            &codes,
            &names,
            &prices,
            &taxes,
            &durations,
            &active,
            &created,
            &updated,
            &change_seqs,
            &stamps,
            &deleted,
        ],
    )
    .await?;
    Ok(())
}

/// Clinical entries: written once, like ledger entries (a medical record is corrected by another
/// entry).
async fn store_clinical(
    tx: &TenantTx<'_>,
    Write { tenant, device, .. }: Write,
    dirty: &[(Uuid, &StoredRow)],
) -> Result<()> {
    if dirty.iter().any(|(_, row)| row.existed) {
        return Err(Error::Internal(
            "a stored clinical entry was about to change".to_owned(),
        ));
    }
    let entries = dirty
        .iter()
        .map(|(id, row)| merged::<ClinicalEntryRecord>(*id, row).map(|merged| (*id, *row, merged)))
        .collect::<Result<Vec<_>>>()?;
    let ids: Vec<Uuid> = entries.iter().map(|(id, ..)| *id).collect();
    let branch_ids: Vec<Uuid> = entries.iter().map(|(_, row, _)| row.branch_id).collect();
    let patients: Vec<Uuid> = entries.iter().map(|(.., (e, _))| e.patient_id).collect();
    let kinds: Vec<&str> = entries.iter().map(|(.., (e, _))| e.kind.as_str()).collect();
    let bodies: Vec<&str> = entries.iter().map(|(.., (e, _))| e.body.as_str()).collect();
    let authors: Vec<Option<Uuid>> = entries.iter().map(|(.., (e, _))| e.author_id).collect();
    let recorded: Vec<DateTime<Utc>> = entries.iter().map(|(_, row, _)| row.created_at).collect();
    let change_seqs: Vec<i64> = entries
        .iter()
        .map(|(_, row, _)| row.last_change_seq)
        .collect();
    let stamps: Vec<&[u8]> = entries.iter().map(|(.., (_, s))| s.as_slice()).collect();
    tx.execute_cached(
        "INSERT INTO clinical_entries (tenant_id, entry_id, branch_id, patient_id, kind, body,
             author_id, recorded_at, origin_device_id, last_change_seq, stamps)
         SELECT $1, u.id, u.branch_id, u.patient_id, u.kind, u.body, u.author_id,
                u.recorded_at, $2, u.change_seq, u.stamps
         FROM unnest($3::uuid[], $4::uuid[], $5::uuid[], $6::text[], $7::text[], $8::uuid[],
                     $9::timestamptz[], $10::bigint[], $11::bytea[])
              AS u(id, branch_id, patient_id, kind, body, author_id, recorded_at, change_seq,
                   stamps)",
        &[
            &tenant,
            &device,
            &ids,
            &branch_ids,
            &patients,
            &kinds,
            &bodies,
            &authors,
            &recorded,
            &change_seqs,
            &stamps,
        ],
    )
    .await?;
    Ok(())
}
