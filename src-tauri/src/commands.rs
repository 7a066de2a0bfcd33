//! The commands the desk window calls. Each is a thin adapter: convert the form, call the
//! library, convert the answer. Async so that store and network work never block the window.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use kaunter_core::access::Permission;
use kaunter_core::{NewPatient, PatientId, RegistrationForm, SearchQuery};
use kaunter_protocol::http::{ConflictKind, ConflictView, Entity, Fields, Resolution};
use kaunter_protocol::ipc::{
    AppInfo, CatalogueItemForm, ClinicalEntryForm, ClinicalRecordView, CommandError,
    DeskPeopleView, EmergencyAccessForm, EnrolForm, PatientView, RefusedChangeView,
    RegisterPatientForm, SignInForm, StaffEntry, SyncStatusView,
};
use kaunter_protocol::records::{CatalogueItemRecord, EntityRecord, ringgit};
use kaunter_store::{DeskIdentity, NewCatalogueItem, convert};
use kaunter_sync_client::SyncClient;
use tauri::State;

use crate::error::{self, field};
use crate::state::DeskState;

type CommandResult<T> = Result<T, CommandError>;

const SEARCH_LIMIT: usize = 200;
const DEVICE_NAME_MAX_CHARS: usize = 60;

/// Today in Malaysia (UTC+8 all year, no daylight saving), whatever zone the computer uses.
fn today_in_malaysia(now: DateTime<Utc>) -> NaiveDate {
    (now + TimeDelta::hours(8)).date_naive()
}

/// The store, for one command. A person who has done nothing at the desk for
/// `kaunter_store::IDLE_SIGN_OUT` is signed out first, whatever the command (the window asks
/// who is at the desk every few seconds, so an idle desk locks itself soon after).
fn lock(state: &DeskState) -> CommandResult<std::sync::MutexGuard<'_, kaunter_store::Store>> {
    let mut store = state.store()?.lock().map_err(|_| {
        error::plain(
            "store_failed",
            "The local store is unavailable; restart Kaunter.",
        )
    })?;
    store
        .sign_out_if_idle(Utc::now())
        .map_err(error::from_store)?;
    Ok(store)
}

/// The person at the desk typed or clicked: their idle time starts again. The window sends it
/// on input, at most every few seconds; polls do not count.
#[tauri::command]
pub async fn desk_activity(state: State<'_, DeskState>) -> CommandResult<()> {
    lock(&state)?.touch(Utc::now());
    Ok(())
}

fn info(state: &DeskState) -> CommandResult<AppInfo> {
    let store = lock(state)?;
    Ok(match store.identity() {
        Some(identity) => AppInfo {
            enrolled: true,
            business_name: Some(identity.business_name.clone()),
            branch_name: Some(identity.branch_name.clone()),
            device_name: Some(identity.device_name.clone()),
            server_url: Some(identity.server_url.clone()),
        },
        None => AppInfo {
            enrolled: false,
            business_name: None,
            branch_name: None,
            device_name: None,
            server_url: None,
        },
    })
}

#[tauri::command]
pub async fn app_info(state: State<'_, DeskState>) -> CommandResult<AppInfo> {
    info(&state)
}

#[tauri::command]
pub async fn enrol(state: State<'_, DeskState>, form: EnrolForm) -> CommandResult<AppInfo> {
    let mut problems = Vec::new();
    let server_url = form.server_url.trim();
    let code = form.code.trim();
    let device_name = form
        .device_name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if server_url.is_empty() {
        problems.push(field("server_url", "required", "Enter the server address."));
    }
    if code.is_empty() {
        problems.push(field(
            "code",
            "required",
            "Enter the enrolment code from your administrator.",
        ));
    }
    if device_name.is_empty() {
        problems.push(field(
            "device_name",
            "required",
            "Name this desk, e.g. Front desk 1.",
        ));
    } else if device_name.chars().count() > DEVICE_NAME_MAX_CHARS {
        problems.push(field(
            "device_name",
            "too_long",
            format!("A desk name has at most {DEVICE_NAME_MAX_CHARS} characters."),
        ));
    }
    if !problems.is_empty() {
        return Err(error::invalid(problems));
    }
    if lock(&state)?.identity().is_some() {
        return Err(error::plain(
            "already_enrolled",
            "This desk is already enrolled.",
        ));
    }
    let enrolled = SyncClient::enrol_rotating(server_url, code, &device_name)
        .await
        .map_err(error::from_enrol)?;
    {
        let mut store = lock(&state)?;
        store
            .enrol_with_refresh(
                DeskIdentity::from_enrolment(&enrolled, &device_name, server_url),
                &enrolled.device_token,
                enrolled.refresh_token.as_deref(),
            )
            .map_err(error::from_store)?;
    }
    state.start_sync_if_enrolled();
    info(&state)
}

