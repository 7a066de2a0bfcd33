//! The replicated entities other than patients: appointments (mergeable rows, with a rule the
//! server checks across desks: one practitioner is not booked twice at once) and cash movements
//! (an append-only ledger: written once, never changed, the drawer's balance derived from them)
//! and catalogue items (tenant-wide rows every branch shares).
//!
//! Every entity's record converts to and from the field map that travels in [`Change`]s. A
//! value is accepted only in its canonical spelling (what [`EntityRecord::fields`] writes), so
//! every replica that stores it typed and rebuilds it gets the same bytes, and the same digest.
//!
//! [`Change`]: crate::http::Change

use std::str::FromStr;

use chrono::{DateTime, Datelike, Timelike, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

use crate::http::{Entity, Fields, PatientRecord};

/// A record type that travels as fields.
pub trait EntityRecord: Sized {
    const ENTITY: Entity;
    /// Every replicated field and its value, canonically spelt.
    fn fields(&self) -> Fields;
    /// The record a merged field map describes, or why it does not describe one. Fields
    /// outside the entity's list are ignored.
    fn from_fields(id: Uuid, branch_id: Uuid, fields: &Fields) -> Result<Self, String>;
}

impl EntityRecord for PatientRecord {
    const ENTITY: Entity = Entity::Patient;
    fn fields(&self) -> Fields {
        PatientRecord::fields(self)
    }
    fn from_fields(id: Uuid, branch_id: Uuid, fields: &Fields) -> Result<Self, String> {
        PatientRecord::from_fields(id, branch_id, fields)
    }
}

/// Builds a record from the fields named in `names` plus its id and branch.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    id: Uuid,
    branch_id: Uuid,
    names: &[&str],
    fields: &Fields,
) -> Result<T, String> {
    let mut object = serde_json::Map::new();
    object.insert("id".to_owned(), json(&id));
    object.insert("branch_id".to_owned(), json(&branch_id));
    for name in names {
        if let Some(value) = fields.get(*name) {
            object.insert((*name).to_owned(), value.clone());
        }
    }
    serde_json::from_value(serde_json::Value::Object(object)).map_err(|error| error.to_string())
}

fn encode(record: &impl Serialize, names: &[&str]) -> Fields {
    let serde_json::Value::Object(object) = json(record) else {
        return Fields::new();
    };
    object
        .into_iter()
        .filter(|(name, _)| names.contains(&name.as_str()))
        .collect()
}

fn json(value: &impl Serialize) -> serde_json::Value {
    // These plain types (strings, enums, uuids, times, decimals) always serialise.
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Two fields of an entity that must agree with each other, so they always travel in one change
/// (one stamp): a per-field merge then never pairs one desk's value of one with another desk's
/// value of the other. A booking's start and end; a catalogue item's kind and duration (only a
/// service has one).
pub fn paired_fields(entity: Entity) -> Option<(&'static str, &'static str)> {
    match entity {
        Entity::Appointment => Some(("starts_at", "ends_at")),
        Entity::CatalogueItem => Some(("kind", "duration_minutes")),
        Entity::Patient | Entity::CashMovement | Entity::ClinicalEntry => None,
    }
}

/// Which fields of `change` are not spelt the way `record` spells them: a replica storing the
/// typed record would give them back differently, so the change is refused instead.
pub fn non_canonical_fields(change: &Fields, canonical: &Fields) -> Vec<String> {
    change
        .iter()
        .filter(|(name, value)| canonical.get(name.as_str()).is_some_and(|c| c != *value))
        .map(|(name, _)| name.clone())
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Booked,
    Arrived,
    Completed,
    Cancelled,
    NoShow,
}

impl AppointmentStatus {
    pub const ALL: [AppointmentStatus; 5] = [
        AppointmentStatus::Booked,
        AppointmentStatus::Arrived,
        AppointmentStatus::Completed,
        AppointmentStatus::Cancelled,
        AppointmentStatus::NoShow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AppointmentStatus::Booked => "booked",
            AppointmentStatus::Arrived => "arrived",
            AppointmentStatus::Completed => "completed",
            AppointmentStatus::Cancelled => "cancelled",
            AppointmentStatus::NoShow => "no_show",
        }
    }

    pub fn parse(text: &str) -> Option<AppointmentStatus> {
        AppointmentStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    /// Whether the slot is taken: a cancelled or missed booking frees the practitioner.
    pub fn holds_slot(self) -> bool {
        matches!(self, AppointmentStatus::Booked | AppointmentStatus::Arrived)
    }
}

/// A booking of one patient with one practitioner, `[starts_at, ends_at)`, on whole minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct AppointmentRecord {
    pub id: Uuid,
    pub branch_id: Uuid,
    pub patient_id: Uuid,
    /// The staff member seen; the staff catalogue is tenant-wide.
    pub practitioner_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: AppointmentStatus,
    /// Why the patient comes: clinical, so encrypted on the desk.
    #[serde(default)]
    pub note: Option<String>,
}

