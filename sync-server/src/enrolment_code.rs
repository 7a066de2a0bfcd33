//! Enrolment codes: 12 Crockford base32 characters (60 random bits) shown as `XXXX-XXXX-XXXX`,
//! read aloud or typed at a new desk. Typing slips are forgiven (case, dashes, spaces, O for 0,
//! I or L for 1); the server stores only sha256 of the normalised form.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const LENGTH: usize = 12;

/// A normalised enrolment code: exactly 12 characters of [`ALPHABET`].
#[derive(Clone, PartialEq, Eq)]
pub struct EnrolmentCode(String);

impl EnrolmentCode {
    pub fn generate() -> Result<Self> {
        let mut random = [0u8; LENGTH];
        getrandom::fill(&mut random).map_err(|error| {
            Error::Internal(format!("no randomness for an enrolment code: {error}"))
        })?;
        // 256 is a multiple of 32, so `% 32` keeps every character equally likely.
        Ok(Self(
            random
                .iter()
                .map(|byte| char::from(ALPHABET[usize::from(byte % 32)]))
                .collect(),
        ))
    }

    /// Normalises what a person typed; `None` if it cannot be a code.
    pub fn parse(typed: &str) -> Option<Self> {
        let mut code = String::with_capacity(LENGTH);
        for typed_char in typed.chars() {
            let c = match typed_char.to_ascii_uppercase() {
                '-' | ' ' | '\t' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
                _ => return None,
            };
            if code.len() == LENGTH {
                return None;
            }
            code.push(c);
        }
        (code.len() == LENGTH).then_some(Self(code))
    }

    /// sha256 of the normalised code: what the database stores and looks up by.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }

    /// The form to show a person: `XXXX-XXXX-XXXX`.
    pub fn display(&self) -> String {
        format!("{}-{}-{}", &self.0[0..4], &self.0[4..8], &self.0[8..12])
    }
}

impl fmt::Debug for EnrolmentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnrolmentCode([redacted])")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_generated_code_round_trips_through_its_display_form() {
        let code = EnrolmentCode::generate().unwrap();
        let shown = code.display();
        assert_eq!(shown.len(), 14);
        assert_eq!(EnrolmentCode::parse(&shown), Some(code.clone()));
        assert_eq!(EnrolmentCode::parse(&shown.to_lowercase()), Some(code));
    }

    #[test]
    fn typing_slips_are_forgiven() {
        let canonical = EnrolmentCode::parse("0123-4567-89AB").unwrap();
        for typed in [
            "o123 4567 89ab",
            "O1234567-89AB",
            "0I23-4567-89ab",
            "0l23 - 4567 - 89ab",
        ] {
            assert_eq!(
                EnrolmentCode::parse(typed).as_ref(),
                Some(&canonical),
                "{typed}"
            );
        }
        assert_eq!(
            canonical.hash(),
            EnrolmentCode::parse("o123456789ab").unwrap().hash()
        );
    }

    #[test]
    fn non_codes_are_rejected() {
        for typed in [
            "",
            "0123-4567-89A",
            "0123-4567-89ABC",
            "0123-4567-89AU",
            "0123-4567-89A!",
            "é123-4567-89AB",
        ] {
            assert_eq!(EnrolmentCode::parse(typed), None, "{typed}");
        }
    }
}