#[tauri::command]
pub async fn register_patient(
    state: State<'_, DeskState>,
    form: RegisterPatientForm,
) -> CommandResult<PatientView> {
    let now = Utc::now();
    let typed = RegistrationForm {
        full_name: &form.full_name,
        id_type: convert::id_type_from_wire(form.id_type),
        id_number: &form.id_number,
        phone: &form.phone,
        date_of_birth: form.date_of_birth.as_deref(),
        sex: form.sex.map(convert::sex_from_wire),
    };
    let patient = NewPatient::validate(&typed, today_in_malaysia(now)).map_err(|errors| {
        error::invalid(
            errors
                .into_iter()
                .map(|e| field(e.field.name(), e.code, e.message))
                .collect(),
        )
    })?;
    let view = {
        let mut store = lock(&state)?;
        store
            .require(Permission::PatientsWrite)
            .map_err(error::from_store)?;
        store
            .register_patient(&patient, now)
            .map_err(error::from_store)?
    };
    if let Some(engine) = state.engine() {
        engine.wake();
    }
    Ok(view)
}

#[tauri::command]
pub async fn search_patients(
    state: State<'_, DeskState>,
    query: String,
) -> CommandResult<Vec<PatientView>> {
    let store = lock(&state)?;
    store
        .require(Permission::PatientsRead)
        .map_err(error::from_store)?;
    store
        .search_patients(&SearchQuery::parse(&query), SEARCH_LIMIT)
        .map_err(error::from_store)
}

fn status(state: &DeskState) -> CommandResult<SyncStatusView> {
    let (sync, licence) = {
        let mut store = lock(state)?;
        (
            store.sync_state().map_err(error::from_store)?,
            store
                .licence_status(Utc::now())
                .map_err(error::from_store)?,
        )
    };
    let lease = licence.licence.as_ref();
    let live = state
        .engine()
        .map(|engine| engine.live_status())
        .unwrap_or_default();
    Ok(SyncStatusView {
        online: live.online,
        syncing: live.syncing,
        pending: sync.pending,
        rejected: sync.rejected,
        open_conflicts: sync.open_conflicts,
        oldest_pending_at: sync.oldest_pending_at,
        pull_done: u32::try_from(live.progress.done).unwrap_or(u32::MAX),
        pull_total: u32::try_from(live.progress.total).unwrap_or(u32::MAX),
        last_synced_at: sync.last_synced_at,
        last_error: sync.last_error,
        needs_reenrolment: live.shut_out,
        licence_access: licence.access.as_str().to_owned(),
        licence_plan: lease.map(|lease| lease.plan.clone()),
        licence_full_until: lease.map(|lease| lease.full_until),
        licence_read_only_until: lease.map(|lease| lease.read_only_until),
        licence_modules: lease.map(|lease| lease.modules.clone()).unwrap_or_default(),
    })
}

#[tauri::command]
pub async fn sync_status(state: State<'_, DeskState>) -> CommandResult<SyncStatusView> {
    status(&state)
}

#[tauri::command]
pub async fn sync_now(state: State<'_, DeskState>) -> CommandResult<SyncStatusView> {
    let engine = state
        .engine()
        .ok_or_else(|| error::plain("not_enrolled", "Enrol this desk before syncing."))?;
    // The outcome is recorded in the store and shown through the status.
    let _ = engine.sync_now(Utc::now).await;
    status(&state)
}

/// Gives up a refused change: the record goes back to the server's version at the next sync,
/// which this starts.
#[tauri::command]
pub async fn discard_refused_change(
    state: State<'_, DeskState>,
    seq: i64,
) -> CommandResult<Vec<RefusedChangeView>> {
    {
        let mut store = lock(&state)?;
        store
            .require(Permission::PatientsWrite)
            .map_err(error::from_store)?;
        store.discard_refused(seq).map_err(error::from_store)?;
    }
    if let Some(engine) = state.engine() {
        engine.wake();
    }
    lock(&state)?.refused_changes().map_err(error::from_store)
}

