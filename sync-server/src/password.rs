//! Passwords: Argon2id with OWASP's minimum parameters (19 MiB of memory, 2 passes, 1 lane),
//! stored as PHC strings, so each hash carries the parameters it was made with. A login whose
//! stored hash is weaker than [`params`] re-hashes the password it just verified.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{Error, Result};

/// OWASP Password Storage Cheat Sheet: Argon2id, m = 19,456 KiB, t = 2, p = 1.
pub const MEMORY_KIB: u32 = 19_456;
pub const PASSES: u32 = 2;
pub const LANES: u32 = 1;

fn params() -> Result<Params> {
    Params::new(MEMORY_KIB, PASSES, LANES, None)
        .map_err(|error| Error::Internal(format!("argon2 parameters: {error}")))
}

fn hasher() -> Result<Argon2<'static>> {
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params()?))
}

/// A new PHC string for `password`, with a fresh 16-byte salt.
pub fn hash(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|error| Error::Internal(format!("no randomness for a salt: {error}")))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|error| Error::Internal(format!("encoding a salt: {error}")))?;
    Ok(hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|error| Error::Internal(format!("hashing a password: {error}")))?
        .to_string())
}

/// Hashes at once, at most: each takes 19 MiB and tens of milliseconds of a core, so a burst of
/// sign-ups or logins queues here instead of exhausting memory.
const CONCURRENT_HASHES: usize = 2;

fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(CONCURRENT_HASHES))
}

/// [`hash`] on a blocking thread, queued behind [`CONCURRENT_HASHES`] others.
pub async fn hash_off_thread(password: String) -> Result<String> {
    let _slot = hashing_slots()
        .acquire()
        .await
        .map_err(|error| Error::Internal(format!("hashing queue closed: {error}")))?;
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|error| Error::Internal(format!("hashing task failed: {error}")))?
}

/// [`verify`] (or, with no stored hash, [`verify_nobody`], answering no) on a blocking thread,
/// queued like [`hash_off_thread`].
pub async fn verify_off_thread(password: String, stored: Option<String>) -> Result<Verified> {
    let _slot = hashing_slots()
        .acquire()
        .await
        .map_err(|error| Error::Internal(format!("hashing queue closed: {error}")))?;
    tokio::task::spawn_blocking(move || match stored {
        Some(stored) => verify(&password, &stored),
        None => {
            verify_nobody(&password);
            Verified::No
        }
    })
    .await
    .map_err(|error| Error::Internal(format!("verifying task failed: {error}")))
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Right, and the stored hash is older or weaker than today's parameters: store a new one.
    YesRehash,
}

/// Checks `password` against a stored PHC string. A string that does not parse counts as a
/// wrong password (and is logged), never as a right one.
pub fn verify(password: &str, stored: &str) -> Verified {
    let Ok(parsed) = PasswordHash::new(stored) else {
        tracing::error!("a stored password hash does not parse");
        return Verified::No;
    };
    // The stored string names its own algorithm and parameters; the verifier follows them.
    let Ok(verifier) = hasher() else {
        return Verified::No;
    };
    if verifier
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
    {
        return Verified::No;
    }
    let current = Params::try_from(&parsed).ok();
    let weaker = parsed.algorithm.as_str() != "argon2id"
        || current
            .is_none_or(|p| p.m_cost() < MEMORY_KIB || p.t_cost() < PASSES || p.p_cost() < LANES);
    if weaker {
        Verified::YesRehash
    } else {
        Verified::Yes
    }
}

/// Spends the time of one verification when there is no user to verify against, so an unknown
/// e-mail takes as long to refuse as a wrong password.
pub fn verify_nobody(password: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    if let Some(dummy) = DUMMY.get_or_init(|| hash("no user has this password").ok()) {
        let _ = verify(password, dummy);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_hash_is_argon2id_with_owasp_parameters_and_verifies() {
        let stored = hash("kuda merah lompat tinggi").unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert_eq!(verify("kuda merah lompat tinggi", &stored), Verified::Yes);
        assert_eq!(verify("kuda merah lompat rendah", &stored), Verified::No);
        // Salted: the same password hashes differently each time.
        assert_ne!(stored, hash("kuda merah lompat tinggi").unwrap());
    }

    #[test]
    fn a_weaker_stored_hash_asks_for_a_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8_192, 1, 1, None).unwrap(),
        )
        .hash_password(
            b"kuda merah lompat tinggi",
            &SaltString::encode_b64(&[7u8; 16]).unwrap(),
        )
        .unwrap()
        .to_string();
        assert_eq!(
            verify("kuda merah lompat tinggi", &weak),
            Verified::YesRehash
        );
        assert_eq!(verify("wrong password!", &weak), Verified::No);
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, params().unwrap())
            .hash_password(
                b"kuda merah lompat tinggi",
                &SaltString::encode_b64(&[7u8; 16]).unwrap(),
            )
            .unwrap()
            .to_string();
        assert_eq!(
            verify("kuda merah lompat tinggi", &argon2i),
            Verified::YesRehash
        );
    }

    #[test]
    fn garbage_never_verifies() {
        for stored in ["", "plain", "$argon2id$v=19$m=19456,t=2,p=1$bad"] {
            assert_eq!(verify("anything at all", stored), Verified::No, "{stored}");
        }
    }
}