pub const APPOINTMENT_FIELDS: &[&str] = &[
    "patient_id",
    "practitioner_id",
    "starts_at",
    "ends_at",
    "status",
    "note",
];

fn note_problem(note: Option<&str>) -> Option<(&'static str, String)> {
    note.filter(|note| note.chars().count() > NOTE_MAX_CHARS)
        .map(|_| {
            (
                "note",
                format!("The note is longer than {NOTE_MAX_CHARS} characters."),
            )
        })
}

/// Years a booking may fall in.
pub const BOOKING_YEARS: std::ops::RangeInclusive<i32> = 2000..=2200;

/// Longest booking accepted: a day.
pub const APPOINTMENT_MAX_MINUTES: i64 = 24 * 60;
pub const NOTE_MAX_CHARS: usize = 500;

impl AppointmentRecord {
    /// What is wrong with this booking, if anything (field name, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let on_minute = |at: DateTime<Utc>| at.second() == 0 && at.nanosecond() == 0;
        if !on_minute(self.starts_at) {
            problems.push(("starts_at", "Bookings start on a whole minute.".to_owned()));
        }
        if !on_minute(self.ends_at) {
            problems.push(("ends_at", "Bookings end on a whole minute.".to_owned()));
        }
        for (field, at) in [("starts_at", self.starts_at), ("ends_at", self.ends_at)] {
            if !(BOOKING_YEARS.contains(&at.year())) {
                problems.push((
                    field,
                    "The booking is not in a year Kaunter accepts.".to_owned(),
                ));
            }
        }
        let minutes = (self.ends_at - self.starts_at).num_minutes();
        if self.ends_at <= self.starts_at {
            problems.push((
                "ends_at",
                "The booking must end after it starts.".to_owned(),
            ));
        } else if minutes > APPOINTMENT_MAX_MINUTES {
            problems.push(("ends_at", "A booking lasts at most a day.".to_owned()));
        }
        problems.extend(note_problem(self.note.as_deref()));
        problems
    }

    /// Whether two bookings hold overlapping slots of the same practitioner.
    pub fn overlaps(&self, other: &AppointmentRecord) -> bool {
        self.id != other.id
            && self.practitioner_id == other.practitioner_id
            && self.status.holds_slot()
            && other.status.holds_slot()
            && self.starts_at < other.ends_at
            && other.starts_at < self.ends_at
    }
}

impl EntityRecord for AppointmentRecord {
    const ENTITY: Entity = Entity::Appointment;
    fn fields(&self) -> Fields {
        encode(self, APPOINTMENT_FIELDS)
    }
    fn from_fields(id: Uuid, branch_id: Uuid, fields: &Fields) -> Result<Self, String> {
        decode(id, branch_id, APPOINTMENT_FIELDS, fields)
    }
}

/// What moved money in or out of a branch's drawer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum CashKind {
    /// A patient or customer paid.
    Payment,
    /// Money given back.
    Refund,
    /// Float put into the drawer.
    FloatIn,
    /// Cash taken out (banking, petty cash).
    PayOut,
}

impl CashKind {
    pub const ALL: [CashKind; 4] = [
        CashKind::Payment,
        CashKind::Refund,
        CashKind::FloatIn,
        CashKind::PayOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CashKind::Payment => "payment",
            CashKind::Refund => "refund",
            CashKind::FloatIn => "float_in",
            CashKind::PayOut => "pay_out",
        }
    }

    pub fn parse(text: &str) -> Option<CashKind> {
        CashKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// +1 when the drawer gains the amount, -1 when it loses it.
    pub fn sign(self) -> i64 {
        match self {
            CashKind::Payment | CashKind::FloatIn => 1,
            CashKind::Refund | CashKind::PayOut => -1,
        }
    }
}

