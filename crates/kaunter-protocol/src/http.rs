//! Sync API bodies: enrolment, push, pull and the error shape.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

use crate::{IdType, Sex};

/// A patient's replicated fields as one typed value: what the desk registers and shows and what
/// the server validates. On the wire a patient travels as [`Change`]s of some of these fields
/// (see [`PatientRecord::fields`]); each side merges them per field (kaunter-core's LWW record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientRecord {
    pub id: Uuid,
    pub branch_id: Uuid,
    pub full_name: String,
    pub id_type: IdType,
    /// Normalised: digits only for MyKad, upper-case without spaces otherwise.
    pub id_number: String,
    /// E.164, e.g. `+60123456789`.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub date_of_birth: Option<NaiveDate>,
    #[serde(default)]
    pub sex: Option<Sex>,
}

/// The replicated fields of a patient, by their wire names.
pub const PATIENT_FIELDS: &[&str] = &[
    "full_name",
    "id_type",
    "id_number",
    "phone",
    "date_of_birth",
    "sex",
];

/// The field whose value `true` marks a row deleted (a tombstone); the same for every entity.
pub const DELETED_FIELD: &str = "deleted";

impl PatientRecord {
    /// Every replicated field and its value, as a registration writes them.
    pub fn fields(&self) -> Fields {
        let mut fields = Fields::new();
        let mut put = |name: &str, value: serde_json::Value| {
            fields.insert(name.to_owned(), value);
        };
        put("full_name", self.full_name.clone().into());
        put("id_type", json(&self.id_type));
        put("id_number", self.id_number.clone().into());
        put("phone", json(&self.phone));
        put("date_of_birth", json(&self.date_of_birth));
        put("sex", json(&self.sex));
        fields
    }

    /// The patient a merged field map describes, or why it does not describe one (a field
    /// missing or of the wrong type). Fields other than [`PATIENT_FIELDS`] are ignored.
    pub fn from_fields(
        id: Uuid,
        branch_id: Uuid,
        fields: &Fields,
    ) -> Result<PatientRecord, String> {
        crate::records::decode(id, branch_id, PATIENT_FIELDS, fields)
    }
}

fn json(value: &impl Serialize) -> serde_json::Value {
    // Serialising these plain types (strings, enums, dates, uuids, options) cannot fail.
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Field name -> value, the unit of a change and of a merged row.
pub type Fields = BTreeMap<String, serde_json::Value>;

/// Field name -> the stamp of the write that set it: kept beside a merged row.
pub type Stamps = BTreeMap<String, WireStamp>;

/// Which kind of row a change is about.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, TS, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Patient,
    Appointment,
    /// An entry of a branch's cash ledger: append-only.
    CashMovement,
    /// A product or service the business sells: tenant-wide, so every branch's desks hold the
    /// same catalogue and any of them may change it.
    CatalogueItem,
    /// An entry of a patient's clinical record (a note, an allergy, or an emergency opening of
    /// the record by someone outside the clinical roles): append-only, like a ledger.
    ClinicalEntry,
}

impl Entity {
    pub const ALL: [Entity; 5] = [
        Entity::Patient,
        Entity::Appointment,
        Entity::CashMovement,
        Entity::CatalogueItem,
        Entity::ClinicalEntry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Patient => "patient",
            Entity::Appointment => "appointment",
            Entity::CashMovement => "cash_movement",
            Entity::CatalogueItem => "catalogue_item",
            Entity::ClinicalEntry => "clinical_entry",
        }
    }

    pub fn parse(text: &str) -> Option<Entity> {
        Entity::ALL
            .into_iter()
            .find(|entity| entity.as_str() == text)
    }

    /// The replicated fields of this entity (besides [`DELETED_FIELD`]).
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Entity::Patient => PATIENT_FIELDS,
            Entity::Appointment => crate::records::APPOINTMENT_FIELDS,
            Entity::CashMovement => crate::records::CASH_MOVEMENT_FIELDS,
            Entity::CatalogueItem => crate::records::CATALOGUE_ITEM_FIELDS,
            Entity::ClinicalEntry => crate::records::CLINICAL_ENTRY_FIELDS,
        }
    }

    /// The first client schema version that knows this entity: an older desk neither sends
    /// it nor is sent it.
    pub fn since_schema_version(self) -> u32 {
        match self {
            Entity::Patient => 2,
            Entity::Appointment | Entity::CashMovement => 3,
            Entity::CatalogueItem => 4,
            Entity::ClinicalEntry => 5,
        }
    }

    /// Tenant-wide: one set of rows for the whole business, sent to every desk of every branch
    /// and changeable from any of them. A row's `branch_id` then only says where it was made.
    pub fn is_tenant_wide(self) -> bool {
        matches!(self, Entity::CatalogueItem)
    }

    /// Append-only: a row is written once, never changed or deleted (see
    /// `kaunter_core::ledger`).
    pub fn is_ledger(self) -> bool {
        matches!(self, Entity::CashMovement | Entity::ClinicalEntry)
    }
}

