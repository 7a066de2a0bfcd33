//! A person's second factor (TOTP, see totp.rs), from their own head-office session:
//! `POST /v1/auth/totp/setup` makes a secret (not yet live), `/confirm` turns it on with a code
//! from the app, `/disable` turns it off with a current code. All three need the CSRF token and
//! work in a session that must first set up its second factor; confirming and disabling are
//! privilege changes, so they end every session of the person and answer with a new one.
//!
//! The security setting `POST /v1/settings/security` (`settings.manage`) decides whether the
//! business's ADMINs must have one.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;
use kaunter_core::access::Permission;
use kaunter_protocol::http::{SecuritySettings, TotpCodeRequest, TotpSetupResponse};
use uuid::Uuid;

use crate::AppState;
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::extract::JsonBody;
use crate::routes::auth::{self, SessionCookie};
use crate::throttle::{self, Key};
use crate::totp;

pub async fn setup(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
) -> Result<Json<TotpSetupResponse>> {
    auth::require_csrf(&token, &headers)?;
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    crate::routes::users::lock_people(&tx).await?;
    let (user_id, _) = auth::check_session(&tx, &token).await?;
    let user = tx
        .query_one(
            "SELECT u.email, u.totp_enabled_at IS NOT NULL, t.name
             FROM users u JOIN tenants t USING (tenant_id)
             WHERE u.tenant_id = $1 AND u.user_id = $2 FOR UPDATE OF u",
            &[&token.tenant_id, &user_id],
        )
        .await?;
    let (email, enabled, business): (String, bool, String) =
        (user.try_get(0)?, user.try_get(1)?, user.try_get(2)?);
    if enabled {
        return Err(Error::TotpState(
            "A second factor is already on. Turn it off first to set up another phone.",
        ));
    }
    let secret = totp::generate_secret()?;
    tx.execute(
        "UPDATE users SET totp_secret = $3, totp_last_step = NULL
         WHERE tenant_id = $1 AND user_id = $2",
        &[&token.tenant_id, &user_id, &secret.as_slice()],
    )
    .await?;
    tx.commit().await?;
    tracing::info!(tenant = %token.tenant_id, user = %user_id, "second factor set up, not yet confirmed");
    Ok(Json(TotpSetupResponse {
        secret: totp::base32(&secret),
        otpauth_uri: totp::otpauth_uri(&secret, &business, &email),
    }))
}

pub async fn confirm(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
    JsonBody(request): JsonBody<TotpCodeRequest>,
) -> Result<Response> {
    change_second_factor(
        &state,
        peer,
        &token,
        &headers,
        &request.code,
        Change::TurnOn,
    )
    .await
}

pub async fn disable(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
    JsonBody(request): JsonBody<TotpCodeRequest>,
) -> Result<Response> {
    change_second_factor(
        &state,
        peer,
        &token,
        &headers,
        &request.code,
        Change::TurnOff,
    )
    .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    TurnOn,
    TurnOff,
}

