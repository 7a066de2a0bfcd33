//! Login throttling, per account and per address, before any tenant is known.
//!
//! Failures are counted in `login_failures` under a SHA-256 of the key: `account` is the slug and
//! e-mail as typed (lowercased), whether or not such an account exists, so an unknown account is
//! throttled exactly like a known one and the answers cannot tell them apart; `address` is the
//! caller's IP address. Past the limit within the window, the key is locked for a while and
//! every login under it is refused with `too_many_attempts`, the right password included. A
//! successful login clears its account's count (not its address's).

use sha2::{Digest, Sha256};
use tokio_postgres::GenericClient;

use crate::error::Result;

/// Failures of one account within [`WINDOW_SECS`] before it is locked.
pub const ACCOUNT_LIMIT: i32 = 5;
/// Failures from one address within [`WINDOW_SECS`] before it is locked: higher, since a
/// clinic's desks and staff often share one public address.
pub const ADDRESS_LIMIT: i32 = 30;
pub const WINDOW_SECS: i64 = 15 * 60;
pub const LOCK_SECS: i64 = 15 * 60;

/// A throttled key with its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    hash: [u8; 32],
    limit: i32,
}

impl Key {
    pub fn account(slug: &str, email: &str) -> Key {
        Key {
            hash: digest(&["account", &slug.to_lowercase(), &email.to_lowercase()]),
            limit: ACCOUNT_LIMIT,
        }
    }

    /// Wrong second-factor codes of one person, from their own session (confirming or turning
    /// off TOTP). A key of its own kind, so no login attempt can name it.
    pub fn second_factor(tenant: crate::ids::TenantId, user_id: uuid::Uuid) -> Key {
        Key {
            hash: digest(&["second_factor", &tenant.to_string(), &user_id.to_string()]),
            limit: ACCOUNT_LIMIT,
        }
    }

    pub fn address(address: std::net::IpAddr) -> Key {
        Key {
            hash: digest(&["address", &address.to_string()]),
            limit: ADDRESS_LIMIT,
        }
    }
}

fn digest(parts: &[&str]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"kaunter-login/v1");
    for part in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// Seconds until the latest lock among `keys` ends, if any is locked now.
pub async fn locked_for(client: &impl GenericClient, keys: &[Key]) -> Result<Option<i64>> {
    let hashes: Vec<&[u8]> = keys.iter().map(|key| key.hash.as_slice()).collect();
    let row = client
        .query_one(
            "SELECT ceil(extract(epoch FROM max(locked_until) - now()))::bigint
             FROM login_failures WHERE key_hash = ANY($1) AND locked_until > now()",
            &[&hashes],
        )
        .await?;
    Ok(row.try_get::<_, Option<i64>>(0)?.map(|secs| secs.max(1)))
}

/// Counts a failure under each key, locking those that reach their limit.
pub async fn record_failure(client: &impl GenericClient, keys: &[Key]) -> Result<()> {
    for key in keys {
        client
            .execute(
                "INSERT INTO login_failures (key_hash, failures, window_start, locked_until)
                 VALUES ($1, 1, now(),
                         CASE WHEN $2 <= 1 THEN now() + $4::bigint * interval '1 second' END)
                 ON CONFLICT (key_hash) DO UPDATE SET
                     failures = CASE
                         WHEN login_failures.window_start < now() - $3::bigint * interval '1 second'
                         THEN 1 ELSE login_failures.failures + 1 END,
                     window_start = CASE
                         WHEN login_failures.window_start < now() - $3::bigint * interval '1 second'
                         THEN now() ELSE login_failures.window_start END,
                     locked_until = CASE
                         WHEN login_failures.window_start >= now() - $3::bigint * interval '1 second'
                              AND login_failures.failures + 1 >= $2
                         THEN now() + $4::bigint * interval '1 second'
                         ELSE login_failures.locked_until END",
                &[&key.hash.as_slice(), &key.limit, &WINDOW_SECS, &LOCK_SECS],
            )
            .await?;
    }
    Ok(())
}

/// Forgets the failures of `key` (an account that just logged in).
pub async fn clear(client: &impl GenericClient, key: Key) -> Result<()> {
    client
        .execute(
            "DELETE FROM login_failures WHERE key_hash = $1",
            &[&key.hash.as_slice()],
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_kind_and_ignore_case() {
        assert_eq!(
            Key::account("klinik-aman", "Siti@Klinik.my"),
            Key::account("KLINIK-AMAN", "siti@klinik.my")
        );
        assert_ne!(
            Key::account("klinik-aman", "siti@klinik.my"),
            Key::account("klinik-amans", "iti@klinik.my")
        );
        let address: std::net::IpAddr = "127.0.0.1"
            .parse()
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        assert_ne!(
            Key::address(address).hash,
            Key::account("127.0.0.1", "").hash
        );
    }
}