/// One entry of a branch's cash ledger. Never edited: a mistake is put right by another entry
/// (a refund, a pay-out), so every desk's entries add up to the same balance whatever order they
/// arrive in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct CashMovementRecord {
    pub id: Uuid,
    pub branch_id: Uuid,
    pub kind: CashKind,
    /// Ringgit, positive, exactly two decimals on the wire: `"12.30"`.
    #[ts(type = "string")]
    #[serde(with = "ringgit")]
    pub amount: Decimal,
    #[serde(default)]
    pub patient_id: Option<Uuid>,
    #[serde(default)]
    pub note: Option<String>,
}

pub const CASH_MOVEMENT_FIELDS: &[&str] = &["kind", "amount", "patient_id", "note"];

/// The largest single movement accepted: RM 9,999,999.99.
pub const CASH_MAX_SEN: i64 = 999_999_999;

impl CashMovementRecord {
    /// The amount in sen, signed by its effect on the drawer.
    pub fn signed_sen(&self) -> i64 {
        self.kind.sign() * ringgit::to_sen(self.amount).unwrap_or(0)
    }

    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        match ringgit::to_sen(self.amount) {
            Some(sen) if sen > 0 && sen <= CASH_MAX_SEN => {}
            _ => problems.push((
                "amount",
                "The amount must be more than RM 0.00 and at most RM 9,999,999.99.".to_owned(),
            )),
        }
        problems.extend(note_problem(self.note.as_deref()));
        problems
    }
}

impl EntityRecord for CashMovementRecord {
    const ENTITY: Entity = Entity::CashMovement;
    fn fields(&self) -> Fields {
        encode(self, CASH_MOVEMENT_FIELDS)
    }
    fn from_fields(id: Uuid, branch_id: Uuid, fields: &Fields) -> Result<Self, String> {
        decode(id, branch_id, CASH_MOVEMENT_FIELDS, fields)
    }
}

/// What an entry of a patient's clinical record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ClinicalKind {
    /// A clinician's note of an encounter.
    Note,
    /// Something the patient must not be given.
    Allergy,
    /// Someone outside the clinical roles opened the record in an emergency ("break-glass"):
    /// the body is the reason they gave. Head office reviews every one.
    EmergencyAccess,
}

impl ClinicalKind {
    pub const ALL: [ClinicalKind; 3] = [
        ClinicalKind::Note,
        ClinicalKind::Allergy,
        ClinicalKind::EmergencyAccess,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClinicalKind::Note => "note",
            ClinicalKind::Allergy => "allergy",
            ClinicalKind::EmergencyAccess => "emergency_access",
        }
    }

    pub fn parse(text: &str) -> Option<ClinicalKind> {
        ClinicalKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// Clinical content (a note, an allergy), as opposed to a record of who opened the record.
    pub fn is_clinical(self) -> bool {
        !matches!(self, ClinicalKind::EmergencyAccess)
    }
}

/// One entry of a patient's clinical record. Written once and never changed, as a medical
/// record should be: a correction is another entry. Clinical, so encrypted on the desk, and
/// shown only to people whose role reads clinical records, or who opened this patient's record
/// in an emergency (which is itself an entry, `emergency_access`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ClinicalEntryRecord {
    pub id: Uuid,
    pub branch_id: Uuid,
    pub patient_id: Uuid,
    pub kind: ClinicalKind,
    /// The note or allergy; for an emergency access, the reason given.
    pub body: String,
    /// Who wrote it: the person signed in at the desk (none at a desk nobody signs in to).
    #[serde(default)]
    pub author_id: Option<Uuid>,
}

pub const CLINICAL_ENTRY_FIELDS: &[&str] = &["patient_id", "kind", "body", "author_id"];

/// The longest clinical entry accepted.
pub const CLINICAL_BODY_MAX_CHARS: usize = 4000;
/// The shortest reason accepted for opening a record in an emergency.
pub const EMERGENCY_REASON_MIN_CHARS: usize = 10;