/// When and where a write happened: a hybrid logical timestamp (kaunter-core's `Hlc`, packed)
/// and the device that made it. Unique per write; the greater stamp wins a field.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, TS, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct WireStamp {
    #[ts(type = "string")]
    #[schemars(with = "String")]
    #[serde(with = "u64_as_string")]
    pub hlc: u64,
    pub device_id: Uuid,
}

/// u64 as a decimal string, so JavaScript (53-bit numbers) reads it exactly.
mod u64_as_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One write made on one desk: some fields of one row, all at one stamp. `{"deleted": true}`
/// deletes the row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub entity: Entity,
    pub row_id: Uuid,
    pub branch_id: Uuid,
    pub stamp: WireStamp,
    #[ts(type = "Record<string, unknown>")]
    pub fields: Fields,
    /// When the desk recorded it, by the desk's wall clock: informative only, never used to
    /// order anything.
    pub recorded_at: DateTime<Utc>,
}

/// One outbox entry: numbered per device, 1, 2, 3, ... without gaps, and marked with the client
/// schema version it was written under (an outbox can outlive an upgrade of the desk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutboxEntry {
    pub seq: i64,
    pub schema_version: u32,
    pub change: Change,
    /// The person signed in at the desk when it was written (a user of the business), if the
    /// desk asks its staff to sign in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Uuid>,
    /// Who approved it at the desk with their own PIN, when the person signed in may not do it
    /// alone (a STAFF member's refund, approved by a manager).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<Uuid>,
}

/// `POST /v1/sync/push`. The device is named by its token, never by the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub schema_version: u32,
    /// Consecutive sequence numbers. Entries at or below the device's high-water mark are
    /// replays and change nothing; the first new entry must be exactly high-water + 1.
    pub entries: Vec<OutboxEntry>,
}

/// An entry the server processed but did not apply, and why. It still counts as handled: it is
/// covered by `acked_seq`, so it never blocks the entries after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct RejectedEntry {
    pub seq: i64,
    /// Stable code, e.g. `validation_failed`, `row_in_other_branch`, `clock_ahead`.
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<crate::FieldError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct PushResponse {
    /// The device's high-water mark after this push, committed: every entry up to it is handled.
    pub acked_seq: i64,
    /// The entries of this batch (replayed ones included) that were refused.
    #[serde(default)]
    pub rejected: Vec<RejectedEntry>,
}

/// A row as the server hands it out: the row's winning field writes, one change per distinct
/// stamp (usually one), each numbered with the row's last change seq. Merging them gives the
/// row as the server has it, whatever the desk held before. The changes of one row are never
/// split across pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct PulledChange {
    /// The tenant-wide sequence number of the row's last change; pull again with it as the
    /// cursor.
    pub cursor: i64,
    pub change: Change,
    /// On the first change of a row: when the row was first written, for a desk that does not
    /// have it yet. Sent to desks of schema 3 and later only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

