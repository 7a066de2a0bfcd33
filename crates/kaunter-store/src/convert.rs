//! Explicit conversions between the domain core's types, the wire's and the local columns'.

use kaunter_core::{IdType, Sex};
use kaunter_protocol as wire;

pub fn id_type_to_wire(id_type: IdType) -> wire::IdType {
    match id_type {
        IdType::MyKad => wire::IdType::Mykad,
        IdType::Passport => wire::IdType::Passport,
        IdType::ArmyPolice => wire::IdType::ArmyPolice,
        IdType::OldIc => wire::IdType::OldIc,
    }
}

pub fn sex_to_wire(sex: Sex) -> wire::Sex {
    match sex {
        Sex::Male => wire::Sex::Male,
        Sex::Female => wire::Sex::Female,
    }
}

/// The column value stored locally (same spelling as the wire).
pub fn id_type_column(id_type: wire::IdType) -> &'static str {
    match id_type {
        wire::IdType::Mykad => "mykad",
        wire::IdType::Passport => "passport",
        wire::IdType::ArmyPolice => "army_police",
        wire::IdType::OldIc => "old_ic",
    }
}

pub fn id_type_from_column(value: &str) -> Option<wire::IdType> {
    Some(match value {
        "mykad" => wire::IdType::Mykad,
        "passport" => wire::IdType::Passport,
        "army_police" => wire::IdType::ArmyPolice,
        "old_ic" => wire::IdType::OldIc,
        _ => return None,
    })
}

pub fn sex_column(sex: wire::Sex) -> &'static str {
    match sex {
        wire::Sex::Male => "male",
        wire::Sex::Female => "female",
    }
}

pub fn sex_from_column(value: &str) -> Option<wire::Sex> {
    match value {
        "male" => Some(wire::Sex::Male),
        "female" => Some(wire::Sex::Female),
        _ => None,
    }
}

pub fn id_type_from_wire(id_type: wire::IdType) -> IdType {
    match id_type {
        wire::IdType::Mykad => IdType::MyKad,
        wire::IdType::Passport => IdType::Passport,
        wire::IdType::ArmyPolice => IdType::ArmyPolice,
        wire::IdType::OldIc => IdType::OldIc,
    }
}

pub fn sex_from_wire(sex: wire::Sex) -> Sex {
    match sex {
        wire::Sex::Male => Sex::Male,
        wire::Sex::Female => Sex::Female,
    }
}
