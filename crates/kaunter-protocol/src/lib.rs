//! The wire format between desk and server (HTTP) and between the desktop window and its Rust
//! shell (Tauri IPC), declared once. Both sides and the TypeScript front-end use these types;
//! `ui/src/wire.ts` is generated from them by a test in this crate and committed.
//!
//! Compatibility rule: a field may be added (with `#[serde(default)]`), never renamed or
//! repurposed within one [`SCHEMA_VERSION`]. The server accepts the versions listed in
//! [`ACCEPTED_SCHEMA_VERSIONS`].

pub mod http;
pub mod ipc;
pub mod merge;
pub mod records;

/// The client schema version this build speaks.
/// Version 3 added appointments and the cash ledger; version 4 the tenant-wide catalogue;
/// version 5 patients' clinical records.
pub const SCHEMA_VERSION: u32 = 5;

/// Client schema versions the server accepts: the current one, the previous one (4: no
/// clinical records) and those before it (3: no catalogue; 2: patients only). An older desk is sent only the entities it
/// knows, and no checkpoint, since its rows are not all the desk would hold. Version 1
/// (whole-record upserts ordered by the desk's wall clock) was never released to a business.
pub const ACCEPTED_SCHEMA_VERSIONS: &[u32] = &[SCHEMA_VERSION, 4, 3, 2];

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// How a person is identified. MyKad numbers are validated; the others are free-form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdType {
    Mykad,
    Passport,
    ArmyPolice,
    OldIc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

/// One field-level validation failure, in a form the UI can place next to the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct FieldError {
    /// The form field's name, e.g. `id_number`.
    pub field: String,
    /// A stable machine code, e.g. `mykad_bad_place_of_birth`.
    pub code: String,
    /// A sentence for the person at the desk.
    pub message: String,
}

/// Every `.ts` declaration this crate exports, in a stable order.
pub fn typescript_declarations() -> String {
    use ts_rs::TS as _;
    let declarations = [
        IdType::decl(),
        Sex::decl(),
        FieldError::decl(),
        http::PatientRecord::decl(),
        http::Entity::decl(),
        records::AppointmentStatus::decl(),
        records::AppointmentRecord::decl(),
        records::CashKind::decl(),
        records::CashMovementRecord::decl(),
        records::CatalogueKind::decl(),
        records::TaxCode::decl(),
        records::CatalogueItemRecord::decl(),
        records::ClinicalKind::decl(),
        records::ClinicalEntryRecord::decl(),
        http::PullScope::decl(),
        http::WireStamp::decl(),
        http::Change::decl(),
        http::OutboxEntry::decl(),
        http::PushRequest::decl(),
        http::RejectedEntry::decl(),
        http::PushResponse::decl(),
        http::PulledChange::decl(),
        http::Checkpoint::decl(),
        http::PullResponse::decl(),
        http::ConflictKind::decl(),
        http::Resolution::decl(),
        http::ConflictView::decl(),
        http::ConflictsResponse::decl(),
        http::ResolveConflictRequest::decl(),
        http::DeskStatusReport::decl(),
        http::SignUpRequest::decl(),
        http::SignUpResponse::decl(),
        http::LoginRequest::decl(),
        http::SessionView::decl(),
        http::RevokeDeviceRequest::decl(),
        http::EnrolRequest::decl(),
        http::EnrolResponse::decl(),
        http::ErrorBody::decl(),
        http::Licence::decl(),
        http::SignedLicence::decl(),
        ipc::AppInfo::decl(),
        ipc::EnrolForm::decl(),
        ipc::RegisterPatientForm::decl(),
        ipc::PatientView::decl(),
        ipc::RefusedChangeView::decl(),
        ipc::SyncStatusView::decl(),
        ipc::CommandError::decl(),
        ipc::StaffEntry::decl(),
        ipc::DeskPeopleView::decl(),
        ipc::SignInForm::decl(),
        ipc::CatalogueItemForm::decl(),
        ipc::ClinicalAccess::decl(),
        ipc::ClinicalEntryView::decl(),
        ipc::ClinicalRecordView::decl(),
        ipc::ClinicalEntryForm::decl(),
        ipc::EmergencyAccessForm::decl(),
        ipc::ExportedFileView::decl(),
        ipc::ExportView::decl(),
    ];
    let mut out = String::from(
        "// Generated from crates/kaunter-protocol by `KAUNTER_BLESS=1 cargo test -p kaunter-protocol`.\n// Do not edit by hand: the test fails when this file and the Rust types disagree.\n\n",
    );
    for declaration in declarations {
        out.push_str("export ");
        out.push_str(&declaration);
        out.push_str("\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}
