//! Who is calling: the bearer token is parsed by an extractor (no database), then checked against
//! the device row inside the request's own tenant transaction, so the check and the work share
//! one snapshot (and, for push, one row lock).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::ids::{BranchId, DeviceId, TenantId};
use crate::token::DeviceToken;

/// The `Authorization: Bearer <token>` header, parsed. Missing or garbled → 401.
#[derive(Debug, Clone)]
pub struct Bearer(pub DeviceToken);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or(Error::Unauthorized)?;
        let (scheme, token) = header.split_once(' ').ok_or(Error::Unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Error::Unauthorized);
        }
        DeviceToken::parse(token.trim()).map(Bearer)
    }
}

/// An enrolled, unrevoked device whose token checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    pub tenant_id: TenantId,
    pub device_id: DeviceId,
    pub branch_id: BranchId,
    /// The last outbox seq of this device the server has applied.
    pub high_water: i64,
    /// Which branches' rows it is sent.
    pub scope: PullScope,
    /// What the business's subscription allows now (sync routes check it:
    /// [`crate::subscription::require`]).
    pub access: Access,
}

use kaunter_core::subscription::Access;
pub use kaunter_protocol::http::PullScope;

/// Whether to lock the device's marks row (its high-water mark, `device_marks`) until the
/// transaction ends (push does, so two pushes of one device cannot interleave). The `devices`
/// row itself is not locked: every row a desk writes refers to it, and a row that pushes kept
/// locking and updating made each of those references slower (migration 0028).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowLock {
    None,
    ForUpdate,
}

/// Checks `token` against its device row in `tx` (which must be scoped to the token's tenant).
/// Unknown, revoked and wrong-secret all give [`Error::Unauthorized`].
pub async fn authenticate(tx: &TenantTx<'_>, token: &DeviceToken, lock: RowLock) -> Result<Device> {
    if tx.tenant() != token.tenant_id {
        return Err(Error::Internal(
            "authenticate called in another tenant's transaction".to_owned(),
        ));
    }
    let sql = match lock {
        RowLock::None => {
            "SELECT d.branch_id, m.high_water, d.token_hash, d.revoked_at IS NOT NULL, t.status,
                    d.token_expires_at <= now(), d.scope, s.plan, s.cycle, s.pricing,
                    s.trial_ends_at, s.period_ends_at, s.cancel_at_period_end, s.last_paid_at
             FROM devices d JOIN device_marks m USING (tenant_id, device_id)
             JOIN tenants t USING (tenant_id)
             JOIN subscriptions s USING (tenant_id)
             WHERE d.tenant_id = $1 AND d.device_id = $2"
        }
        RowLock::ForUpdate => {
            "SELECT d.branch_id, m.high_water, d.token_hash, d.revoked_at IS NOT NULL, t.status,
                    d.token_expires_at <= now(), d.scope, s.plan, s.cycle, s.pricing,
                    s.trial_ends_at, s.period_ends_at, s.cancel_at_period_end, s.last_paid_at
             FROM devices d JOIN device_marks m USING (tenant_id, device_id)
             JOIN tenants t USING (tenant_id)
             JOIN subscriptions s USING (tenant_id)
             WHERE d.tenant_id = $1 AND d.device_id = $2 FOR UPDATE OF m"
        }
    };
    let row = tx
        .query_opt_cached(sql, &[&token.tenant_id, &token.device_id])
        .await?;
    let Some(row) = row else {
        // Same work as a known device, so timing does not tell unknown from wrong secret.
        let _ = token.matches(&[0u8; 32]);
        return Err(Error::Unauthorized);
    };
    let token_hash: Vec<u8> = row.try_get(2)?;
    let revoked: bool = row.try_get(3)?;
    if !token.matches(&token_hash) || revoked {
        return Err(Error::Unauthorized);
    }
    // Rotating credentials: the access token is short-lived (NULL: a long-lived token).
    let expired: Option<bool> = row.try_get(5)?;
    if expired == Some(true) {
        return Err(Error::TokenExpired);
    }
    // An operator suspended or terminated the business: its desks keep their data and outbox,
    // and are told why they cannot sync.
    let status: String = row.try_get(4)?;
    if status != "active" {
        return Err(Error::BusinessNotActive);
    }
    // The subscription's columns follow the device's, in subscription::COLUMNS order.
    let access = crate::subscription::decode(&row, 7)?.access(chrono::Utc::now());
    Ok(Device {
        access,
        tenant_id: token.tenant_id,
        device_id: token.device_id,
        branch_id: row.try_get(0)?,
        high_water: row.try_get(1)?,
        scope: {
            let scope: String = row.try_get(6)?;
            PullScope::parse(&scope).ok_or_else(|| {
                Error::Internal(format!("stored device scope {scope:?} is unknown"))
            })?
        },
    })
}
