//! Phone numbers, normalised to E.164 (`+60123456789`) so the same person typed three ways is
//! one number. Malaysian numbering: mobiles 01x (011 has one digit more), Klang Valley 03,
//! other Peninsular states 0X, Sabah and Sarawak 08X, toll-free 1300/1700/1800. Foreign numbers
//! (visitors, passport holders) are accepted when typed with their + country code.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhoneKind {
    Mobile,
    Landline,
    TollFree,
    Foreign,
}

/// A phone number in E.164 form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone {
    e164: String,
    kind: PhoneKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneError {
    Empty,
    /// Something other than digits, a leading +, spaces, dashes, dots or brackets.
    InvalidCharacters,
    /// A Malaysian prefix with too few or too many digits after it.
    WrongLength,
    /// Not a Malaysian number and not written with a + country code.
    UnknownPrefix,
}

impl PhoneError {
    pub fn code(self) -> &'static str {
        match self {
            PhoneError::Empty => "phone_empty",
            PhoneError::InvalidCharacters => "phone_invalid_characters",
            PhoneError::WrongLength => "phone_wrong_length",
            PhoneError::UnknownPrefix => "phone_unknown_prefix",
        }
    }
}

impl fmt::Display for PhoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PhoneError::Empty => "Enter a phone number.",
            PhoneError::InvalidCharacters => {
                "A phone number has only digits, and optionally a leading + and spaces or dashes."
            }
            PhoneError::WrongLength => {
                "This number has the wrong number of digits for its prefix (e.g. 012-345 6789, 011-2345 6789, 03-2345 6789)."
            }
            PhoneError::UnknownPrefix => {
                "Malaysian numbers start with 0 (e.g. 012-345 6789); write foreign numbers with + and the country code."
            }
        })
    }
}

impl std::error::Error for PhoneError {}