/// `GET /v1/sync/pull?cursor=N&limit=M[&count=true]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct PullResponse {
    pub changes: Vec<PulledChange>,
    /// The cursor to send next time: the last change's cursor, or the request's when empty.
    pub next_cursor: i64,
    pub has_more: bool,
    /// Conflicts of this device's branch waiting for a person (see `GET /v1/conflicts`).
    #[serde(default)]
    pub open_conflicts: u32,
    /// When asked for (`count=true`): how many rows of the branch changed after the cursor,
    /// this page's included, for a progress bar.
    #[serde(default)]
    pub remaining: Option<i64>,
    /// On the last page: the branch's state as of `next_cursor`, for the desk to compare with
    /// its own once it has nothing waiting to push.
    #[serde(default)]
    pub checkpoint: Option<Checkpoint>,
    /// The business's tombstone horizon: deleted rows whose last change is at or below it are
    /// gone from the server for good. A desk holding such a tombstone drops it on the last page
    /// of a pull; a desk whose cursor is below it must resync from 0 (`resync_required`).
    /// Sent to desks of schema 3 and later only (older desks reject fields they do not know).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purged_seq: Option<i64>,
}

impl PullResponse {
    /// How many rows the page holds (a row's changes are adjacent and share its cursor).
    pub fn row_count(&self) -> usize {
        let mut rows = 0;
        let mut last = None;
        for pulled in &self.changes {
            if last != Some(pulled.cursor) {
                rows += 1;
                last = Some(pulled.cursor);
            }
        }
        rows
    }
}

/// The digest of a branch's rows after every change up to `cursor` (see
/// `kaunter_protocol::merge::row_digest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct Checkpoint {
    pub cursor: i64,
    /// 16 hex digits.
    pub digest: String,
}

/// Which domain rule a conflict breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// Two live patients with the same identity document (e.g. registered offline on two
    /// desks). `row_a` is the earlier registration.
    DuplicateIdNumber,
    /// Two bookings of one practitioner that overlap (e.g. made offline on two desks).
    /// `row_a` is the earlier booking.
    AppointmentOverlap,
}

/// How a person settled a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Both rows are right (two people, or deliberately two records): leave them.
    KeepBoth,
    /// Keep `row_a`; `row_b` is deleted.
    KeepA,
    /// Keep `row_b`; `row_a` is deleted.
    KeepB,
    /// Fill what `row_a` lacks from `row_b`, then delete `row_b` (duplicate patients only).
    MergeIntoA,
}

/// A conflict as the server keeps it: both versions as they were when it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct ConflictView {
    pub conflict_id: Uuid,
    pub kind: ConflictKind,
    pub entity: Entity,
    pub row_a: Uuid,
    pub row_b: Uuid,
    #[ts(type = "Record<string, unknown>")]
    pub version_a: Fields,
    #[ts(type = "Record<string, unknown>")]
    pub version_b: Fields,
    pub detected_at: DateTime<Utc>,
    pub detected_by: Uuid,
    pub resolution: Option<Resolution>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<Uuid>,
}

/// `GET /v1/conflicts?state=open|all`: the conflicts of the device's branch, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct ConflictsResponse {
    pub conflicts: Vec<ConflictView>,
}

/// `POST /v1/conflicts/resolve`. Resolving again with the same resolution is a no-op with the
/// same answer; with another one it is refused (`conflict_already_resolved`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveConflictRequest {
    pub conflict_id: Uuid,
    pub resolution: Resolution,
}

/// `POST /v1/sync/status`: what a desk says of its own sync state after a round, so head office
/// sees every branch's backlog and trouble. Times are the desk's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeskStatusReport {
    /// Outbox entries not yet acknowledged.
    pub pending: u32,
    /// Entries the server refused, kept on the desk for a person.
    pub refused: u32,
    pub oldest_pending_at: Option<DateTime<Utc>>,
    pub last_synced_at: Option<DateTime<Utc>>,
    /// The last round's error, if it failed (at most 500 characters).
    pub last_error: Option<String>,
    pub schema_version: u32,
    /// The desk app's version, e.g. `0.3.0`.
    pub app_version: String,
}

