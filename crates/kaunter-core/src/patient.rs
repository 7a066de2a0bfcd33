//! Registering a patient: what the desk accepts, normalised once, with one error per field so
//! the form can say exactly what to fix. A MyKad gives the date of birth and sex; every other
//! identity document needs them typed.

use chrono::{Datelike, NaiveDate};

use crate::mykad::{MyKad, Sex};
use crate::phone::Phone;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdType {
    MyKad,
    Passport,
    ArmyPolice,
    OldIc,
}

/// The registration form's fields, named as the form and the wire name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatientField {
    FullName,
    IdNumber,
    Phone,
    DateOfBirth,
    Sex,
}

impl PatientField {
    pub fn name(self) -> &'static str {
        match self {
            PatientField::FullName => "full_name",
            PatientField::IdNumber => "id_number",
            PatientField::Phone => "phone",
            PatientField::DateOfBirth => "date_of_birth",
            PatientField::Sex => "sex",
        }
    }
}

/// One field's problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationError {
    pub field: PatientField,
    pub code: &'static str,
    pub message: String,
}

impl RegistrationError {
    fn new(field: PatientField, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            code,
            message: message.into(),
        }
    }
}

/// The form as typed at the desk.
#[derive(Debug, Clone, Copy)]
pub struct RegistrationForm<'a> {
    pub full_name: &'a str,
    pub id_type: IdType,
    pub id_number: &'a str,
    /// May be empty: not every patient has a phone.
    pub phone: &'a str,
    /// `YYYY-MM-DD`. Ignored for MyKad.
    pub date_of_birth: Option<&'a str>,
    /// Ignored for MyKad.
    pub sex: Option<Sex>,
}

pub const FULL_NAME_MAX_CHARS: usize = 150;
/// Nobody alive was born longer ago than this.
const OLDEST_AGE_YEARS: i32 = 130;

/// A patient that passed every rule, in normal form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPatient {
    full_name: String,
    id_type: IdType,
    id_number: String,
    phone: Option<Phone>,
    date_of_birth: NaiveDate,
    sex: Sex,
}

impl NewPatient {
    /// Checks every field and returns all problems at once, in form order.
    pub fn validate(
        form: &RegistrationForm<'_>,
        today: NaiveDate,
    ) -> Result<NewPatient, Vec<RegistrationError>> {
        let mut errors = Vec::new();

        let full_name = normalise_name(form.full_name);
        if full_name.is_empty() {
            errors.push(RegistrationError::new(
                PatientField::FullName,
                "name_required",
                "Enter the patient's full name as on their identity document.",
            ));
        } else if full_name.chars().count() > FULL_NAME_MAX_CHARS {
            errors.push(RegistrationError::new(
                PatientField::FullName,
                "name_too_long",
                format!("A name can have at most {FULL_NAME_MAX_CHARS} characters."),
            ));
        } else if !full_name.chars().any(char::is_alphabetic) {
            errors.push(RegistrationError::new(
                PatientField::FullName,
                "name_has_no_letters",
                "A name must contain letters.",
            ));
        }

        let mut derived = None;
        let id_number = match form.id_type {
            IdType::MyKad => match MyKad::parse(form.id_number, today) {
                Ok(mykad) => {
                    derived = Some((mykad.date_of_birth(), mykad.sex()));
                    mykad.digits().to_owned()
                }
                Err(error) => {
                    errors.push(RegistrationError::new(
                        PatientField::IdNumber,
                        error.code(),
                        error.to_string(),
                    ));
                    String::new()
                }
            },
            other => match normalise_document_number(other, form.id_number) {
                Ok(number) => number,
                Err(error) => {
                    errors.push(error);
                    String::new()
                }
            },
        };

        let phone = if form.phone.trim().is_empty() {
            None
        } else {
            match Phone::parse(form.phone) {
                Ok(phone) => Some(phone),
                Err(error) => {
                    errors.push(RegistrationError::new(
                        PatientField::Phone,
                        error.code(),
                        error.to_string(),
                    ));
                    None
                }
            }
        };

        let (date_of_birth, sex) = match derived {
            Some(derived) => (Some(derived.0), Some(derived.1)),
            None if form.id_type == IdType::MyKad => (None, None), // the id_number error says it
            None => {
                let date = match form.date_of_birth.map(str::trim).filter(|s| !s.is_empty()) {
                    None => {
                        errors.push(RegistrationError::new(
                            PatientField::DateOfBirth,
                            "date_of_birth_required",
                            "Enter the date of birth from the identity document.",
                        ));
                        None
                    }
                    Some(text) => match parse_birth_date(text, today) {
                        Ok(date) => Some(date),
                        Err(error) => {
                            errors.push(error);
                            None
                        }
                    },
                };
                if form.sex.is_none() {
                    errors.push(RegistrationError::new(
                        PatientField::Sex,
                        "sex_required",
                        "Choose the patient's sex as on their identity document.",
                    ));
                }
                (date, form.sex)
            }
        };

        match (errors.is_empty(), date_of_birth, sex) {
            (true, Some(date_of_birth), Some(sex)) => Ok(NewPatient {
                full_name,
                id_type: form.id_type,
                id_number,
                phone,
                date_of_birth,
                sex,
            }),
            _ => Err(errors),
        }
    }

