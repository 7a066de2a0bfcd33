//! People at the desk. `POST /v1/auth/pin` (a head-office session, CSRF): the person chooses
//! their desk PIN, kept as an Argon2id hash. `GET /v1/staff` (a desk): every ACTIVE person of
//! the business with a PIN, with what their roles allow and the PIN's hash, so the desk can
//! let them sign in while it is offline and check each command against their permissions.
//! The roster is answered whatever the subscription's state (it revokes access; it syncs no
//! data), so a person removed still loses their PIN at the desks of a suspended business.
//!
//! The hashes are of six digits, so a copy is guessable offline with enough time: desks keep
//! them encrypted under their data key (in the OS keyring), and a PIN opens only the desk.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use kaunter_protocol::http::{SetPinRequest, StaffMember, StaffResponse};

use crate::AppState;
use crate::auth::{self, Bearer, RowLock};
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::extract::JsonBody;
use crate::routes::auth::SessionCookie;
use crate::{password, validate};

pub async fn set_pin(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
    JsonBody(request): JsonBody<SetPinRequest>,
) -> Result<StatusCode> {
    crate::routes::auth::require_csrf(&token, &headers)?;
    kaunter_core::access::check_pin(&request.pin).map_err(|(code, message)| {
        Error::ValidationFailed(vec![validate::field_error("pin", code, message)])
    })?;
    let mut client = state.pool().get().await?;
    {
        let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
        crate::routes::auth::person(&tx, &token)
            .await?
            .require_ready()?;
        tx.commit().await?;
    }
    // Hashed with no transaction open, then stored if the session is still live.
    let hash = password::hash_off_thread(request.pin).await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let (user_id, _) = crate::routes::auth::check_session(&tx, &token).await?;
    tx.execute(
        "UPDATE users SET pin_hash = $3, pin_changed_at = now()
         WHERE tenant_id = $1 AND user_id = $2",
        &[&token.tenant_id, &user_id, &hash],
    )
    .await?;
    tx.commit().await?;
    tracing::info!(tenant = %token.tenant_id, user = %user_id, "desk PIN set");
    Ok(StatusCode::NO_CONTENT)
}

pub async fn roster(
    State(state): State<AppState>,
    Bearer(token): Bearer,
) -> Result<Json<StaffResponse>> {
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    // Served in every subscription state, suspended included: the roster is how a person
    // removed at head office loses their desk PIN, not data sync, so it must keep reaching desks
    // that no longer sync.
    auth::authenticate(&tx, &token, RowLock::None).await?;
    let rows = tx
        .query(
            "SELECT u.user_id, u.name, u.pin_hash,
                    coalesce(array_agg(DISTINCT r.name ORDER BY r.name)
                             FILTER (WHERE r.name IS NOT NULL), '{}'),
                    coalesce(array_agg(DISTINCT p.permission ORDER BY p.permission)
                             FILTER (WHERE p.permission IS NOT NULL), '{}')
             FROM users u
             LEFT JOIN user_roles ur ON ur.tenant_id = u.tenant_id AND ur.user_id = u.user_id
             LEFT JOIN roles r ON r.tenant_id = ur.tenant_id AND r.role_id = ur.role_id
             LEFT JOIN role_permissions p
                  ON p.tenant_id = ur.tenant_id AND p.role_id = ur.role_id
             WHERE u.tenant_id = $1 AND u.status = 'ACTIVE' AND u.pin_hash IS NOT NULL
             GROUP BY u.tenant_id, u.user_id
             ORDER BY u.name, u.user_id",
            &[&token.tenant_id],
        )
        .await?;
    let sign_in_required: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM users WHERE tenant_id = $1 AND pin_hash IS NOT NULL)",
            &[&token.tenant_id],
        )
        .await?
        .try_get(0)?;
    tx.commit().await?;
    let staff = rows
        .iter()
        .map(|row| {
            Ok(StaffMember {
                user_id: row.try_get(0)?,
                name: row.try_get(1)?,
                pin_verifier: row.try_get(2)?,
                roles: row.try_get(3)?,
                permissions: row.try_get(4)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Json(StaffResponse {
        staff,
        sign_in_required,
    }))
}