/// The changes the server refused, with its reasons (they stay on this desk).
#[tauri::command]
pub async fn refused_changes(state: State<'_, DeskState>) -> CommandResult<Vec<RefusedChangeView>> {
    let store = lock(&state)?;
    store
        .require(Permission::PatientsRead)
        .map_err(error::from_store)?;
    store.refused_changes().map_err(error::from_store)
}

fn engine(state: &DeskState) -> CommandResult<std::sync::Arc<kaunter_sync_client::SyncEngine>> {
    state
        .engine()
        .ok_or_else(|| error::plain("not_enrolled", "Enrol this desk first."))
}

/// The open conflicts of this branch, from the server (needs the network).
#[tauri::command]
pub async fn list_conflicts(state: State<'_, DeskState>) -> CommandResult<Vec<ConflictView>> {
    lock(&state)?
        .require(Permission::PatientsRead)
        .map_err(error::from_store)?;
    let engine = engine(&state)?;
    let answer = engine
        .client()
        .conflicts(false)
        .await
        .map_err(error::from_sync)?;
    Ok(answer.conflicts)
}

/// Records a person's decision with the server, then makes its data side here (delete the
/// record that goes, fill the kept one) as ordinary changes, and syncs them.
#[tauri::command]
pub async fn resolve_conflict(
    state: State<'_, DeskState>,
    conflict_id: uuid::Uuid,
    resolution: Resolution,
) -> CommandResult<SyncStatusView> {
    lock(&state)?
        .require(Permission::ConflictsResolve)
        .map_err(error::from_store)?;
    let engine = engine(&state)?;
    let conflict = engine
        .client()
        .resolve_conflict(conflict_id, resolution)
        .await
        .map_err(error::from_sync)?;
    {
        let mut store = lock(&state)?;
        // Checked again under the lock that writes: someone else may have signed in meanwhile.
        store
            .require(Permission::ConflictsResolve)
            .map_err(error::from_store)?;
        match conflict.kind {
            ConflictKind::DuplicateIdNumber => store.resolve_duplicate(
                PatientId::from_uuid(conflict.row_a),
                PatientId::from_uuid(conflict.row_b),
                resolution,
                Utc::now(),
            ),
            ConflictKind::AppointmentOverlap => {
                store.resolve_overlap(conflict.row_a, conflict.row_b, resolution, Utc::now())
            }
        }
        .map_err(error::from_store)?;
    }
    let _ = engine.sync_now(Utc::now).await;
    status(&state)
}

/// Who may sign in here and who is signed in.
#[tauri::command]
pub async fn desk_people(state: State<'_, DeskState>) -> CommandResult<DeskPeopleView> {
    let store = lock(&state)?;
    people(&store)
}

fn people(store: &kaunter_store::Store) -> CommandResult<DeskPeopleView> {
    let entry = |user_id, name: &str, roles: &[String]| StaffEntry {
        user_id,
        name: name.to_owned(),
        roles: roles.to_vec(),
    };
    Ok(DeskPeopleView {
        sign_in_required: store.requires_sign_in().map_err(error::from_store)?,
        staff: store
            .staff()
            .map_err(error::from_store)?
            .iter()
            .map(|s| entry(s.user_id, &s.name, &s.roles))
            .collect(),
        signed_in: store
            .signed_in()
            .map(|s| entry(s.user_id, &s.name, &s.roles)),
    })
}

/// Checks the person's PIN on this desk (no network needed) and signs them in, replacing
/// whoever was: what they do from now on carries their name.
#[tauri::command]
pub async fn sign_in(
    state: State<'_, DeskState>,
    form: SignInForm,
) -> CommandResult<DeskPeopleView> {
    let mut store = lock(&state)?;
    store
        .sign_in(form.user_id, &form.pin)
        .map_err(|error| match error {
            kaunter_store::StoreError::WrongPin => {
                error::invalid(vec![field("pin", "wrong_pin", "That PIN is not right.")])
            }
            other => error::from_store(other),
        })?;
    people(&store)
}