/// `POST /v1/signup`: a new business, its first branch, default roles, settings, a 7-day trial
/// and its first user (ADMIN), made in one transaction. Refusals name each field
/// (`validation_failed`), including a slug or name another business has (`slug_taken`,
/// `name_taken`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    pub business_name: String,
    /// 3-63 lowercase letters, digits and hyphens: the business's address.
    pub slug: String,
    /// RETAIL, HEALTHCARE, EDUCATION, LOGISTICS or BEAUTY.
    pub industry: String,
    pub email: String,
    /// A Malaysian number, as typed.
    pub phone: String,
    pub address_line1: String,
    #[serde(default)]
    pub address_line2: String,
    pub postcode: String,
    pub city: String,
    /// A state or federal territory, e.g. `Selangor`, `W.P. Kuala Lumpur`.
    pub state: String,
    pub branch_name: String,
    pub admin_name: String,
    pub admin_email: String,
    pub admin_password: String,
    /// `ms` (the default) or `en`.
    #[serde(default)]
    pub language: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct SignUpResponse {
    pub tenant_id: Uuid,
    pub branch_id: Uuid,
    pub user_id: Uuid,
    pub slug: String,
    /// Full access until then.
    pub trial_ends_at: DateTime<Utc>,
}

/// `POST /v1/auth/login`: a person logs in to head office. The answer sets the session cookie
/// (`kaunter_session`, HttpOnly, Secure, SameSite=Strict) and carries the session's CSRF token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The business's slug.
    pub business: String,
    pub email: String,
    pub password: String,
    /// The six digits of the person's authenticator app, for a person who has set one up
    /// (without it such a login is answered `totp_required`).
    #[serde(default)]
    pub totp_code: Option<String>,
}

/// Who a head-office session is: `POST /v1/auth/login` and `GET /v1/auth/session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct SessionView {
    pub tenant_id: Uuid,
    pub business_name: String,
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    /// Role names, sorted.
    pub roles: Vec<String>,
    /// What the roles allow together (`area.action`), sorted.
    pub permissions: Vec<String>,
    /// To send as `X-CSRF-Token` with every request that changes something.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
    /// Whether this person logs in with a second factor (TOTP).
    pub totp_enabled: bool,
    /// The business requires its ADMINs to use a second factor and this one has none yet: until
    /// they set it up (`/v1/auth/totp/setup`, then `/confirm`), every other request is refused
    /// with `totp_setup_required`.
    pub totp_setup_required: bool,
}

/// `POST /v1/devices/revoke` (head office, `devices.manage`): the desk's token stops working
/// at once; the desk keeps its data and outbox and asks to be enrolled again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeDeviceRequest {
    pub device_id: Uuid,
}

/// A branch as head office sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct BranchView {
    pub branch_id: Uuid,
    pub name: String,
    /// Short code printed in document numbers, e.g. `KL01`.
    pub code: Option<String>,
    pub created_at: DateTime<Utc>,
    /// A closed branch keeps its data; it gets no new desks.
    pub closed_at: Option<DateTime<Utc>>,
    /// Desks enrolled there and not revoked.
    pub active_devices: u32,
}

/// `GET /v1/branches`: every branch of the business, open ones first, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct BranchesResponse {
    pub branches: Vec<BranchView>,
}

/// `POST /v1/branches/add` (`branches.manage`): a new branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBranchRequest {
    pub name: String,
    /// 1-16 letters or digits, stored upper-case; unique within the business.
    #[serde(default)]
    pub code: Option<String>,
}

/// `POST /v1/branches/rename` (`branches.manage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameBranchRequest {
    pub branch_id: Uuid,
    pub name: String,
}

/// `POST /v1/branches/close` (`branches.manage`): the branch keeps all its data; no new desk
/// can be enrolled there and its unused enrolment codes stop working. Its desks keep syncing
/// (nothing waiting on them is stranded) until head office revokes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseBranchRequest {
    pub branch_id: Uuid,
}

