//! The checks the server makes on pushed records before storing them.
//!
//! The desk validates thoroughly (kaunter-core); the server re-checks only what it must not trust
//! a client on: shape and size limits. (That a device writes only into its own branch is checked
//! before merging, in routes/push.rs.)
//! Field names in errors are `seq[<outbox seq>].<field>`.

use kaunter_protocol::FieldError;
use kaunter_protocol::http::PatientRecord;

pub const FULL_NAME_MAX_CHARS: usize = 200;
pub const ID_NUMBER_MAX_CHARS: usize = 40;
pub const PHONE_MAX_CHARS: usize = 16;
pub const DEVICE_NAME_MAX_CHARS: usize = 100;

/// Every rule a merged `patient` breaks; field names are `seq[<seq>].<field>` for the outbox
/// entry that produced it. (The branch is checked before merging: see routes/push.rs.)
pub fn patient(patient: &PatientRecord, seq: i64) -> Vec<FieldError> {
    let field = |name: &str| format!("seq[{seq}].{name}");
    let mut errors = Vec::new();
    check_text(
        &mut errors,
        field("full_name"),
        &patient.full_name,
        FULL_NAME_MAX_CHARS,
        "Enter the patient's name.",
    );
    check_text(
        &mut errors,
        field("id_number"),
        &patient.id_number,
        ID_NUMBER_MAX_CHARS,
        "Enter the identification number.",
    );
    if patient
        .date_of_birth
        .is_some_and(|born| !(1850..=2200).contains(&chrono::Datelike::year(&born)))
    {
        errors.push(error(
            field("date_of_birth"),
            "date_of_birth_invalid",
            "The date of birth is not a plausible one.",
        ));
    }
    if let Some(phone) = &patient.phone {
        let well_formed = phone
            .strip_prefix("+60")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
            && phone.len() <= PHONE_MAX_CHARS;
        if !well_formed {
            errors.push(error(
                field("phone"),
                "phone_invalid",
                "The phone number must be a Malaysian number in the form +60123456789.",
            ));
        }
    }
    errors
}

/// A device's name at enrolment.
pub fn device_name(name: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_text(
        &mut errors,
        "device_name".to_owned(),
        name,
        DEVICE_NAME_MAX_CHARS,
        "Give this desk a name, e.g. \"Front desk 1\".",
    );
    errors
}

/// A name typed at head office (a branch's, a person's): required, at most `max_chars`, and no
/// control characters (PostgreSQL text cannot hold U+0000; the others are never meant).
/// Returns it trimmed when it is fine.
pub fn head_office_name(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    max_chars: usize,
    when_empty: &str,
) -> Option<String> {
    let before = errors.len();
    check_text(errors, field.to_owned(), value, max_chars, when_empty);
    if errors.len() == before && value.chars().any(char::is_control) {
        errors.push(error(
            field.to_owned(),
            "invalid_characters",
            "Remove the control characters (tabs, line breaks) from it.",
        ));
    }
    (errors.len() == before).then(|| value.trim().to_owned())
}

pub const BRANCH_CODE_MAX_CHARS: usize = 16;

/// A branch's short code: 1-16 letters or digits, stored upper-case.
pub fn branch_code(errors: &mut Vec<FieldError>, field: &str, value: &str) -> Option<String> {
    let code = value.trim().to_ascii_uppercase();
    let well_formed = !code.is_empty()
        && code.len() <= BRANCH_CODE_MAX_CHARS
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if well_formed {
        Some(code)
    } else {
        errors.push(error(
            field.to_owned(),
            "branch_code_invalid",
            "A branch code is 1 to 16 letters or digits, e.g. KL01.",
        ));
        None
    }
}

pub fn field_error(field: &str, code: &str, message: &str) -> FieldError {
    error(field.to_owned(), code, message)
}

fn check_text(
    errors: &mut Vec<FieldError>,
    field: String,
    value: &str,
    max_chars: usize,
    when_empty: &str,
) {
    if value.trim().is_empty() {
        errors.push(error(field, "required", when_empty));
    } else if value.chars().count() > max_chars {
        errors.push(error(
            field,
            "too_long",
            &format!("At most {max_chars} characters."),
        ));
    }
}

fn error(field: String, code: &str, message: &str) -> FieldError {
    FieldError {
        field,
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use kaunter_protocol::IdType;
    use uuid::Uuid;

    use super::*;

    fn record() -> PatientRecord {
        PatientRecord {
            id: Uuid::now_v7(),
            branch_id: Uuid::now_v7(),
            full_name: "Siti binti Ahmad".to_owned(),
            id_type: IdType::Mykad,
            id_number: "900101145678".to_owned(),
            phone: Some("+60123456789".to_owned()),
            date_of_birth: None,
            sex: None,
        }
    }

    fn codes(errors: &[FieldError]) -> Vec<(&str, &str)> {
        errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect()
    }

    #[test]
    fn a_good_record_passes() {
        assert!(patient(&record(), 1).is_empty());
        let no_phone = PatientRecord {
            phone: None,
            ..record()
        };
        assert!(patient(&no_phone, 1).is_empty());
    }

    #[test]
    fn each_rule_names_its_field() {
        let table: Vec<(PatientRecord, Vec<(&str, &str)>)> = vec![
            (
                PatientRecord {
                    full_name: "  ".to_owned(),
                    ..record()
                },
                vec![("seq[3].full_name", "required")],
            ),
            (
                PatientRecord {
                    full_name: "a".repeat(201),
                    ..record()
                },
                vec![("seq[3].full_name", "too_long")],
            ),
            (
                PatientRecord {
                    id_number: String::new(),
                    ..record()
                },
                vec![("seq[3].id_number", "required")],
            ),
            (
                PatientRecord {
                    id_number: "9".repeat(41),
                    ..record()
                },
                vec![("seq[3].id_number", "too_long")],
            ),
            (
                PatientRecord {
                    phone: Some("0123456789".to_owned()),
                    ..record()
                },
                vec![("seq[3].phone", "phone_invalid")],
            ),
            (
                PatientRecord {
                    phone: Some("+60".to_owned()),
                    ..record()
                },
                vec![("seq[3].phone", "phone_invalid")],
            ),
            (
                PatientRecord {
                    phone: Some("+60 12345678".to_owned()),
                    ..record()
                },
                vec![("seq[3].phone", "phone_invalid")],
            ),
            (
                PatientRecord {
                    phone: Some("+6012345678901234".to_owned()),
                    ..record()
                },
                vec![("seq[3].phone", "phone_invalid")],
            ),
        ];
        for (input, expected) in table {
            assert_eq!(codes(&patient(&input, 3)), expected, "{input:?}");
        }
    }

    #[test]
    fn names_count_characters_not_bytes() {
        let long_in_bytes = PatientRecord {
            full_name: "é".repeat(200),
            ..record()
        };
        assert!(patient(&long_in_bytes, 1).is_empty());
    }
}