    pub fn full_name(&self) -> &str {
        &self.full_name
    }
    pub fn id_type(&self) -> IdType {
        self.id_type
    }
    /// Normal form: 12 digits for MyKad, upper-case without spaces otherwise.
    pub fn id_number(&self) -> &str {
        &self.id_number
    }
    pub fn phone(&self) -> Option<&Phone> {
        self.phone.as_ref()
    }
    pub fn date_of_birth(&self) -> NaiveDate {
        self.date_of_birth
    }
    pub fn sex(&self) -> Sex {
        self.sex
    }
}

/// Drops control characters, trims and collapses runs of whitespace, so "  Ali   bin  Abu " is
/// "Ali bin Abu".
pub fn normalise_name(input: &str) -> String {
    let printable: String = input
        .chars()
        .filter(|c| c.is_whitespace() || !c.is_control())
        .collect();
    printable.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn normalise_document_number(id_type: IdType, input: &str) -> Result<String, RegistrationError> {
    let number: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect();
    let (min, max, what) = match id_type {
        IdType::Passport => (5, 20, "A passport number"),
        IdType::ArmyPolice => (3, 20, "An army or police number"),
        IdType::OldIc => (7, 9, "An old IC number"),
        IdType::MyKad => (12, 12, "A MyKad number"),
    };
    if number.is_empty() {
        return Err(RegistrationError::new(
            PatientField::IdNumber,
            "id_number_required",
            "Enter the identity document number.",
        ));
    }
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || (id_type == IdType::ArmyPolice && c == '/');
    if !number.chars().all(allowed) {
        return Err(RegistrationError::new(
            PatientField::IdNumber,
            "id_number_invalid_characters",
            format!("{what} has only letters and digits."),
        ));
    }
    let length = number.chars().count();
    if !(min..=max).contains(&length) {
        return Err(RegistrationError::new(
            PatientField::IdNumber,
            "id_number_wrong_length",
            format!("{what} has {min} to {max} characters."),
        ));
    }
    Ok(number)
}

fn parse_birth_date(text: &str, today: NaiveDate) -> Result<NaiveDate, RegistrationError> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        RegistrationError::new(
            PatientField::DateOfBirth,
            "date_of_birth_invalid",
            "Enter a real date of birth.",
        )
    })?;
    if date > today {
        return Err(RegistrationError::new(
            PatientField::DateOfBirth,
            "date_of_birth_in_future",
            "The date of birth cannot be in the future.",
        ));
    }
    if today.year() - date.year() > OLDEST_AGE_YEARS {
        return Err(RegistrationError::new(
            PatientField::DateOfBirth,
            "date_of_birth_too_old",
            format!("The date of birth is more than {OLDEST_AGE_YEARS} years ago."),
        ));
    }
    Ok(date)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::PhoneKind;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    fn form<'a>(id_type: IdType, id_number: &'a str) -> RegistrationForm<'a> {
        RegistrationForm {
            full_name: "  Siti   Nurhaliza binti Tarudin ",
            id_type,
            id_number,
            phone: "012-345 6789",
            date_of_birth: None,
            sex: None,
        }
    }

    fn error_codes(
        result: Result<NewPatient, Vec<RegistrationError>>,
    ) -> Vec<(&'static str, &'static str)> {
        result
            .unwrap_err()
            .into_iter()
            .map(|e| (e.field.name(), e.code))
            .collect()
    }

    #[test]
    fn mykad_registration_derives_birth_date_and_sex() {
        let mut typed = form(IdType::MyKad, "790111-10-5342");
        typed.date_of_birth = Some("2001-01-01"); // ignored for MyKad
        typed.sex = Some(Sex::Male); // ignored for MyKad
        let patient = NewPatient::validate(&typed, today()).unwrap();
        assert_eq!(patient.full_name(), "Siti Nurhaliza binti Tarudin");
        assert_eq!(patient.id_number(), "790111105342");
        assert_eq!(
            patient.date_of_birth(),
            NaiveDate::from_ymd_opt(1979, 1, 11).unwrap()
        );
        assert_eq!(patient.sex(), Sex::Female);
        let phone = patient.phone().unwrap();
        assert_eq!(phone.e164(), "+60123456789");
        assert_eq!(phone.kind(), PhoneKind::Mobile);
    }

    #[test]
    fn passport_registration_needs_typed_birth_date_and_sex() {
        let typed = form(IdType::Passport, "a 1234 5678");
        assert_eq!(
            error_codes(NewPatient::validate(&typed, today())),
            [
                ("date_of_birth", "date_of_birth_required"),
                ("sex", "sex_required")
            ]
        );
        let mut typed = form(IdType::Passport, "a 1234 5678");
        typed.date_of_birth = Some("1985-06-30");
        typed.sex = Some(Sex::Male);
        typed.phone = "+65 9123 4567";
        let patient = NewPatient::validate(&typed, today()).unwrap();
        assert_eq!(patient.id_number(), "A12345678");
        assert_eq!(patient.id_type(), IdType::Passport);
        assert_eq!(patient.phone().unwrap().e164(), "+6591234567");
    }

    #[test]
    fn phone_is_optional_but_checked_when_given() {
        let mut typed = form(IdType::MyKad, "790111105342");
        typed.phone = "  ";
        assert!(
            NewPatient::validate(&typed, today())
                .unwrap()
                .phone()
                .is_none()
        );
        typed.phone = "012-345";
        assert_eq!(
            error_codes(NewPatient::validate(&typed, today())),
            [("phone", "phone_wrong_length")]
        );
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let typed = RegistrationForm {
            full_name: "   ",
            id_type: IdType::MyKad,
            id_number: "900101-00-1234",
            phone: "02-1234 5678",
            date_of_birth: None,
            sex: None,
        };
        assert_eq!(
            error_codes(NewPatient::validate(&typed, today())),
            [
                ("full_name", "name_required"),
                ("id_number", "mykad_bad_place_of_birth"),
                ("phone", "phone_unknown_prefix"),
            ]
        );
    }

    #[test]
    fn names_are_checked() {
        let long = "A".repeat(FULL_NAME_MAX_CHARS + 1);
        let mut typed = form(IdType::MyKad, "790111105342");
        typed.full_name = &long;
        assert_eq!(
            error_codes(NewPatient::validate(&typed, today())),
            [("full_name", "name_too_long")]
        );
        typed.full_name = "12345";
        assert_eq!(
            error_codes(NewPatient::validate(&typed, today())),
            [("full_name", "name_has_no_letters")]
        );
        typed.full_name = "Tan\u{0} Ah\tKow\n";
        assert_eq!(
            NewPatient::validate(&typed, today()).unwrap().full_name(),
            "Tan Ah Kow"
        );
    }

    #[test]
    fn typed_birth_dates_are_checked() {
        let cases = [
            ("2026-11-26", "date_of_birth_in_future"),
            ("1890-01-01", "date_of_birth_too_old"),
            ("1990-02-30", "date_of_birth_invalid"),
            ("30/01/1990", "date_of_birth_invalid"),
        ];
        for (text, code) in cases {
            let mut typed = form(IdType::Passport, "A1234567");
            typed.date_of_birth = Some(text);
            typed.sex = Some(Sex::Female);
            assert_eq!(
                error_codes(NewPatient::validate(&typed, today())),
                [("date_of_birth", code)],
                "{text}"
            );
        }
    }

    #[test]
    fn document_numbers_are_checked_per_type() {
        let cases = [
            (IdType::Passport, "A12", "id_number_wrong_length"),
            (
                IdType::Passport,
                "A1234567!",
                "id_number_invalid_characters",
            ),
            (IdType::OldIc, "A12345", "id_number_wrong_length"),
            (IdType::ArmyPolice, "", "id_number_required"),
        ];
        for (id_type, number, code) in cases {
            let mut typed = form(id_type, number);
            typed.date_of_birth = Some("1970-05-05");
            typed.sex = Some(Sex::Male);
            assert_eq!(
                error_codes(NewPatient::validate(&typed, today())),
                [("id_number", code)],
                "{number}"
            );
        }
        let mut typed = form(IdType::ArmyPolice, "rf/123456");
        typed.date_of_birth = Some("1970-05-05");
        typed.sex = Some(Sex::Male);
        assert_eq!(
            NewPatient::validate(&typed, today()).unwrap().id_number(),
            "RF/123456"
        );
    }
}