/// `POST /v1/devices/enrolment-codes` (`devices.manage`): a single-use code a new desk of the
/// branch trades for its credentials (`POST /v1/enrol`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentCodeRequest {
    pub branch_id: Uuid,
    /// How long the code works: 1 hour to 30 days; 7 days when absent.
    #[serde(default)]
    pub valid_hours: Option<u32>,
    /// What the enrolled desk will be sent; `branch` when absent. `business` needs the
    /// `branches.manage` permission besides `devices.manage`.
    #[serde(default)]
    pub scope: Option<PullScope>,
    /// A reconnect code for this removed (revoked) desk of the branch: only that desk can use
    /// it, to take its place again with its data and outbox; it keeps the scope it had.
    #[serde(default)]
    pub replaces_device: Option<Uuid>,
}

/// Which branches' rows a device pulls. Tenant-wide rows (the catalogue) go to every device,
/// and a device writes only its own branch's rows whatever its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PullScope {
    /// Its own branch's rows.
    Branch,
    /// Every branch's rows: head office, an owner's laptop, a practitioner of several branches.
    Business,
}

impl PullScope {
    pub fn as_str(self) -> &'static str {
        match self {
            PullScope::Branch => "branch",
            PullScope::Business => "business",
        }
    }

    pub fn parse(text: &str) -> Option<PullScope> {
        [PullScope::Branch, PullScope::Business]
            .into_iter()
            .find(|scope| scope.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct EnrolmentCodeResponse {
    /// `XXXX-XXXX-XXXX`: shown once, only its hash is kept.
    pub code: String,
    pub branch_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub scope: PullScope,
}

/// Where a person stands in their business (kaunter-core's `UserStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatus {
    Pending,
    Active,
    Inactive,
    Disabled,
}

/// A role as a person holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct RoleRef {
    pub role_id: Uuid,
    pub name: String,
}

/// A person of the business as head office sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct UserView {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    pub status: UserStatus,
    /// By name.
    pub roles: Vec<RoleRef>,
    pub totp_enabled: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// While an invitation waits (PENDING): when it stops working.
    pub invitation_expires_at: Option<DateTime<Utc>>,
}

/// `GET /v1/users` (`users.manage`): every person of the business, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct UsersResponse {
    pub users: Vec<UserView>,
}

/// A role of the business with what it allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct RoleView {
    pub role_id: Uuid,
    pub name: String,
    /// Made at sign-up.
    pub built_in: bool,
    /// `area.action`, sorted.
    pub permissions: Vec<String>,
}

/// `GET /v1/roles` (`users.manage`): the roles a person can be given, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct RolesResponse {
    pub roles: Vec<RoleView>,
}

/// `POST /v1/users/invite` (`users.manage`): a new person, PENDING until they accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteUserRequest {
    pub name: String,
    /// Unique within the business (without regard to case).
    pub email: String,
    /// At least one role of this business.
    pub role_ids: Vec<Uuid>,
}

/// An invitation: the token is shown once (only its hash is kept) and goes to the invited
/// person, who sends it back with their chosen password (`POST /v1/invitations/accept`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct InvitationResponse {
    pub user: UserView,
    pub invitation_token: String,
    pub expires_at: DateTime<Utc>,
}

/// `POST /v1/users/reinvite` (`users.manage`): a new invitation for a PENDING person; the
/// earlier one stops working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReinviteUserRequest {
    pub user_id: Uuid,
}

/// `POST /v1/invitations/accept`: the invited person chooses a password and becomes ACTIVE.
/// An unknown, used or expired token gets one answer (`invitation_invalid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    pub token: String,
    pub password: String,
}

/// `POST /v1/users/status` (`users.manage`). Not one's own; never the last active ADMIN. A
/// person who is no longer ACTIVE loses every session at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetUserStatusRequest {
    pub user_id: Uuid,
    pub status: UserStatus,
}

/// `POST /v1/users/roles` (`users.manage`): replaces the person's roles (at least one). The
/// business always keeps an active ADMIN. The person's sessions end (their privileges
/// changed); when it is the caller, the answer carries a new session cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetUserRolesRequest {
    pub user_id: Uuid,
    pub role_ids: Vec<Uuid>,
}

