//! How enums are spelled in PostgreSQL columns, in one place for every query that reads or
//! writes them.

use kaunter_protocol::{IdType, Sex};

use crate::error::{Error, Result};

/// Stored spellings; the CHECK constraints of migration 0001 list the same ones.
pub fn id_type_text(id_type: IdType) -> &'static str {
    match id_type {
        IdType::Mykad => "mykad",
        IdType::Passport => "passport",
        IdType::ArmyPolice => "army_police",
        IdType::OldIc => "old_ic",
    }
}

pub fn id_type_from_text(text: &str) -> Result<IdType> {
    [
        IdType::Mykad,
        IdType::Passport,
        IdType::ArmyPolice,
        IdType::OldIc,
    ]
    .into_iter()
    .find(|candidate| id_type_text(*candidate) == text)
    .ok_or_else(|| Error::Internal(format!("stored id type {text:?} is unknown")))
}

pub fn sex_text(sex: Sex) -> &'static str {
    match sex {
        Sex::Male => "male",
        Sex::Female => "female",
    }
}

pub fn sex_from_text(text: &str) -> Result<Sex> {
    [Sex::Male, Sex::Female]
        .into_iter()
        .find(|candidate| sex_text(*candidate) == text)
        .ok_or_else(|| Error::Internal(format!("stored sex {text:?} is unknown")))
}