impl ClinicalEntryRecord {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let length = self.body.trim().chars().count();
        if length == 0 {
            problems.push(("body", "Write what to record.".to_owned()));
        } else if self.body.chars().count() > CLINICAL_BODY_MAX_CHARS {
            problems.push((
                "body",
                format!("An entry is at most {CLINICAL_BODY_MAX_CHARS} characters."),
            ));
        } else if self.kind == ClinicalKind::EmergencyAccess && length < EMERGENCY_REASON_MIN_CHARS
        {
            problems.push((
                "body",
                format!(
                    "Say why the record is needed (at least {EMERGENCY_REASON_MIN_CHARS} characters)."
                ),
            ));
        }
        problems
    }
}

impl EntityRecord for ClinicalEntryRecord {
    const ENTITY: Entity = Entity::ClinicalEntry;
    fn fields(&self) -> Fields {
        encode(self, CLINICAL_ENTRY_FIELDS)
    }
    fn from_fields(id: Uuid, branch_id: Uuid, fields: &Fields) -> Result<Self, String> {
        decode(id, branch_id, CLINICAL_ENTRY_FIELDS, fields)
    }
}

/// Whether a catalogue item is goods or a service (a service may carry a duration to book).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum CatalogueKind {
    Product,
    Service,
}

impl CatalogueKind {
    pub const ALL: [CatalogueKind; 2] = [CatalogueKind::Product, CatalogueKind::Service];

    pub fn as_str(self) -> &'static str {
        match self {
            CatalogueKind::Product => "product",
            CatalogueKind::Service => "service",
        }
    }

    pub fn parse(text: &str) -> Option<CatalogueKind> {
        CatalogueKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// The tax an item's price is charged with at the till. Sales tax is not here: it is charged by
/// manufacturers and importers, not added at a retail counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum TaxCode {
    /// Not taxed (most goods at a till, beauty services, healthcare for Malaysians).
    Exempt,
    /// Service tax at the reduced rate (food and drink, telecoms, parking, logistics).
    #[serde(rename = "service_6")]
    Service6,
    /// Service tax at the general rate for taxable services.
    #[serde(rename = "service_8")]
    Service8,
}

/// A rate of a tax code, in percent, from a date on (until the next row of the same code).
/// Rates are data with dates: a rate change is a new row, and a sale is taxed at the rate of
/// its own day.
pub const TAX_RATES: &[(TaxCode, (i32, u32, u32), u32)] = &[
    (TaxCode::Exempt, (2018, 9, 1), 0),
    (TaxCode::Service6, (2018, 9, 1), 6),
    // The general rate rose from 6 % to 8 % on 1 March 2024; the code exists from then on.
    (TaxCode::Service8, (2024, 3, 1), 8),
];

impl TaxCode {
    pub const ALL: [TaxCode; 3] = [TaxCode::Exempt, TaxCode::Service6, TaxCode::Service8];

    pub fn as_str(self) -> &'static str {
        match self {
            TaxCode::Exempt => "exempt",
            TaxCode::Service6 => "service_6",
            TaxCode::Service8 => "service_8",
        }
    }

    pub fn parse(text: &str) -> Option<TaxCode> {
        TaxCode::ALL.into_iter().find(|code| code.as_str() == text)
    }

    /// The rate in percent on `day`, or `None` before the code existed.
    pub fn percent_on(self, day: chrono::NaiveDate) -> Option<u32> {
        TAX_RATES
            .iter()
            .filter(|(code, _, _)| *code == self)
            .filter_map(|(_, (y, m, d), rate)| {
                chrono::NaiveDate::from_ymd_opt(*y, *m, *d).map(|from| (from, *rate))
            })
            .filter(|(from, _)| *from <= day)
            .max_by_key(|(from, _)| *from)
            .map(|(_, rate)| rate)
    }
}