/// `POST /v1/users/totp-reset` (`users.manage`): removes another person's second factor (a
/// lost phone); their sessions end and they set one up again at their next login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetUserTotpRequest {
    pub user_id: Uuid,
}

/// `POST /v1/auth/totp/setup`: a new TOTP secret for the session's person, live once a code
/// from it is confirmed. Shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct TotpSetupResponse {
    /// Base32 (RFC 4648, no padding), for typing into an authenticator app.
    pub secret: String,
    /// `otpauth://totp/...`, for a QR code.
    pub otpauth_uri: String,
}

/// `POST /v1/auth/totp/confirm` and `/v1/auth/totp/disable`: six digits from the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCodeRequest {
    pub code: String,
}

/// `POST /v1/settings/security` (`settings.manage`), and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    /// Whether everyone with the ADMIN role must log in with a second factor.
    pub require_admin_totp: bool,
}

/// `PUT /v1/subscription/modules` (`settings.manage`): the whole set of modules the business
/// wants switched on, by their wire spelling (RETAIL_POS, CLINIC, SALON, EDUCATION, LOGISTICS);
/// every other is switched off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetModulesRequest {
    pub modules: Vec<String>,
}

/// `POST /v1/enrol`: exchange a single-use enrolment code for device credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    pub code: String,
    pub device_name: String,
    /// Ask for rotating credentials: a short-lived access token and a refresh token
    /// (`POST /v1/devices/refresh`). Without it (desks built before rotation) the token lives until
    /// the desk is revoked.
    #[serde(default)]
    pub rotating_credentials: bool,
    /// Re-enrolment: the device id of this same desk, which head office removed (revoked) and
    /// issued a reconnect code for. The desk takes its place again, with new credentials, and
    /// keeps its data and its outbox, whose numbering and stamps continue; its old credentials
    /// stay dead.
    #[serde(default)]
    pub replaces_device: Option<Uuid>,
    /// Re-enrolment: the last outbox seq this desk ever wrote. The server refuses
    /// (`device_written_elsewhere`) when it holds more changes under the desk's id than that:
    /// another copy of the desk wrote them, and this desk's own would be taken for replays.
    #[serde(default)]
    pub last_seq: i64,
}

fn default_scope() -> PullScope {
    PullScope::Branch
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct EnrolResponse {
    pub tenant_id: Uuid,
    pub branch_id: Uuid,
    pub device_id: Uuid,
    /// Bearer token for every later call. Shown once; the desk keeps it in the OS keyring.
    /// With rotating credentials it is an access token that ends at `access_expires_at`.
    pub device_token: String,
    pub business_name: String,
    pub branch_name: String,
    /// Which branches' rows the desk is sent (absent from servers before schema 4: `branch`).
    #[serde(default = "default_scope")]
    pub scope: PullScope,
    /// With rotating credentials: when `device_token` stops working (`token_expired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_expires_at: Option<DateTime<Utc>>,
    /// With rotating credentials: exchanged for a new access token and a new refresh token
    /// (`POST /v1/devices/refresh`); each works once. Kept in the OS keyring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// `POST /v1/auth/pin`: the session's person chooses their desk PIN (six digits, not a run or
/// one digit repeated). Their business's desks get its Argon2id hash at their next sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPinRequest {
    pub pin: String,
}

/// A person who may sign in at the business's desks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct StaffMember {
    pub user_id: Uuid,
    pub name: String,
    /// Role names, sorted.
    pub roles: Vec<String>,
    /// What the roles allow together (`area.action`), sorted.
    pub permissions: Vec<String>,
    /// The desk PIN's Argon2id hash (PHC string), which the desk checks offline.
    pub pin_verifier: String,
}

/// `GET /v1/staff` (a desk): every ACTIVE person of the business with a desk PIN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct StaffResponse {
    pub staff: Vec<StaffMember>,
    /// Whether anyone of the business has a desk PIN (ACTIVE or not): then the desk asks for
    /// a sign-in, even when nobody on `staff` can sign in right now.
    pub sign_in_required: bool,
}

