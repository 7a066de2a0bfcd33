//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP), the second factor a person may
//! add to their login: HMAC-SHA1, 6 digits, 30-second steps, as every common authenticator app
//! (Google Authenticator, Microsoft Authenticator, 1Password, Aegis) expects.
//!
//! A code is accepted for the current step and one step either side (a phone's clock a little
//! off, a code typed as it turned over), and only for a step after the last one accepted, so a
//! code seen over someone's shoulder cannot be used again.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Secret length: 160 bits, RFC 4226's recommendation.
pub const SECRET_BYTES: usize = 20;
pub const STEP_SECS: i64 = 30;
pub const DIGITS: u32 = 6;
/// Steps either side of now a code may come from.
const WINDOW: i64 = 1;
/// The name an authenticator app shows above the code.
const ISSUER: &str = "Kaunter";

/// A fresh random secret.
pub fn generate_secret() -> Result<[u8; SECRET_BYTES]> {
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut secret)
        .map_err(|error| Error::Internal(format!("no randomness for a TOTP secret: {error}")))?;
    Ok(secret)
}

/// The time step of a Unix time.
pub fn step_at(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// HOTP of `secret` at counter `step`, as a number below 10^digits.
fn hotp(secret: &[u8], step: i64, digits: u32) -> u32 {
    // HMAC accepts keys of any length, so this cannot fail; an empty tag would only make every
    // code wrong.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return u32::MAX;
    };
    mac.update(&step.to_be_bytes());
    let tag = mac.finalize().into_bytes();
    let offset = usize::from(tag[tag.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        tag[offset] & 0x7f,
        tag[offset + 1],
        tag[offset + 2],
        tag[offset + 3],
    ]);
    binary % 10u32.pow(digits)
}

/// The code an app shows for `secret` at `step`, zero-padded.
pub fn code_at(secret: &[u8], step: i64) -> String {
    format!(
        "{:0width$}",
        hotp(secret, step, DIGITS),
        width = DIGITS as usize
    )
}

/// The step `code` belongs to, if it is right for a step within the window around `now_secs`
/// and after `last_step` (the last one accepted). Spaces in the code are ignored.
pub fn verify(secret: &[u8], code: &str, now_secs: i64, last_step: Option<i64>) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(now_secs);
    // Every candidate is computed and compared in constant time, so timing tells nothing about
    // which step (if any) matched.
    let mut found = None;
    for step in (now - WINDOW)..=(now + WINDOW) {
        let matches: bool = code_at(secret, step)
            .as_bytes()
            .ct_eq(code.as_bytes())
            .into();
        if matches && last_step.is_none_or(|last| step > last) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://` URI an app reads from a QR code: labelled with the business and the
/// person's e-mail.
pub fn otpauth_uri(secret: &[u8], business: &str, email: &str) -> String {
    format!(
        "otpauth://totp/{issuer}%3A{label}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        issuer = ISSUER,
        label = percent_encode(&format!("{business} ({email})")),
        secret = base32(secret),
    )
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// RFC 6238 appendix B's SHA-1 secret.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_test_vectors() {
        // (time, the 8-digit TOTP of appendix B)
        let table = [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ];
        for (time, expected) in table {
            assert_eq!(hotp(RFC_SECRET, step_at(time), 8), expected, "t={time}");
            // Six digits are the last six of eight.
            assert_eq!(
                code_at(RFC_SECRET, step_at(time)),
                format!("{:06}", expected % 1_000_000),
                "t={time}"
            );
        }
    }

    #[test]
    fn a_code_is_accepted_in_its_window_once() {
        let now = 1_800_000_015;
        let step = step_at(now);
        let code = code_at(RFC_SECRET, step);
        assert_eq!(verify(RFC_SECRET, &code, now, None), Some(step));
        // With spaces, as some apps show it.
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(verify(RFC_SECRET, &spaced, now, None), Some(step));
        // The previous and the next step's codes still work; two steps away does not.
        let previous = code_at(RFC_SECRET, step - 1);
        assert_eq!(verify(RFC_SECRET, &previous, now, None), Some(step - 1));
        let next = code_at(RFC_SECRET, step + 1);
        assert_eq!(verify(RFC_SECRET, &next, now, None), Some(step + 1));
        let stale = code_at(RFC_SECRET, step - 2);
        if stale != code && stale != previous && stale != next {
            assert_eq!(verify(RFC_SECRET, &stale, now, None), None);
        }
        // Once a step is used, neither it nor an earlier one is accepted again.
        assert_eq!(verify(RFC_SECRET, &code, now, Some(step)), None);
        assert_eq!(verify(RFC_SECRET, &previous, now, Some(step)), None);
        assert_eq!(verify(RFC_SECRET, &next, now, Some(step)), Some(step + 1));
        // Not six digits, or another secret's code.
        for bad in ["", "12345", "1234567", "abcdef", "12345a"] {
            assert_eq!(verify(RFC_SECRET, bad, now, None), None, "{bad:?}");
        }
        let other = [7u8; SECRET_BYTES];
        let other_code = code_at(&other, step);
        if other_code != code && other_code != previous && other_code != next {
            assert_eq!(verify(RFC_SECRET, &other_code, now, None), None);
        }
    }

    #[test]
    fn base32_matches_rfc_4648() {
        // RFC 4648 section 10, without padding.
        let table = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (input, expected) in table {
            assert_eq!(base32(input.as_bytes()), expected, "{input:?}");
        }
        assert_eq!(base32(RFC_SECRET), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn the_uri_names_the_business_and_the_person() {
        let uri = otpauth_uri(RFC_SECRET, "Klinik Aman", "siti@aman.my");
        assert_eq!(
            uri,
            "otpauth://totp/Kaunter%3AKlinik%20Aman%20%28siti@aman.my%29?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Kaunter&algorithm=SHA1&digits=6&period=30"
        );
    }
}