/// Signs the person out (switching user at a shared till, or leaving the desk).
#[tauri::command]
pub async fn sign_out(state: State<'_, DeskState>) -> CommandResult<DeskPeopleView> {
    let mut store = lock(&state)?;
    store.sign_out().map_err(error::from_store)?;
    people(&store)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn malaysian_date_turns_at_4pm_utc() {
        let before = DateTime::parse_from_rfc3339("2026-11-25T15:59:59Z")
            .unwrap()
            .with_timezone(&Utc);
        let after = DateTime::parse_from_rfc3339("2026-11-25T16:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            today_in_malaysia(before),
            NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
        );
        assert_eq!(
            today_in_malaysia(after),
            NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
        );
    }
}

/// Writes everything this desk holds into a new folder of CSV files (in the person's
/// Documents folder, or `KAUNTER_EXPORT_DIR`), in every subscription state: anyone who may read
/// patients may export them; clinical records only for a role that reads them.
#[tauri::command]
pub async fn export_data(
    app: tauri::AppHandle,
    state: State<'_, DeskState>,
) -> CommandResult<kaunter_protocol::ipc::ExportView> {
    use tauri::Manager as _;
    let now = Utc::now();
    let base = match std::env::var_os("KAUNTER_EXPORT_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => app
            .path()
            .document_dir()
            .or_else(|_| app.path().app_data_dir())
            .map_err(|error| error::plain("export_failed", error.to_string()))?,
    };
    let folder = base.join(format!(
        "Kaunter export {}",
        (now + TimeDelta::hours(8)).format("%Y-%m-%d %H%M%S")
    ));
    let store = lock(&state)?;
    store
        .require(Permission::PatientsRead)
        .map_err(error::from_store)?;
    let clinical = store.require(Permission::ClinicalRead).is_ok();
    let files = store
        .export_csv(&folder, clinical)
        .map_err(error::from_store)?;
    Ok(kaunter_protocol::ipc::ExportView {
        folder: folder.display().to_string(),
        files: files
            .iter()
            .map(|file| kaunter_protocol::ipc::ExportedFileView {
                name: file
                    .path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                records: u32::try_from(file.records).unwrap_or(u32::MAX),
            })
            .collect(),
        clinical_included: clinical,
    })
}

/// The business's catalogue as this desk holds it: anyone who sells or books may read it.
#[tauri::command]
pub async fn list_catalogue(
    state: State<'_, DeskState>,
    include_inactive: bool,
) -> CommandResult<Vec<CatalogueItemRecord>> {
    let store = lock(&state)?;
    store
        .require(Permission::SalesRead)
        .or_else(|_| store.require(Permission::BookingsRead))
        .map_err(error::from_store)?;
    store.catalogue(include_inactive).map_err(error::from_store)
}

/// Adds an item to the catalogue, or changes one: only the fields that differ from the item as
/// this desk holds it are written, so another branch's edit of other fields is kept.
#[tauri::command]
pub async fn save_catalogue_item(
    state: State<'_, DeskState>,
    form: CatalogueItemForm,
) -> CommandResult<CatalogueItemRecord> {
    let now = Utc::now();
    let price = ringgit::from_typed(&form.price).ok_or_else(|| {
        error::invalid(vec![field(
            "price",
            "invalid",
            "Enter the price in ringgit, e.g. 45.00.",
        )])
    })?;
    let code = form.code.trim().to_owned();
    let name = form.name.split_whitespace().collect::<Vec<_>>().join(" ");
    let saved = {
        let mut store = lock(&state)?;
        store
            .require(Permission::CatalogueManage)
            .map_err(error::from_store)?;
        match form.id {
            None => {
                let item = NewCatalogueItem {
                    kind: form.kind,
                    code,
                    name,
                    price,
                    tax: form.tax,
                    duration_minutes: form.duration_minutes,
                    active: form.active,
                };
                store
                    .add_catalogue_item(&item, now)
                    .map_err(error::from_store)?
            }
            Some(id) => {
                let current = store
                    .catalogue_item(id)
                    .map_err(error::from_store)?
                    .ok_or_else(|| {
                        error::plain("not_found", "This item is no longer in the catalogue.")
                    })?;
                let wanted = CatalogueItemRecord {
                    id,
                    branch_id: current.branch_id,
                    kind: form.kind,
                    code,
                    name,
                    price,
                    tax: form.tax,
                    duration_minutes: form.duration_minutes,
                    active: form.active,
                };
                // What the person changed is measured against what the form showed: a field
                // another branch changed since then, and this person did not touch, keeps
                // that branch's value.
                let before = form
                    .opened
                    .as_ref()
                    .filter(|opened| opened.id == id)
                    .unwrap_or(&current)
                    .fields();
                let changed: Fields = wanted
                    .fields()
                    .into_iter()
                    .filter(|(name, value)| before.get(name) != Some(value))
                    .collect();
                if !changed.is_empty() {
                    store
                        .edit_row(Entity::CatalogueItem, id, changed, now)
                        .map_err(error::from_store)?;
                }
                // The item as it now stands here: this person's changes merged with the rest.
                store
                    .catalogue_item(id)
                    .map_err(error::from_store)?
                    .unwrap_or(wanted)
            }
        }
    };
    if let Some(engine) = state.engine() {
        engine.wake();
    }
    Ok(saved)
}

