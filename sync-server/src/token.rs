//! Device tokens (`kt1.<tenant uuid>.<device uuid>.<secret>`) and head-office session cookies
//! (`ks1.<tenant uuid>.<session uuid>.<secret>`), the secret being 32 random bytes in unpadded
//! base64url. The server keeps only sha256(secret bytes).
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
        let (tenant_id, device, secret_hash) = split(text, PREFIX)?;
        Ok(Self {
            tenant_id,
            device_id: DeviceId::from_uuid(device),
            secret_hash,
        })
    }

    /// Whether this token's secret hashes to `stored_hash`, compared in constant time.
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        self.secret_hash.as_slice().ct_eq(stored_hash).into()
    }
}

/// `<prefix>.<tenant uuid>.<id uuid>.<secret>` as (tenant, id, sha256(secret)).
fn split(text: &str, prefix: &str) -> Result<(TenantId, uuid::Uuid, [u8; 32])> {
    let mut parts = text.split('.');
    let (Some(found), Some(tenant), Some(id), Some(secret), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(Error::Unauthorized);
    };
    if found != prefix {
        return Err(Error::Unauthorized);
    }
    let tenant_id = tenant.parse().map_err(|_| Error::Unauthorized)?;
    let id = id.parse().map_err(|_| Error::Unauthorized)?;
    let secret = URL_SAFE_NO_PAD
        .decode(secret)
        .map_err(|_| Error::Unauthorized)?;
    if secret.len() != SECRET_BYTES {
        return Err(Error::Unauthorized);
    }
    Ok((tenant_id, id, Sha256::digest(&secret).into()))
}

/// A head-office session as its cookie carries it: `ks1.<tenant uuid>.<session uuid>.<secret>`.
/// The server keeps sha256(secret); the CSRF token is derived from that hash, so it needs no
/// storage and only a holder of the cookie (or the page it was issued to) can know it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken {
    pub tenant_id: TenantId,
    pub session_id: uuid::Uuid,
    secret_hash: [u8; 32],
}

const SESSION_PREFIX: &str = "ks1";

impl SessionToken {
    pub fn parse(text: &str) -> Result<Self> {
        let (tenant_id, session_id, secret_hash) = split(text, SESSION_PREFIX)?;
        Ok(Self {
            tenant_id,
            session_id,
            secret_hash,
        })
    }

    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        self.secret_hash.as_slice().ct_eq(stored_hash).into()
    }

    /// The token a page must echo in `X-CSRF-Token` on every request that changes something.
    pub fn csrf_token(&self) -> String {
        csrf_for(&self.secret_hash)
    }

    /// Whether `presented` is this session's CSRF token, compared in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        self.csrf_token()
            .as_bytes()
            .ct_eq(presented.as_bytes())
            .into()
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionToken")
            .field("tenant_id", &self.tenant_id)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

fn csrf_for(secret_hash: &[u8; 32]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"kaunter-csrf/v1");
    hasher.update(secret_hash);
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// A new session: the cookie value, its stored hash and its CSRF token.
pub fn issue_session(tenant_id: TenantId, session_id: uuid::Uuid) -> Result<(IssuedToken, String)> {
    let issued = issue_with(SESSION_PREFIX, tenant_id, session_id)?;
    let csrf = csrf_for(&issued.secret_hash);
    Ok((issued, csrf))
}

/// An invitation to join a business: `ki1.<tenant uuid>.<user uuid>.<secret>`. The invited
/// person's row keeps sha256(secret) until they accept.
#[derive(Clone, PartialEq, Eq)]
pub struct InvitationToken {
    pub tenant_id: TenantId,
    pub user_id: uuid::Uuid,
    secret_hash: [u8; 32],
}

const INVITATION_PREFIX: &str = "ki1";

impl InvitationToken {
    pub fn parse(text: &str) -> Result<Self> {
        let (tenant_id, user_id, secret_hash) = split(text.trim(), INVITATION_PREFIX)?;
        Ok(Self {
            tenant_id,
            user_id,
            secret_hash,
        })
    }

    pub fn secret_hash(&self) -> &[u8; 32] {
        &self.secret_hash
    }
}

impl fmt::Debug for InvitationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvitationToken")
            .field("tenant_id", &self.tenant_id)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// A desk's refresh token: `kr1.<tenant uuid>.<token uuid>.<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub tenant_id: TenantId,
    pub token_id: uuid::Uuid,
    secret_hash: [u8; 32],
}

const REFRESH_PREFIX: &str = "kr1";

impl RefreshToken {
    pub fn parse(text: &str) -> Result<Self> {
        let (tenant_id, token_id, secret_hash) = split(text.trim(), REFRESH_PREFIX)?;
        Ok(Self {
            tenant_id,
            token_id,
            secret_hash,
        })
    }

    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        self.secret_hash.as_slice().ct_eq(stored_hash).into()
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("tenant_id", &self.tenant_id)
            .field("token_id", &self.token_id)
            .finish_non_exhaustive()
    }
}

/// A new refresh token `token_id`.
pub fn issue_refresh(tenant_id: TenantId, token_id: uuid::Uuid) -> Result<IssuedToken> {
    issue_with(REFRESH_PREFIX, tenant_id, token_id)
}

/// A new invitation for `user_id`.
pub fn issue_invitation(tenant_id: TenantId, user_id: uuid::Uuid) -> Result<IssuedToken> {
    issue_with(INVITATION_PREFIX, tenant_id, user_id)
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
    issue_with(PREFIX, tenant_id, device_id.as_uuid())
}

fn issue_with(prefix: &str, tenant_id: TenantId, id: uuid::Uuid) -> Result<IssuedToken> {
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut secret)
        .map_err(|error| Error::Internal(format!("no randomness for a token: {error}")))?;
    Ok(IssuedToken {
        text: format!(
            "{prefix}.{tenant_id}.{id}.{}",
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
    fn a_session_cookie_parses_and_its_csrf_token_is_its_own() {
        let (tenant, session) = (TenantId::new_v7(), uuid::Uuid::now_v7());
        let (issued, csrf) = issue_session(tenant, session).unwrap();
        let parsed = SessionToken::parse(&issued.text).unwrap();
        assert_eq!((parsed.tenant_id, parsed.session_id), (tenant, session));
        assert!(parsed.matches(&issued.secret_hash));
        assert!(parsed.csrf_matches(&csrf));
        let (other, other_csrf) = issue_session(tenant, session).unwrap();
        assert!(!parsed.csrf_matches(&other_csrf));
        assert!(!parsed.csrf_matches(""));
        // A device token is not a session cookie, nor the other way round.
        assert!(DeviceToken::parse(&other.text).is_err());
        let device = issue(tenant, DeviceId::new_v7()).unwrap();
        assert!(SessionToken::parse(&device.text).is_err());
    }

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
            text.replacen("kt1", "ks1", 1),
        ];
        for candidate in garbled {
            assert!(
                matches!(DeviceToken::parse(&candidate), Err(Error::Unauthorized)),
                "{candidate:?} parsed"
            );
        }
    }
}
