//! Head office's view of its desks: `GET /v1/devices` lists every desk of the business with its
//! sync state, `POST /v1/devices/revoke` revokes one. Both need a live session whose roles
//! allow `devices.manage`; revoking also needs the session's CSRF token. A device id of another
//! business is "no such record", exactly like one that does not exist.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use kaunter_core::access::Permission;
use kaunter_protocol::http::RevokeDeviceRequest;
use serde::Serialize;

use crate::AppState;
use crate::admin::{self, DeviceSyncStatus};
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::extract::JsonBody;
use crate::routes::auth::{self, SessionCookie};

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DevicesResponse {
    pub devices: Vec<DeviceSyncStatus>,
}

pub async fn list(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
) -> Result<Json<DevicesResponse>> {
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    auth::person(&tx, &token)
        .await?
        .require(Permission::DevicesManage)?;
    let devices = admin::sync_status_in(&tx).await?;
    tx.commit().await?;
    Ok(Json(DevicesResponse { devices }))
}

pub async fn revoke(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
    JsonBody(request): JsonBody<RevokeDeviceRequest>,
) -> Result<StatusCode> {
    auth::require_csrf(&token, &headers)?;
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let person = auth::person(&tx, &token).await?;
    person.require(Permission::DevicesManage)?;
    let updated = tx
        .execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, now())
             WHERE tenant_id = $1 AND device_id = $2",
            &[&person.tenant_id, &request.device_id],
        )
        .await?;
    if updated == 0 {
        return Err(Error::UnknownRecord);
    }
    tx.commit().await?;
    tracing::info!(tenant = %person.tenant_id, user = %person.user_id,
                   device = %request.device_id, "device revoked from head office");
    Ok(StatusCode::NO_CONTENT)
}
