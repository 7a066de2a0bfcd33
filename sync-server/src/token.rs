//! Device tokens: `kt1.<tenant uuid>.<device uuid>.<secret>`, the secret being 32 random bytes
//! in unpadded base64url. The server keeps only sha256(secret bytes).
//!
//! The tenant and device ids are in the clear so the server can scope its lookup to the tenant
//! (row-level security) before it has checked anything; the secret is what proves identity.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::ids::{DeviceId, TenantId};

const PREFIX: &str = "kt1";
const SECRET_BYTES: usize = 32;

/// A token as presented by a caller: parsed, not yet checked against the database.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceToken {
    pub tenant_id: TenantId,
    pub device_id: DeviceId,
    secret_hash: [u8; 32],
}

impl DeviceToken {
    /// Parses `kt1.<tenant>.<device>.<secret>`; anything else is [`Error::Unauthorized`].
    pub fn parse(text: &str) -> Result<Self> {
        let mut parts = text.split('.');
        let (Some(PREFIX), Some(tenant), Some(device), Some(secret), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(Error::Unauthorized);
        };
        let tenant_id = tenant.parse().map_err(|_| Error::Unauthorized)?;
        let device_id = device.parse().map_err(|_| Error::Unauthorized)?;
        let secret = URL_SAFE_NO_PAD
            .decode(secret)
            .map_err(|_| Error::Unauthorized)?;
        if secret.len() != SECRET_BYTES {
            return Err(Error::Unauthorized);
        }
        Ok(Self {
            tenant_id,
            device_id,
            secret_hash: Sha256::digest(&secret).into(),
        })
    }

    /// Whether this token's secret hashes to `stored_hash`, compared in constant time.
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        self.secret_hash.as_slice().ct_eq(stored_hash).into()
    }
}

impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceToken")
            .field("tenant_id", &self.tenant_id)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// A freshly issued token: the text to hand to the device once, and the hash to store.
pub struct IssuedToken {
    pub text: String,
    pub secret_hash: [u8; 32],
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IssuedToken([redacted])")
    }
}

pub fn issue(tenant_id: TenantId, device_id: DeviceId) -> Result<IssuedToken> {
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut secret)
        .map_err(|error| Error::Internal(format!("no randomness for a device token: {error}")))?;
    Ok(IssuedToken {
        text: format!(
            "{PREFIX}.{tenant_id}.{device_id}.{}",
            URL_SAFE_NO_PAD.encode(secret)
        ),
        secret_hash: Sha256::digest(secret).into(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn an_issued_token_parses_and_matches_its_hash() {
        let (tenant, device) = (TenantId::new_v7(), DeviceId::new_v7());
        let issued = issue(tenant, device).unwrap();
        let parsed = DeviceToken::parse(&issued.text).unwrap();
        assert_eq!(parsed.tenant_id, tenant);
        assert_eq!(parsed.device_id, device);
        assert!(parsed.matches(&issued.secret_hash));
        assert!(!parsed.matches(&[0u8; 32]));
        assert!(!parsed.matches(&[]));
    }

    #[test]
    fn garbled_tokens_are_unauthorized() {
        let issued = issue(TenantId::new_v7(), DeviceId::new_v7()).unwrap();
        let text = issued.text;
        let garbled = [
            String::new(),
            "kt1".to_owned(),
            text.replacen("kt1", "kt2", 1),
            format!("{text}.extra"),
            text[..text.len() - 2].to_owned(),
            text.replace('.', ":"),
            format!("kt1.not-a-uuid.{}", &text[4..]),
        ];
        for candidate in garbled {
            assert!(
                matches!(DeviceToken::parse(&candidate), Err(Error::Unauthorized)),
                "{candidate:?} parsed"
            );
        }
    }
}