/// A licence lease: what the server vouches for about a business, for one desk, until when. The
/// desk keeps the newest one it has verified and enforces it offline: full access until
/// `full_until`, read-only until `read_only_until`, then suspended (the desk still opens and
/// exports its data; nothing is deleted). Times are compared with the latest time the desk has
/// ever seen, so a clock turned back does not extend it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct Licence {
    /// The layout's version (1).
    pub version: u32,
    pub tenant_id: Uuid,
    pub device_id: Uuid,
    /// STARTER, GROWTH, PRO or ENTERPRISE.
    pub plan: String,
    /// The modules switched on (RETAIL_POS, CLINIC, ...).
    pub modules: Vec<String>,
    /// The plan's limits (none: no limit).
    pub max_modules: Option<u32>,
    pub max_users: Option<u32>,
    pub max_devices: Option<u32>,
    /// The subscription's state when the lease was issued: TRIAL, ACTIVE, GRACE, SUSPENDED.
    pub state: String,
    pub issued_at: DateTime<Utc>,
    pub full_until: DateTime<Utc>,
    pub read_only_until: DateTime<Utc>,
}

/// `GET /v1/licence` (a desk): a lease signed with the server's Ed25519 licence key. `payload` is
/// the [`Licence`] as JSON bytes, base64 (standard alphabet); `signature` the 64-byte Ed25519
/// signature of exactly those bytes, base64; `public_key` the 32-byte verifying key, base64. A
/// desk pins the first key it is given and refuses a lease signed with any other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct SignedLicence {
    pub payload: String,
    pub signature: String,
    pub public_key: String,
}

/// `POST /v1/devices/refresh`: a desk's refresh token for a new pair. Using one refresh token
/// twice revokes the desk (`refresh_token_reused`), unless the second use is a retry within a
/// short grace whose first answer never arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
pub struct RefreshResponse {
    /// The new bearer token.
    pub device_token: String,
    pub access_expires_at: DateTime<Utc>,
    /// The next refresh token; the one sent is used up.
    pub refresh_token: String,
}

