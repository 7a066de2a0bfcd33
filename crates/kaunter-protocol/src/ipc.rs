//! Desktop IPC: what the window sends to the Tauri commands and what it gets back.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

use crate::{FieldError, IdType, Sex};

/// `app_info`: what the window needs to decide between first-run set-up and the desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AppInfo {
    pub enrolled: bool,
    pub business_name: Option<String>,
    pub branch_name: Option<String>,
    pub device_name: Option<String>,
    pub server_url: Option<String>,
}

/// A person who may sign in at this desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct StaffEntry {
    pub user_id: uuid::Uuid,
    pub name: String,
    pub roles: Vec<String>,
}

/// `desk_people`: whether this desk asks its people to sign in (once anyone of the business
/// has a desk PIN), who may, and who is signed in now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct DeskPeopleView {
    pub sign_in_required: bool,
    pub staff: Vec<StaffEntry>,
    pub signed_in: Option<StaffEntry>,
}

/// `sign_in`: a person and their six-digit desk PIN, checked on this desk (offline too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SignInForm {
    pub user_id: uuid::Uuid,
    pub pin: String,
}

/// `enrol`: first-run set-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct EnrolForm {
    pub server_url: String,
    pub code: String,
    pub device_name: String,
}

/// `register_patient`: the registration form as typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RegisterPatientForm {
    pub full_name: String,
    pub id_type: IdType,
    pub id_number: String,
    /// Any common Malaysian spelling: `012-345 6789`, `+60123456789`, `03-2345 6789`.
    pub phone: String,
    /// `YYYY-MM-DD`; ignored for MyKad (derived from the number), required otherwise.
    pub date_of_birth: Option<String>,
    /// Ignored for MyKad (derived from the number).
    pub sex: Option<Sex>,
}

/// A patient as the desk shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct PatientView {
    pub id: Uuid,
    pub full_name: String,
    pub id_type: IdType,
    /// Display form, e.g. `900101-14-5678` for MyKad.
    pub id_number: String,
    /// E.164.
    pub phone: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub sex: Option<Sex>,
    pub created_at: DateTime<Utc>,
    /// False while the registration waits in the outbox.
    pub synced: bool,
}

/// `refused_changes`: a change of this desk the server refused, with its reason. It stays in the
/// desk's outbox (out of later pushes) so nothing typed is lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RefusedChangeView {
    /// The outbox seq (a JSON number: far below 2^53).
    #[ts(type = "number")]
    pub seq: i64,
    pub entity: String,
    pub row_id: uuid::Uuid,
    /// The fields the change set, by name.
    pub fields: Vec<String>,
    pub code: String,
    pub message: String,
    pub recorded_at: DateTime<Utc>,
}

/// `sync_status`: always visible in the desk's status bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SyncStatusView {
    /// Whether the last attempt to reach the server succeeded.
    pub online: bool,
    pub syncing: bool,
    /// Outbox entries not yet acknowledged by the server.
    pub pending: u32,
    /// Changes the server refused; they stay on this desk with the reason.
    pub rejected: u32,
    /// Conflicts of this branch waiting for a person (e.g. one MyKad registered twice).
    pub open_conflicts: u32,
    /// When the oldest change still waiting for the server was made.
    pub oldest_pending_at: Option<DateTime<Utc>>,
    /// While a round pulls: changes applied so far and how many it is pulling (0 and 0 when
    /// idle), so a first sync of a large branch can show its progress.
    pub pull_done: u32,
    pub pull_total: u32,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The server no longer takes this desk's credentials (head office removed it): the desk
    /// keeps working offline and is reconnected with a new enrolment code (`reenrol`).
    pub needs_reenrolment: bool,
    /// What the desk's licence lease allows now: FULL, READ_ONLY (the subscription ended: read
    /// and export only) or SUSPENDED (no sync either). Nothing is ever hidden or deleted.
    pub licence_access: String,
    /// The business's plan, as the lease says (none before the first lease).
    pub licence_plan: Option<String>,
    /// When full access ends, and when read-only access ends, as the lease says.
    pub licence_full_until: Option<DateTime<Utc>>,
    pub licence_read_only_until: Option<DateTime<Utc>>,
    /// The modules the business has switched on (the desk shows only these).
    pub licence_modules: Vec<String>,
}

/// Every command error: a stable code, a sentence, and field errors for forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct CommandError {
    pub code: String,
    pub message: String,
    pub fields: Vec<FieldError>,
}

/// `save_catalogue_item`: a catalogue item as typed at the desk. No `id`: a new item; with one,
/// only the fields the person changed travel (those that differ from `opened`, the item as the
/// form showed it), so another branch's edit of other fields, even one that arrived while the
/// form was open, survives the merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct CatalogueItemForm {
    #[serde(default)]
    pub id: Option<Uuid>,
    pub kind: crate::records::CatalogueKind,
    pub code: String,
    pub name: String,
    /// Ringgit as typed: `45`, `45.5`, `45.50`, `RM 45.50`.
    pub price: String,
    pub tax: crate::records::TaxCode,
    #[serde(default)]
    pub duration_minutes: Option<u32>,
    pub active: bool,
    /// The item as the form showed it when it opened (edits only).
    #[serde(default)]
    pub opened: Option<crate::records::CatalogueItemRecord>,
}

/// How the person at the desk may see a patient's clinical record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ClinicalAccess {
    /// Their role reads clinical records (or nobody signs in at this desk).
    Clinical,
    /// They opened this patient's record in an emergency; it closes again at `access_until`.
    Emergency,
    /// Entries are not shown to them.
    Closed,
}

/// One entry of a clinical record as the desk shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ClinicalEntryView {
    pub id: Uuid,
    pub kind: crate::records::ClinicalKind,
    pub body: String,
    /// Who wrote it, by the name on this desk's roster (none when unknown or unsigned).
    pub author_name: Option<String>,
    pub written_at: DateTime<Utc>,
    /// False while the entry waits in the outbox.
    pub synced: bool,
}

/// `clinical_record`: a patient's clinical record, as far as the person at the desk may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ClinicalRecordView {
    pub patient_id: Uuid,
    pub access: ClinicalAccess,
    pub access_until: Option<DateTime<Utc>>,
    /// Whether they may add notes and allergies.
    pub may_write: bool,
    /// Whether they may open the record in an emergency (when it is closed to them).
    pub may_open_in_emergency: bool,
    /// Newest first; empty when the record is closed to them.
    pub entries: Vec<ClinicalEntryView>,
}

/// `add_clinical_entry`: a note or an allergy for a patient's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ClinicalEntryForm {
    pub patient_id: Uuid,
    pub kind: crate::records::ClinicalKind,
    pub body: String,
}

/// `open_clinical_record_in_emergency`: the patient, and why their record is needed now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct EmergencyAccessForm {
    pub patient_id: Uuid,
    pub reason: String,
}

/// One file an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ExportedFileView {
    pub name: String,
    /// Records in it.
    pub records: u32,
}

/// `export_data`: where the desk wrote its CSV files (decrypted: the folder holds personal data
/// in the clear, so it says so to the person).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ExportView {
    pub folder: String,
    pub files: Vec<ExportedFileView>,
    /// Whether clinical records were included (only for people whose role reads them).
    pub clinical_included: bool,
}