/// A product or service of the business's catalogue, tenant-wide. `branch_id` is the branch
/// where the item was first written; every branch sees and may change it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct CatalogueItemRecord {
    pub id: Uuid,
    pub branch_id: Uuid,
    pub kind: CatalogueKind,
    /// The business's own code (SKU, service code): what staff type or scan.
    pub code: String,
    pub name: String,
    /// Ringgit before tax, two decimals on the wire: `"45.00"`. Zero is allowed (a free item).
    #[ts(type = "string")]
    #[serde(with = "ringgit")]
    pub price: Decimal,
    pub tax: TaxCode,
    /// How long a service takes to book, in minutes; none for a product.
    #[serde(default)]
    pub duration_minutes: Option<u32>,
    /// An inactive item stays in the catalogue (old sales name it) but is no longer offered.
    pub active: bool,
}

pub const CATALOGUE_ITEM_FIELDS: &[&str] = &[
    "kind",
    "code",
    "name",
    "price",
    "tax",
    "duration_minutes",
    "active",
];

pub const CATALOGUE_CODE_MAX_CHARS: usize = 32;
pub const CATALOGUE_NAME_MAX_CHARS: usize = 120;

impl CatalogueItemRecord {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let code_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/');
        if self.code.is_empty()
            || self.code.chars().count() > CATALOGUE_CODE_MAX_CHARS
            || !self.code.chars().all(code_ok)
        {
            problems.push((
                "code",
                format!(
                    "The code is 1 to {CATALOGUE_CODE_MAX_CHARS} letters, digits or - _ . /, without spaces."
                ),
            ));
        }
        let name = self.name.trim();
        if name.is_empty() || name != self.name {
            problems.push((
                "name",
                "The name is required and has no leading or trailing spaces.".to_owned(),
            ));
        } else if self.name.chars().count() > CATALOGUE_NAME_MAX_CHARS {
            problems.push((
                "name",
                format!("The name is at most {CATALOGUE_NAME_MAX_CHARS} characters."),
            ));
        } else if self.name.chars().any(char::is_control) {
            problems.push(("name", "The name holds a control character.".to_owned()));
        }
        match ringgit::to_sen(self.price) {
            Some(sen) if (0..=CASH_MAX_SEN).contains(&sen) => {}
            _ => problems.push((
                "price",
                "The price must be from RM 0.00 to RM 9,999,999.99.".to_owned(),
            )),
        }
        match (self.kind, self.duration_minutes) {
            (CatalogueKind::Product, Some(_)) => problems.push((
                "duration_minutes",
                "Only a service has a duration.".to_owned(),
            )),
            (CatalogueKind::Service, Some(minutes))
                if minutes == 0 || i64::from(minutes) > APPOINTMENT_MAX_MINUTES =>
            {
                problems.push((
                    "duration_minutes",
                    "A service lasts from 1 minute to a day.".to_owned(),
                ));
            }
            _ => {}
        }
        problems
    }
}

impl EntityRecord for CatalogueItemRecord {
    const ENTITY: Entity = Entity::CatalogueItem;
    fn fields(&self) -> Fields {
        encode(self, CATALOGUE_ITEM_FIELDS)
    }
    fn from_fields(id: Uuid, branch_id: Uuid, fields: &Fields) -> Result<Self, String> {
        decode(id, branch_id, CATALOGUE_ITEM_FIELDS, fields)
    }
}

/// Ringgit amounts as strings with exactly two decimals; anything else is refused, so `"12.3"`
/// and `"12.300"` never become a second spelling of `"12.30"`.
pub mod ringgit {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn parse(text: &str) -> Option<Decimal> {
        let (whole, cents) = text.split_once('.')?;
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || cents.len() != 2 || !digits(cents) || whole.len() > 9 {
            return None;
        }
        if whole.len() > 1 && whole.starts_with('0') {
            return None;
        }
        Decimal::from_str(text).ok()
    }

    /// An amount as a person types it: `45`, `45.5`, `45.50`, `RM 45.50`, `rm45`, `1,234.50`
    /// (commas only between groups of three digits). At most two decimals; never negative.
    pub fn from_typed(text: &str) -> Option<Decimal> {
        let text = text.trim();
        let text = text
            .strip_prefix("RM")
            .or_else(|| text.strip_prefix("rm"))
            .or_else(|| text.strip_prefix("Rm"))
            .unwrap_or(text)
            .trim_start();
        let (whole, cents) = match text.split_once('.') {
            Some((whole, cents)) => (whole, cents),
            None => (text, ""),
        };
        let groups: Vec<&str> = whole.split(',').collect();
        let grouped = groups.len() == 1
            || (!groups[0].is_empty()
                && groups[0].len() <= 3
                && groups[1..].iter().all(|group| group.len() == 3));
        let whole: String = groups.concat();
        if !grouped || cents.len() > 2 || (whole.is_empty() && cents.is_empty()) {
            return None;
        }
        let cents = format!("{cents:0<2}");
        let whole = whole.trim_start_matches('0');
        parse(&format!(
            "{}.{cents}",
            if whole.is_empty() { "0" } else { whole }
        ))
    }