impl Phone {
    pub fn parse(input: &str) -> Result<Phone, PhoneError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        let (plus, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(PhoneError::InvalidCharacters),
            }
        }
        if digits.is_empty() {
            return Err(PhoneError::Empty);
        }

        if plus {
            return match digits.strip_prefix("60") {
                Some(national) => Self::malaysian(&format!("0{national}")),
                None if (8..=15).contains(&digits.len()) && !digits.starts_with('0') => Ok(Phone {
                    e164: format!("+{digits}"),
                    kind: PhoneKind::Foreign,
                }),
                None if digits.starts_with('0') => Err(PhoneError::UnknownPrefix),
                None => Err(PhoneError::WrongLength),
            };
        }
        if let Some(national) = digits.strip_prefix("60") {
            // 60 + 8..10 national digits without the trunk 0.
            if (8..=10).contains(&national.len()) {
                return Self::malaysian(&format!("0{national}"));
            }
        }
        if ["1300", "1700", "1800"]
            .iter()
            .any(|p| digits.starts_with(p))
        {
            return if digits.len() == 10 {
                Ok(Phone {
                    e164: format!("+60{digits}"),
                    kind: PhoneKind::TollFree,
                })
            } else {
                Err(PhoneError::WrongLength)
            };
        }
        if digits.starts_with('0') {
            return Self::malaysian(&digits);
        }
        Err(PhoneError::UnknownPrefix)
    }

    /// `national` starts with the trunk 0.
    fn malaysian(national: &str) -> Result<Phone, PhoneError> {
        let bytes = national.as_bytes();
        let (kind, expected_len) = match bytes {
            // 1300/1700/1800 written after +60: eleven digits with the trunk 0 we added.
            [b'0', b'1', b'3' | b'7' | b'8', b'0', b'0', ..] if national.len() == 11 => {
                (PhoneKind::TollFree, 11)
            }
            [b'0', b'1', b'1', ..] => (PhoneKind::Mobile, 11),
            [b'0', b'1', b'0' | b'2'..=b'9', ..] => (PhoneKind::Mobile, 10),
            [b'0', b'3', ..] => (PhoneKind::Landline, 10),
            [b'0', b'8', b'2'..=b'9', ..] => (PhoneKind::Landline, 9),
            [b'0', b'4'..=b'7' | b'9', ..] => (PhoneKind::Landline, 9),
            _ => return Err(PhoneError::UnknownPrefix),
        };
        if national.len() != expected_len {
            return Err(PhoneError::WrongLength);
        }
        let without_trunk = national.strip_prefix('0').unwrap_or(national);
        Ok(Phone {
            e164: format!("+60{without_trunk}"),
            kind,
        })
    }

    pub fn e164(&self) -> &str {
        &self.e164
    }

    pub fn kind(&self) -> PhoneKind {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malaysian_numbers_normalise_to_e164() {
        let cases = [
            ("012-345 6789", "+60123456789", PhoneKind::Mobile),
            ("0123456789", "+60123456789", PhoneKind::Mobile),
            ("+60 12-345 6789", "+60123456789", PhoneKind::Mobile),
            ("60123456789", "+60123456789", PhoneKind::Mobile),
            ("+6012.345.6789", "+60123456789", PhoneKind::Mobile),
            ("011-2345 6789", "+601123456789", PhoneKind::Mobile),
            ("+60 11 2345 6789", "+601123456789", PhoneKind::Mobile),
            ("019 876 5432", "+60198765432", PhoneKind::Mobile),
            ("03-2345 6789", "+60323456789", PhoneKind::Landline),
            ("(03) 2345-6789", "+60323456789", PhoneKind::Landline),
            ("04-262 1234", "+6042621234", PhoneKind::Landline),
            ("07-223 4567", "+6072234567", PhoneKind::Landline),
            ("09-744 1234", "+6097441234", PhoneKind::Landline),
            ("082-123 456", "+6082123456", PhoneKind::Landline),
            ("088-123456", "+6088123456", PhoneKind::Landline),
            ("1300-88-1234", "+601300881234", PhoneKind::TollFree),
            ("1800 22 5555", "+601800225555", PhoneKind::TollFree),
            ("+60 1300 88 1234", "+601300881234", PhoneKind::TollFree),
            ("+65 9123 4567", "+6591234567", PhoneKind::Foreign),
            ("+44 20 7946 0958", "+442079460958", PhoneKind::Foreign),
        ];
        for (input, e164, kind) in cases {
            let phone = Phone::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(phone.e164(), e164, "{input}");
            assert_eq!(phone.kind(), kind, "{input}");
        }
    }

    #[test]
    fn wrong_numbers_are_refused_with_their_reason() {
        let cases = [
            ("", PhoneError::Empty),
            ("   ", PhoneError::Empty),
            ("+", PhoneError::Empty),
            ("012-345 678", PhoneError::WrongLength), // mobile one digit short
            ("012-345 67890", PhoneError::WrongLength), // mobile one digit long
            ("011-234 5678", PhoneError::WrongLength), // 011 needs 8 digits after it
            ("03-234 5678", PhoneError::WrongLength), // 03 needs 8 digits after it
            ("04-262 12345", PhoneError::WrongLength), // other states: 7 digits
            ("082-123 4567", PhoneError::WrongLength), // East Malaysia: 6 digits
            ("1300-88-123", PhoneError::WrongLength),
            ("02-1234 5678", PhoneError::UnknownPrefix), // 02 is not used
            ("081-123 456", PhoneError::UnknownPrefix),
            ("123456789", PhoneError::UnknownPrefix),
            ("+0123456789", PhoneError::UnknownPrefix),
            ("+65 12", PhoneError::WrongLength),
            ("012-345 678x", PhoneError::InvalidCharacters),
            ("012/3456789", PhoneError::InvalidCharacters),
        ];
        for (input, error) in cases {
            assert_eq!(Phone::parse(input), Err(error), "{input:?}");
        }
    }
}