/// Confirms or removes the person's second factor with a code from it. Wrong codes are counted
/// like failed logins (per person and per address), so a session cannot guess its way through.
async fn change_second_factor(
    state: &AppState,
    peer: SocketAddr,
    token: &crate::token::SessionToken,
    headers: &HeaderMap,
    code: &str,
    change: Change,
) -> Result<Response> {
    auth::require_csrf(token, headers)?;
    let mut client = state.pool().get().await?;
    // Checked before the session itself, with keys that need no lookup; the person's key is
    // known once the session is.
    let address = Key::address(peer.ip());
    if let Some(retry_after_secs) = throttle::locked_for(&**client, &[address]).await? {
        return Err(Error::TooManyAttempts { retry_after_secs });
    }
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    // People's security changes take turns (users.rs): an administrator removing this
    // person's factor or disabling them at the same moment cannot deadlock with this.
    crate::routes::users::lock_people(&tx).await?;
    let (user_id, _) = auth::check_session(&tx, token).await?;
    let keys = [Key::second_factor(token.tenant_id, user_id), address];
    if let Some(retry_after_secs) = throttle::locked_for(&*tx, &keys).await? {
        return Err(Error::TooManyAttempts { retry_after_secs });
    }
    let row = tx
        .query_one(
            "SELECT totp_secret, totp_enabled_at IS NOT NULL, totp_last_step
             FROM users WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
            &[&token.tenant_id, &user_id],
        )
        .await?;
    let (secret, enabled, last_step): (Option<Vec<u8>>, bool, Option<i64>) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    let secret = match (change, secret, enabled) {
        (Change::TurnOn, Some(secret), false) => secret,
        (Change::TurnOn, _, true) => {
            return Err(Error::TotpState("The second factor is already on."));
        }
        (Change::TurnOn, None, false) => {
            return Err(Error::TotpState(
                "Set up the second factor first (POST /v1/auth/totp/setup).",
            ));
        }
        (Change::TurnOff, Some(secret), true) => secret,
        (Change::TurnOff, _, _) => {
            return Err(Error::TotpState("The second factor is not on."));
        }
    };
    if change == Change::TurnOff && admin_must_keep_it(&tx, user_id).await? {
        return Err(Error::TotpState(
            "Your business requires administrators to use a second factor: it cannot be turned off.",
        ));
    }
    let Some(step) = totp::verify(&secret, code, Utc::now().timestamp(), last_step) else {
        drop(tx);
        throttle::record_failure(&**client, &keys).await?;
        return Err(Error::TotpInvalid);
    };
    match change {
        Change::TurnOn => {
            tx.execute(
                "UPDATE users SET totp_enabled_at = now(), totp_last_step = $3
                 WHERE tenant_id = $1 AND user_id = $2",
                &[&token.tenant_id, &user_id, &step],
            )
            .await?
        }
        Change::TurnOff => {
            tx.execute(
                "UPDATE users SET totp_secret = NULL, totp_enabled_at = NULL,
                     totp_last_step = NULL
                 WHERE tenant_id = $1 AND user_id = $2",
                &[&token.tenant_id, &user_id],
            )
            .await?
        }
    };
    // A stronger or weaker login: every session of the person ends, this browser gets a new one.
    auth::revoke_sessions_of(&tx, user_id).await?;
    let business_name = auth::business_name(&tx).await?;
    let started = auth::start_session(&tx, token.tenant_id, user_id, business_name).await?;
    tx.commit().await?;
    throttle::clear(&**client, keys[0]).await?;
    tracing::info!(tenant = %token.tenant_id, user = %user_id, ?change, "second factor changed");
    started.into_response()
}

/// Whether the business requires `user_id` (an ADMIN) to keep a second factor.
async fn admin_must_keep_it(tx: &TenantTx<'_>, user_id: Uuid) -> Result<bool> {
    Ok(tx
        .query_one(
            "SELECT coalesce((SELECT require_admin_totp FROM business_settings
                              WHERE tenant_id = $1), false)
                    AND EXISTS (SELECT 1 FROM user_roles ur JOIN roles r USING (tenant_id, role_id)
                                WHERE ur.tenant_id = $1 AND ur.user_id = $2
                                  AND r.built_in AND r.name = $3)",
            &[&tx.tenant(), &user_id, &kaunter_core::access::ADMIN],
        )
        .await?
        .try_get(0)?)
}

/// `POST /v1/settings/security`: whether ADMINs must use a second factor. Turning it on does
/// not lock anyone out: an ADMIN without one may, at their next request, only set one up.
pub async fn security_settings(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
    JsonBody(request): JsonBody<SecuritySettings>,
) -> Result<Json<SecuritySettings>> {
    auth::require_csrf(&token, &headers)?;
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let person = auth::person(&tx, &token).await?;
    person.require(Permission::SettingsManage)?;
    let updated = tx
        .execute(
            "UPDATE business_settings SET require_admin_totp = $2 WHERE tenant_id = $1",
            &[&person.tenant_id, &request.require_admin_totp],
        )
        .await?;
    if updated != 1 {
        return Err(Error::Internal(
            "the business has no settings row".to_owned(),
        ));
    }
    tx.commit().await?;
    tracing::info!(tenant = %person.tenant_id, user = %person.user_id,
                   require_admin_totp = request.require_admin_totp, "security settings changed");
    Ok(Json(request))
}
