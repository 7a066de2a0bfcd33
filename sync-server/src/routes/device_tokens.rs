//! Rotating desk credentials: `POST /v1/devices/refresh` trades a refresh token for a new
//! access token and a new refresh token. Each refresh token works once; the bearer token a
//! desk sends everywhere else then lives only [`AppState::access_token_ttl`].
//!
//! A refresh token presented again after it was exchanged is a copy in someone else's hands
//! (or the desk's own retry): when the token that replaced it has not been used and the first
//! exchange is less than [`RETRY_GRACE_SECS`] old, the retry gets a fresh pair and the unused
//! one is withdrawn; otherwise the desk is revoked at once (its data and outbox stay on it, and
//! it asks to be enrolled again), so a stolen token is worth at most one exchange.

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

/// A retry within this many seconds of an exchange whose answer was lost still succeeds.
pub const RETRY_GRACE_SECS: i64 = 60;
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
    let row = tx
        .query_opt(
            "SELECT r.device_id, r.secret_hash, r.expires_at > now(), r.used_at,
                    r.used_at > now() - $3::bigint * interval '1 second',
                    n.used_at IS NULL AND n.token_id IS NOT NULL,
                    d.revoked_at IS NOT NULL, t.status
             FROM device_refresh_tokens r
             JOIN devices d ON d.tenant_id = r.tenant_id AND d.device_id = r.device_id
             JOIN tenants t ON t.tenant_id = r.tenant_id
             LEFT JOIN device_refresh_tokens n
                  ON n.tenant_id = r.tenant_id AND n.token_id = r.replaced_by
             WHERE r.tenant_id = $1 AND r.token_id = $2
             FOR UPDATE OF r, d",
            &[&presented.tenant_id, &presented.token_id, &RETRY_GRACE_SECS],
        )
        .await?;
    let Some(row) = row else {
        let _ = presented.matches(&[0u8; 32]);
        return Err(Error::Unauthorized);
    };
    let device_id: DeviceId = row.try_get(0)?;
    let stored: Vec<u8> = row.try_get(1)?;
    let live: bool = row.try_get(2)?;
    let used_at: Option<DateTime<Utc>> = row.try_get(3)?;
    let within_grace: Option<bool> = row.try_get(4)?;
    let successor_unused: Option<bool> = row.try_get(5)?;
    let revoked: bool = row.try_get(6)?;
    let status: String = row.try_get(7)?;
    if !presented.matches(&stored) || revoked || !live {
        return Err(Error::Unauthorized);
    }
    if status != "active" {
        return Err(Error::BusinessNotActive);
    }
    if used_at.is_some() {
        if within_grace == Some(true) && successor_unused == Some(true) {
            // The desk's own retry: the pair it never received is withdrawn below.
            tx.execute(
                "UPDATE device_refresh_tokens n SET used_at = now()
                 FROM device_refresh_tokens r
                 WHERE r.tenant_id = $1 AND r.token_id = $2
                   AND n.tenant_id = r.tenant_id AND n.token_id = r.replaced_by",
                &[&presented.tenant_id, &presented.token_id],
            )
            .await?;
            tracing::info!(tenant = %presented.tenant_id, device = %device_id,
                           "refresh retried within the grace");
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