    pub fn to_sen(amount: Decimal) -> Option<i64> {
        use rust_decimal::prelude::ToPrimitive;
        let sen = amount.checked_mul(Decimal::ONE_HUNDRED)?;
        if sen.fract() != Decimal::ZERO {
            return None;
        }
        sen.to_i64()
    }

    pub fn from_sen(sen: i64) -> Decimal {
        Decimal::new(sen, 2)
    }

    pub fn format(amount: Decimal) -> String {
        let mut rounded = amount;
        rounded.rescale(2);
        rounded.to_string()
    }

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is not an amount in ringgit with two decimals, e.g. \"12.30\""
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, hour, minute, 0).unwrap()
    }

    fn clinical(kind: ClinicalKind, body: &str) -> ClinicalEntryRecord {
        ClinicalEntryRecord {
            id: Uuid::from_u128(7),
            branch_id: Uuid::from_u128(1),
            patient_id: Uuid::from_u128(8),
            kind,
            body: body.to_owned(),
            author_id: Some(Uuid::from_u128(9)),
        }
    }

    #[test]
    fn clinical_entries_need_a_body_and_a_reason_long_enough() {
        let cases: &[(ClinicalKind, String, bool)] = &[
            (ClinicalKind::Allergy, "Penicillin".to_owned(), true),
            (ClinicalKind::Note, "  ".to_owned(), false),
            (
                ClinicalKind::Note,
                "x".repeat(CLINICAL_BODY_MAX_CHARS),
                true,
            ),
            (
                ClinicalKind::Note,
                "x".repeat(CLINICAL_BODY_MAX_CHARS + 1),
                false,
            ),
            // A short note is fine; a short reason for opening a record is not.
            (ClinicalKind::Note, "BP ok".to_owned(), true),
            (ClinicalKind::EmergencyAccess, "urgent".to_owned(), false),
            (
                ClinicalKind::EmergencyAccess,
                "Collapsed at the counter".to_owned(),
                true,
            ),
        ];
        for (kind, body, valid) in cases {
            let problems = clinical(*kind, body).problems();
            assert_eq!(
                problems.is_empty(),
                *valid,
                "{kind:?} {body:?}: {problems:?}"
            );
            assert!(problems.iter().all(|(field, _)| *field == "body"));
        }
    }

    #[test]
    fn clinical_entries_travel_as_their_fields() {
        let entry = clinical(ClinicalKind::EmergencyAccess, "Collapsed at the counter");
        let fields = entry.fields();
        assert_eq!(fields.get("kind"), Some(&json!("emergency_access")));
        assert_eq!(
            fields.keys().map(String::as_str).collect::<Vec<_>>(),
            ["author_id", "body", "kind", "patient_id"]
        );
        let back = ClinicalEntryRecord::from_fields(entry.id, entry.branch_id, &fields).unwrap();
        assert_eq!(back, entry);
        assert!(Entity::ClinicalEntry.is_ledger());
        assert_eq!(Entity::ClinicalEntry.since_schema_version(), 5);
        for kind in ClinicalKind::ALL {
            assert_eq!(ClinicalKind::parse(kind.as_str()), Some(kind));
        }
    }

    fn booking(
        id: u128,
        practitioner: u128,
        from: (u32, u32),
        to: (u32, u32),
    ) -> AppointmentRecord {
        AppointmentRecord {
            id: Uuid::from_u128(id),
            branch_id: Uuid::from_u128(1),
            patient_id: Uuid::from_u128(100 + id),
            practitioner_id: Uuid::from_u128(practitioner),
            starts_at: at(from.0, from.1),
            ends_at: at(to.0, to.1),
            status: AppointmentStatus::Booked,
            note: None,
        }
    }

    #[test]
    fn records_round_trip_through_fields() {
        let appointment = booking(1, 7, (9, 0), (9, 30));
        let fields = appointment.fields();
        assert_eq!(fields["starts_at"], json!("2026-11-25T09:00:00Z"));
        assert_eq!(fields["status"], json!("booked"));
        assert_eq!(fields.len(), APPOINTMENT_FIELDS.len());
        assert_eq!(
            AppointmentRecord::from_fields(appointment.id, appointment.branch_id, &fields).unwrap(),
            appointment
        );
        let cash = CashMovementRecord {
            id: Uuid::from_u128(2),
            branch_id: Uuid::from_u128(1),
            kind: CashKind::Refund,
            amount: ringgit::parse("12.30").unwrap(),
            patient_id: None,
            note: Some("Overcharged".to_owned()),
        };
        let fields = cash.fields();
        assert_eq!(fields["amount"], json!("12.30"));
        assert_eq!(cash.signed_sen(), -1230);
        assert_eq!(
            CashMovementRecord::from_fields(cash.id, cash.branch_id, &fields).unwrap(),
            cash
        );
    }

    #[test]
    fn amounts_have_one_spelling() {
        for good in ["0.01", "12.30", "999999999.99"] {
            assert!(ringgit::parse(good).is_some(), "{good}");
        }
        for bad in [
            "12.3", "12.300", "12", "-1.00", "+1.00", "01.00", "1e2", " 1.00", "1.0a", ".50",
        ] {
            assert!(ringgit::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(ringgit::to_sen(ringgit::parse("0.05").unwrap()), Some(5));
        assert_eq!(ringgit::format(ringgit::from_sen(1230)), "12.30");
    }

    #[test]
    fn typed_amounts() {
        let table = [
            ("45", Some("45.00")),
            ("45.5", Some("45.50")),
            ("45.50", Some("45.50")),
            ("RM 45.50", Some("45.50")),
            ("rm45", Some("45.00")),
            (" 1,234.50 ", Some("1234.50")),
            ("0", Some("0.00")),
            ("007", Some("7.00")),
            (".5", Some("0.50")),
            ("", None),
            ("RM", None),
            ("-1", None),
            ("1.234", None),
            ("12,34", None),
            ("1,2345.00", None),
            ("abc", None),
            ("1e3", None),
        ];
        for (typed, want) in table {
            assert_eq!(
                ringgit::from_typed(typed).map(ringgit::format).as_deref(),
                want,
                "{typed:?}"
            );
        }
    }

    #[test]
    fn overlap_table() {
        let a = booking(1, 7, (9, 0), (9, 30));
        let cases = [
            (booking(2, 7, (9, 15), (9, 45)), true),
            (booking(2, 7, (8, 45), (9, 1)), true),
            (booking(2, 7, (9, 0), (9, 30)), true),
            (booking(2, 7, (8, 0), (10, 0)), true),
            // Back to back is not an overlap.
            (booking(2, 7, (9, 30), (10, 0)), false),
            (booking(2, 7, (8, 30), (9, 0)), false),
            // Another practitioner.
            (booking(2, 8, (9, 0), (9, 30)), false),
            // The same booking.
            (booking(1, 7, (9, 0), (9, 30)), false),
        ];
        for (other, want) in cases {
            assert_eq!(a.overlaps(&other), want, "{other:?}");
            assert_eq!(other.overlaps(&a), want, "{other:?} (reversed)");
        }
        let mut cancelled = booking(2, 7, (9, 0), (9, 30));
        cancelled.status = AppointmentStatus::Cancelled;
        assert!(!a.overlaps(&cancelled));
    }

    #[test]
    fn booking_problems() {
        assert!(booking(1, 7, (9, 0), (9, 30)).problems().is_empty());
        assert_eq!(booking(1, 7, (9, 30), (9, 0)).problems()[0].0, "ends_at");
        let mut odd = booking(1, 7, (9, 0), (9, 30));
        odd.starts_at += chrono::Duration::seconds(5);
        assert_eq!(odd.problems()[0].0, "starts_at");
    }

    #[test]
    fn another_spelling_of_a_value_is_noticed() {
        let appointment = booking(1, 7, (9, 0), (9, 30));
        let change: Fields = [("starts_at".to_owned(), json!("2026-11-25T09:00:00+00:00"))].into();
        let parsed = AppointmentRecord::from_fields(appointment.id, appointment.branch_id, &{
            let mut fields = appointment.fields();
            fields.extend(change.clone());
            fields
        })
        .unwrap();
        assert_eq!(
            non_canonical_fields(&change, &parsed.fields()),
            vec!["starts_at".to_owned()]
        );
    }

    fn item(kind: CatalogueKind, code: &str, name: &str, price: &str) -> CatalogueItemRecord {
        CatalogueItemRecord {
            id: Uuid::from_u128(9),
            branch_id: Uuid::from_u128(1),
            kind,
            code: code.to_owned(),
            name: name.to_owned(),
            price: ringgit::parse(price).unwrap(),
            tax: TaxCode::Service8,
            duration_minutes: None,
            active: true,
        }
    }

    #[test]
    fn catalogue_items_round_trip_and_are_checked() {
        let mut facial = item(CatalogueKind::Service, "SVC-01", "Facial, 60 min", "120.00");
        facial.duration_minutes = Some(60);
        let fields = facial.fields();
        assert_eq!(fields["price"], json!("120.00"));
        assert_eq!(fields["tax"], json!("service_8"));
        assert_eq!(fields["duration_minutes"], json!(60));
        assert_eq!(fields.len(), CATALOGUE_ITEM_FIELDS.len());
        assert_eq!(
            CatalogueItemRecord::from_fields(facial.id, facial.branch_id, &fields).unwrap(),
            facial
        );
        assert!(facial.problems().is_empty());
        assert!(
            item(CatalogueKind::Product, "9555012345678", "Panadol", "0.00")
                .problems()
                .is_empty()
        );

        let mut product_with_time = item(CatalogueKind::Product, "P1", "Shampoo", "25.90");
        product_with_time.duration_minutes = Some(30);
        let mut endless = item(CatalogueKind::Service, "S1", "Retreat", "1.00");
        endless.duration_minutes = Some(24 * 60 + 1);
        let mut instant = item(CatalogueKind::Service, "S2", "Nothing", "1.00");
        instant.duration_minutes = Some(0);
        let table = [
            (item(CatalogueKind::Product, "", "Soap", "1.00"), "code"),
            (item(CatalogueKind::Product, "A B", "Soap", "1.00"), "code"),
            (
                item(CatalogueKind::Product, &"X".repeat(33), "Soap", "1.00"),
                "code",
            ),
            (item(CatalogueKind::Product, "S", "", "1.00"), "name"),
            (item(CatalogueKind::Product, "S", " Soap", "1.00"), "name"),
            (
                item(CatalogueKind::Product, "S", "So\u{7}ap", "1.00"),
                "name",
            ),
            (
                item(CatalogueKind::Product, "S", &"n".repeat(121), "1.00"),
                "name",
            ),
            (
                item(CatalogueKind::Product, "S", "Soap", "999999999.99"),
                "price",
            ),
            (product_with_time, "duration_minutes"),
            (endless, "duration_minutes"),
            (instant, "duration_minutes"),
        ];
        for (record, field) in table {
            let problems = record.problems();
            assert_eq!(
                problems.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
                vec![field],
                "{record:?}"
            );
        }
    }

    #[test]
    fn tax_rates_follow_their_dates() {
        let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let table = [
            (TaxCode::Service8, day(2024, 2, 29), None),
            (TaxCode::Service8, day(2024, 3, 1), Some(8)),
            (TaxCode::Service8, day(2026, 12, 1), Some(8)),
            (TaxCode::Service6, day(2018, 8, 31), None),
            (TaxCode::Service6, day(2018, 9, 1), Some(6)),
            (TaxCode::Service6, day(2026, 12, 1), Some(6)),
            (TaxCode::Exempt, day(2026, 12, 1), Some(0)),
        ];
        for (code, on, want) in table {
            assert_eq!(code.percent_on(on), want, "{code:?} on {on}");
        }
        for code in TaxCode::ALL {
            assert_eq!(TaxCode::parse(code.as_str()), Some(code));
        }
    }
}
