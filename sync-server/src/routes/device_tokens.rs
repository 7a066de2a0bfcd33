//! Rotating desk credentials: `POST /v1/devices/refresh` trades a refresh token for a new
//! access token and a new refresh token. Each refresh token works once; the bearer token a
//! desk sends everywhere else then lives only [`AppState::access_token_ttl`].
//!
//! A refresh token presented again after it was exchanged is either the desk's own retry (the
//! answer was lost) or a copy in someone else's hands: when the token that replaced it has
//! never been used and the exchange is less than [`RETRY_GRACE_SECS`] old, the asker gets a
//! fresh pair and the unused one is withdrawn; otherwise the desk is revoked at once (its data
//! and outbox stay on it). A copy used while the desk's own successor waits therefore costs the
//! desk its credentials at its next refresh: theft ends in revocation, not in silent sharing.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use kaunter_protocol::http::{RefreshRequest, RefreshResponse};
use uuid::Uuid;

use crate::AppState;
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::extract::JsonBody;
use crate::ids::DeviceId;
use crate::token::{self, RefreshToken};

/// A token presented again within this long of its exchange, while the token it was exchanged
/// for has never been used, is the desk asking again after a lost answer (the network dropped,
/// the laptop slept, the keyring write failed): it gets a fresh pair. A day covers a desk
/// offline overnight mid-exchange; a copy used by someone else within it is caught when the
/// desk's own next refresh finds its token withdrawn.
pub const RETRY_GRACE_SECS: i64 = 24 * 60 * 60;
/// A refresh token unused this long stops working: a desk away longer is enrolled again.
pub const REFRESH_TOKEN_DAYS: i64 = 180;

/// A desk's new pair, as issued.
#[derive(Debug)]
pub struct Credentials {
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    /// The refresh token's row, for the one it replaces to point at.
    pub refresh_id: Uuid,
}

/// Issues a new access token (replacing the device's current one) and a new refresh token.
pub async fn issue_credentials(
    tx: &TenantTx<'_>,
    device_id: DeviceId,
    access_ttl: std::time::Duration,
) -> Result<Credentials> {
    let tenant_id = tx.tenant();
    let access = token::issue(tenant_id, device_id)?;
    let ttl_secs = i64::try_from(access_ttl.as_secs())
        .map_err(|_| Error::Config("the access token lifetime is too long".to_owned()))?;
    let access_expires_at: DateTime<Utc> = tx
        .query_one(
            "UPDATE devices SET token_hash = $3,
                 token_expires_at = now() + $4::bigint * interval '1 second'
             WHERE tenant_id = $1 AND device_id = $2
             RETURNING token_expires_at",
            &[
                &tenant_id,
                &device_id,
                &access.secret_hash.as_slice(),
                &ttl_secs,
            ],
        )
        .await?
        .try_get(0)?;
    let refresh_id = Uuid::now_v7();
    let refresh = token::issue_refresh(tenant_id, refresh_id)?;
    tx.execute(
        "INSERT INTO device_refresh_tokens (tenant_id, token_id, device_id, secret_hash, expires_at)
         VALUES ($1, $2, $3, $4, now() + $5::bigint * interval '1 day')",
        &[
            &tenant_id,
            &refresh_id,
            &device_id,
            &refresh.secret_hash.as_slice(),
            &REFRESH_TOKEN_DAYS,
        ],
    )
    .await?;
    Ok(Credentials {
        access_token: access.text,
        access_expires_at,
        refresh_token: refresh.text,
        refresh_id,
    })
}

pub async fn refresh(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<RefreshRequest>,
) -> Result<Json<RefreshResponse>> {
    let presented = RefreshToken::parse(&request.refresh_token)?;
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, presented.tenant_id).await?;
    // Rows are locked one statement at a time in one order (the device, then the token, then
    // the token that replaced it), so two refreshes of one desk queue instead of deadlocking,
    // and each reads the other's committed outcome.
    let device_id: Option<DeviceId> = tx
        .query_opt(
            "SELECT device_id FROM device_refresh_tokens WHERE tenant_id = $1 AND token_id = $2",
            &[&presented.tenant_id, &presented.token_id],
        )
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    let Some(device_id) = device_id else {
        let _ = presented.matches(&[0u8; 32]);
        return Err(Error::Unauthorized);
    };
    let device = tx
        .query_one(
            "SELECT d.revoked_at IS NOT NULL, t.status FROM devices d JOIN tenants t USING (tenant_id)
             WHERE d.tenant_id = $1 AND d.device_id = $2 FOR UPDATE OF d",
            &[&presented.tenant_id, &device_id],
        )
        .await?;
    let (revoked, status): (bool, String) = (device.try_get(0)?, device.try_get(1)?);
    let token = tx
        .query_one(
            "SELECT secret_hash, expires_at > now(), used_at IS NOT NULL,
                    used_at > now() - $3::bigint * interval '1 second', replaced_by
             FROM device_refresh_tokens WHERE tenant_id = $1 AND token_id = $2 FOR UPDATE",
            &[&presented.tenant_id, &presented.token_id, &RETRY_GRACE_SECS],
        )
        .await?;
    let stored: Vec<u8> = token.try_get(0)?;
    let live: bool = token.try_get(1)?;
    let used: bool = token.try_get(2)?;
    let within_grace: Option<bool> = token.try_get(3)?;
    let replaced_by: Option<Uuid> = token.try_get(4)?;
    if !presented.matches(&stored) || revoked || !live {
        return Err(Error::Unauthorized);
    }
    if status != "active" {
        return Err(Error::BusinessNotActive);
    }
    if used {
        // The token that replaced it, if it has never been used itself: then nobody has the
        // pair this token was exchanged for, and this is the desk asking again.
        let successor_unused = match replaced_by {
            Some(successor) => tx
                .query_opt(
                    "SELECT 1 FROM device_refresh_tokens
                     WHERE tenant_id = $1 AND token_id = $2 AND used_at IS NULL FOR UPDATE",
                    &[&presented.tenant_id, &successor],
                )
                .await?
                .is_some(),
            None => false,
        };
        if within_grace == Some(true) && successor_unused {
            tx.execute(
                "UPDATE device_refresh_tokens SET used_at = now()
                 WHERE tenant_id = $1 AND token_id = $2",
                &[&presented.tenant_id, &replaced_by],
            )
            .await?;
            tracing::info!(tenant = %presented.tenant_id, device = %device_id,
                           "refresh asked again before its answer was used");
        } else {
            tx.execute(
                "UPDATE devices SET revoked_at = coalesce(revoked_at, now())
                 WHERE tenant_id = $1 AND device_id = $2",
                &[&presented.tenant_id, &device_id],
            )
            .await?;
            tx.commit().await?;
            tracing::warn!(tenant = %presented.tenant_id, device = %device_id,
                           "a refresh token was used twice: the device is revoked");
            return Err(Error::RefreshTokenReused);
        }
    }
    let issued = issue_credentials(&tx, device_id, state.access_token_ttl()).await?;
    tx.execute(
        "UPDATE device_refresh_tokens SET used_at = coalesce(used_at, now()), replaced_by = $3
         WHERE tenant_id = $1 AND token_id = $2",
        &[
            &presented.tenant_id,
            &presented.token_id,
            &issued.refresh_id,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(Json(RefreshResponse {
        device_token: issued.access_token,
        access_expires_at: issued.access_expires_at,
        refresh_token: issued.refresh_token,
    }))
}