/// Reconnects a desk head office removed: the reconnect code head office issued for it gives
/// the same desk new credentials, and everything it kept (records and the changes waiting to be
/// sent) stays and syncs at the round this starts.
#[tauri::command]
pub async fn reenrol(state: State<'_, DeskState>, code: String) -> CommandResult<SyncStatusView> {
    let code = code.trim().to_owned();
    if code.is_empty() {
        return Err(error::invalid(vec![field(
            "code",
            "required",
            "Enter the enrolment code from your administrator.",
        )]));
    }
    let (identity, last_seq) = {
        let store = lock(&state)?;
        let identity = store
            .identity()
            .cloned()
            .ok_or_else(|| error::plain("not_enrolled", "This desk is not enrolled yet."))?;
        (
            identity,
            store.sync_state().map_err(error::from_store)?.last_seq,
        )
    };
    let enrolled = SyncClient::reenrol(
        &identity.server_url,
        &code,
        &identity.device_name,
        identity.device_id.as_uuid(),
        last_seq,
    )
    .await
    .map_err(error::from_enrol)?;
    let refresh_token = enrolled.refresh_token.as_deref().ok_or_else(|| {
        error::plain(
            "enrolment_failed",
            "The server gave no refresh token; update the sync server.",
        )
    })?;
    lock(&state)?
        .reenrol(&enrolled, &enrolled.device_token, refresh_token)
        .map_err(error::from_store)?;
    if let Some(engine) = state.engine() {
        engine.client().use_token(&enrolled.device_token);
        engine.wake();
    }
    status(&state)
}

/// A patient's clinical record, as far as the person at the desk may see it: the store decides
/// (closed to roles that do not read clinical records, unless opened in an emergency).
#[tauri::command]
pub async fn clinical_record(
    state: State<'_, DeskState>,
    patient_id: uuid::Uuid,
) -> CommandResult<ClinicalRecordView> {
    let store = lock(&state)?;
    store
        .clinical_record(patient_id, Utc::now())
        .map_err(error::from_store)
}

/// Writes a note or an allergy into a patient's clinical record (never changed afterwards: a
/// correction is another entry), and answers with the record as it now stands.
#[tauri::command]
pub async fn add_clinical_entry(
    state: State<'_, DeskState>,
    form: ClinicalEntryForm,
) -> CommandResult<ClinicalRecordView> {
    let now = Utc::now();
    let record = {
        let mut store = lock(&state)?;
        store
            .add_clinical_entry(form.patient_id, form.kind, &form.body, now)
            .map_err(error::from_store)?;
        store
            .clinical_record(form.patient_id, now)
            .map_err(error::from_store)?
    };
    if let Some(engine) = state.engine() {
        engine.wake();
    }
    Ok(record)
}

/// Opens a patient's clinical record to someone whose role does not read clinical records,
/// in an emergency: the reason is recorded in the record and reviewed by head office.
#[tauri::command]
pub async fn open_clinical_record_in_emergency(
    state: State<'_, DeskState>,
    form: EmergencyAccessForm,
) -> CommandResult<ClinicalRecordView> {
    let record = {
        let mut store = lock(&state)?;
        store
            .open_clinical_record_in_emergency(form.patient_id, &form.reason, Utc::now())
            .map_err(|error| match error {
                // The store checks the reason as the entry's body; the form calls it reason.
                kaunter_store::StoreError::InvalidRecord(mut errors) => {
                    for problem in &mut errors {
                        if problem.field == "body" {
                            problem.field = "reason".to_owned();
                        }
                    }
                    error::from_store(kaunter_store::StoreError::InvalidRecord(errors))
                }
                other => error::from_store(other),
            })?
    };
    if let Some(engine) = state.engine() {
        engine.wake();
    }
    Ok(record)
}