/// Every error response of the HTTP API has this body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
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
    /// A request body in a `Content-Encoding` the server does not read (it reads `zstd`).
    pub const UNSUPPORTED_CONTENT_ENCODING: &str = "unsupported_content_encoding";
    pub const SEQUENCE_GAP: &str = "sequence_gap";
    pub const UNSUPPORTED_SCHEMA_VERSION: &str = "unsupported_schema_version";
    pub const VALIDATION_FAILED: &str = "validation_failed";
    pub const ROW_IN_OTHER_BRANCH: &str = "row_in_other_branch";
    pub const CLOCK_AHEAD: &str = "clock_ahead";
    pub const WRONG_DEVICE: &str = "wrong_device";
    pub const LEDGER_ENTRY_IMMUTABLE: &str = "ledger_entry_immutable";
    pub const ROW_PURGED: &str = "row_purged";
    pub const RESYNC_REQUIRED: &str = "resync_required";
    pub const RESOLUTION_NOT_ALLOWED: &str = "resolution_not_allowed";
    pub const CONFLICT_ALREADY_RESOLVED: &str = "conflict_already_resolved";
    /// Head office: an emergency opening of a clinical record was reviewed already.
    pub const ALREADY_REVIEWED: &str = "already_reviewed";
    /// The business's subscription has ended and is in its grace: read-only, pushes refused.
    pub const SUBSCRIPTION_READ_ONLY: &str = "subscription_read_only";
    /// The business's subscription is suspended: sync refused both ways.
    pub const SUBSCRIPTION_SUSPENDED: &str = "subscription_suspended";
    /// Adding this would pass a limit of the business's plan (users, desks, modules).
    pub const PLAN_LIMIT_REACHED: &str = "plan_limit_reached";
    /// A payment's billing cycle does not go with its pricing model (kaunter-core's
    /// `BillingMismatch`).
    pub const BILLING_MISMATCH: &str = "billing_mismatch";
    /// A payment for a business that already owns a perpetual licence buys nothing.
    pub const ALREADY_PERPETUAL: &str = "already_perpetual";
    /// A payment dated before the last one applied.
    pub const PAYMENT_OUT_OF_ORDER: &str = "payment_out_of_order";
    /// Cancelling a trial: it ends by itself.
    pub const CANCEL_TRIAL: &str = "cancel_trial";
    /// Cancelling a perpetual licence: there is nothing to renew.
    pub const CANCEL_PERPETUAL: &str = "cancel_perpetual";
    /// Cancelling a subscription that has already expired.
    pub const CANCEL_EXPIRED: &str = "cancel_expired";
    /// A payment provider's webhook arrived, but the server has no secret to verify it with.
    pub const WEBHOOK_NOT_CONFIGURED: &str = "webhook_not_configured";
    /// A webhook whose signature is missing or wrong.
    pub const WEBHOOK_SIGNATURE_INVALID: &str = "webhook_signature_invalid";
    /// A webhook signed too long before (or after) the server's clock.
    pub const WEBHOOK_STALE: &str = "webhook_stale";
    /// A verified webhook whose event cannot be used (unreadable, or naming no purchase).
    pub const WEBHOOK_INVALID: &str = "webhook_invalid";
    /// A verified webhook naming a business that does not exist.
    pub const WEBHOOK_UNKNOWN_BUSINESS: &str = "webhook_unknown_business";
    /// A verified webhook whose amount or currency is not the price of what it names.
    pub const WEBHOOK_AMOUNT_MISMATCH: &str = "webhook_amount_mismatch";
    pub const ENROLMENT_CODE_INVALID: &str = "enrolment_code_invalid";
    /// Login: the business, e-mail or password is wrong (one answer for all three).
    pub const INVALID_CREDENTIALS: &str = "invalid_credentials";
    /// Login: too many failures for this account or address; see `Retry-After`.
    pub const TOO_MANY_ATTEMPTS: &str = "too_many_attempts";
    /// Login with the right password to a business an operator suspended or terminated.
    pub const BUSINESS_NOT_ACTIVE: &str = "business_not_active";
    /// A head-office request without a live session cookie.
    pub const SESSION_INVALID: &str = "session_invalid";
    /// A head-office request that changes something without the session's CSRF token.
    pub const CSRF_FAILED: &str = "csrf_failed";
    /// A head-office request the person's roles do not allow.
    pub const FORBIDDEN: &str = "forbidden";
    /// Login with the right password by a person with a second factor, without its code.
    pub const TOTP_REQUIRED: &str = "totp_required";
    /// A TOTP code that is wrong, expired or already used.
    pub const TOTP_INVALID: &str = "totp_invalid";
    /// The business requires a second factor of this ADMIN, who has none yet.
    pub const TOTP_SETUP_REQUIRED: &str = "totp_setup_required";
    /// Setting up a second factor where one is already on, or confirming one never set up.
    pub const TOTP_STATE: &str = "totp_state";
    /// An outbox entry naming a person who is not one of the business's.
    pub const UNKNOWN_ACTOR: &str = "unknown_actor";
    /// A desk's access token has ended: renew it with the refresh token.
    pub const TOKEN_EXPIRED: &str = "token_expired";
    /// A refresh token used twice: the desk was revoked; enrol it again.
    pub const REFRESH_TOKEN_REUSED: &str = "refresh_token_reused";
    /// An invitation token that is unknown, used or expired (one answer for all).
    pub const INVITATION_INVALID: &str = "invitation_invalid";
    /// The change would leave the business without an active ADMIN.
    pub const LAST_ADMIN: &str = "last_admin";
    /// A branch that is closed gets no new desks.
    pub const BRANCH_CLOSED: &str = "branch_closed";
    /// Re-enrolment named a desk the code is not a reconnect code of (or a plain code was used
    /// to reconnect, or a reconnect code to enrol a new desk).
    pub const DEVICE_NOT_REPLACEABLE: &str = "device_not_replaceable";
    /// Re-enrolment: the server holds changes under this desk's id that it never wrote.
    pub const DEVICE_WRITTEN_ELSEWHERE: &str = "device_written_elsewhere";
    pub const INTERNAL: &str = "internal";
}
