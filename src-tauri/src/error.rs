//! Command errors, translated once from the libraries' errors into the IPC shape the window
//! shows: a stable code, a sentence, and per-field errors for forms.

use kaunter_protocol::FieldError;
use kaunter_protocol::http::error_code;
use kaunter_protocol::ipc::CommandError;
use kaunter_store::StoreError;
use kaunter_sync_client::SyncError;

pub fn field(field: &str, code: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        code: code.to_owned(),
        message: message.into(),
    }
}

pub fn invalid(fields: Vec<FieldError>) -> CommandError {
    CommandError {
        code: "validation_failed".into(),
        message: "Some fields need attention.".into(),
        fields,
    }
}

pub fn plain(code: &str, message: impl Into<String>) -> CommandError {
    CommandError {
        code: code.to_owned(),
        message: message.into(),
        fields: Vec::new(),
    }
}

pub fn from_store(error: StoreError) -> CommandError {
    let code = match &error {
        StoreError::KeyMissing => "key_missing",
        StoreError::WrongKey => "wrong_key",
        StoreError::Keyring(_) => "keyring_unavailable",
        StoreError::DeviceTokenMissing => "device_token_missing",
        StoreError::NotEnrolled => "not_enrolled",
        StoreError::AlreadyEnrolled => "already_enrolled",
        StoreError::NotThisDesk => "not_this_desk",
        StoreError::Tampered { .. } => "data_tampered",
        StoreError::Invalid(errors) => {
            return invalid(
                errors
                    .iter()
                    .map(|e| field(e.field.name(), e.code, e.message.clone()))
                    .collect(),
            );
        }
        StoreError::InvalidRecord(errors) => {
            return invalid(
                errors
                    .iter()
                    .map(|e| field(&e.field, &e.code, e.message.clone()))
                    .collect(),
            );
        }
        StoreError::LedgerImmutable => "ledger_entry_immutable",
        StoreError::OtherBranch => "row_in_other_branch",
        StoreError::SubscriptionReadOnly => "subscription_read_only",
        StoreError::SubscriptionSuspended => "subscription_suspended",
        StoreError::LicenceRejected(_) => "licence_rejected",
        StoreError::Export(_) => "export_failed",
        StoreError::NotFound(_) => "not_found",
        StoreError::SignInRequired => "sign_in_required",
        StoreError::WrongPin => "wrong_pin",
        StoreError::PinLocked(_) => "pin_locked",
        StoreError::NotAllowed(_) => "forbidden",
        StoreError::ApprovalRequired => "approval_required",
        StoreError::UnknownField(_) => "unknown_field",
        StoreError::Sqlite(_) | StoreError::Corrupt(_) => "store_failed",
        StoreError::MigrationChanged { .. } | StoreError::TooNew { .. } => "store_incompatible",
    };
    tracing::error!(%error, code, "store error");
    plain(code, error.to_string())
}

/// Enrolment errors point at the form field the person should fix.
pub fn from_enrol(error: SyncError) -> CommandError {
    match error {
        SyncError::BadServerUrl(_) | SyncError::Offline(_) | SyncError::Protocol(_) => {
            let message = error.to_string();
            invalid(vec![field("server_url", "server_unreachable", message)])
        }
        SyncError::Refused { code, message, .. }
            if code == error_code::ENROLMENT_CODE_INVALID
                || code == error_code::DEVICE_NOT_REPLACEABLE =>
        {
            invalid(vec![field("code", &code, message)])
        }
        SyncError::Store(store) => from_store(store),
        other => plain("enrolment_failed", other.to_string()),
    }
}

/// A call to the server a person made (conflicts): offline says so, refusals keep their code.
pub fn from_sync(error: SyncError) -> CommandError {
    match error {
        SyncError::Offline(_) => plain("offline", error.to_string()),
        SyncError::Refused { code, message, .. } => plain(&code, message),
        SyncError::Unauthorized => plain("unauthorized", error.to_string()),
        SyncError::Store(store) => from_store(store),
        other => plain("sync_failed", other.to_string()),
    }
}
