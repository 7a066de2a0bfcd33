//! Sync API bodies: enrolment, push, pull and the error shape.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

use crate::{IdType, Sex};

/// A patient as it travels between desk and server: plaintext over TLS; each side stores it
/// its own way (the desk encrypts, the server keeps it under row-level security).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct PatientRecord {
    pub id: Uuid,
    pub branch_id: Uuid,
    pub full_name: String,
    pub id_type: IdType,
    /// Normalised: digits only for MyKad, upper-case without spaces otherwise.
    pub id_number: String,
    /// E.164, e.g. `+60123456789`.
    pub phone: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub sex: Option<Sex>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a change does. One variant per entity and operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "kind", content = "record", rename_all = "snake_case")]
pub enum ChangeBody {
    PatientUpsert(PatientRecord),
}

impl ChangeBody {
    /// The id of the row this change touches.
    pub fn row_id(&self) -> Uuid {
        match self {
            ChangeBody::PatientUpsert(patient) => patient.id,
        }
    }
}

/// A change made on one desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// When the desk recorded it (the desk's clock; informative only).
    pub recorded_at: DateTime<Utc>,
    pub body: ChangeBody,
}

/// One outbox entry: numbered per device, 1, 2, 3, ... without gaps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct OutboxEntry {
    pub seq: i64,
    pub change: Change,
}

/// `POST /v1/sync/push`. The device is named by its token, never by the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub schema_version: u32,
    /// Consecutive sequence numbers. Entries at or below the device's high-water mark are
    /// replays and change nothing; the first new entry must be exactly high-water + 1.
    pub entries: Vec<OutboxEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct PushResponse {
    /// The device's high-water mark after this push, committed: every entry up to it is stored.
    pub acked_seq: i64,
}

/// One change as the server hands it out, numbered by the tenant's change sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct PulledChange {
    /// The tenant-wide sequence number of this change; pull again with it as the cursor.
    pub cursor: i64,
    pub origin_device_id: Uuid,
    pub change: Change,
}

/// `GET /v1/sync/pull?cursor=N&limit=M`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct PullResponse {
    pub changes: Vec<PulledChange>,
    /// The cursor to send next time: the last change's cursor, or the request's when empty.
    pub next_cursor: i64,
    pub has_more: bool,
}

/// `POST /v1/enrol`: exchange a single-use enrolment code for device credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    pub code: String,
    pub device_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct EnrolResponse {
    pub tenant_id: Uuid,
    pub branch_id: Uuid,
    pub device_id: Uuid,
    /// Bearer token for every later call. Shown once; the desk keeps it in the OS keyring.
    pub device_token: String,
    pub business_name: String,
    pub branch_name: String,
}

/// Every error response of the HTTP API has this body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ErrorBody {
    /// Stable machine code, e.g. `sequence_gap`, `unauthorized`, `validation_failed`.
    pub code: String,
    /// A sentence for a person; never internal detail.
    pub message: String,
    /// For `sequence_gap`: the sequence number the server expects next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_seq: Option<i64>,
    /// For `validation_failed`: which fields of which entry failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<crate::FieldError>,
}

/// Stable error codes of the HTTP API.
pub mod error_code {
    pub const BAD_REQUEST: &str = "bad_request";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const NOT_FOUND: &str = "not_found";
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    pub const SEQUENCE_GAP: &str = "sequence_gap";
    pub const UNSUPPORTED_SCHEMA_VERSION: &str = "unsupported_schema_version";
    pub const VALIDATION_FAILED: &str = "validation_failed";
    pub const ENROLMENT_CODE_INVALID: &str = "enrolment_code_invalid";
    pub const INTERNAL: &str = "internal";
}
