//! `POST /v1/sync/status`: a desk reports its own sync state (backlog, refusals, last success,
//! last error) after a round; head office reads it with [`crate::admin::sync_status`].

use axum::Json;
use axum::extract::State;
use kaunter_protocol::http::DeskStatusReport;
use serde::Serialize;

use crate::AppState;
use crate::auth::{self, Bearer, RowLock};
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::extract::JsonBody;

pub const LAST_ERROR_MAX_CHARS: usize = 500;
const APP_VERSION_MAX_CHARS: usize = 40;

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Recorded {
    pub recorded: bool,
}

pub async fn report(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    JsonBody(report): JsonBody<DeskStatusReport>,
) -> Result<Json<Recorded>> {
    if report
        .last_error
        .as_ref()
        .is_some_and(|error| error.chars().count() > LAST_ERROR_MAX_CHARS)
    {
        return Err(Error::BadRequest(format!(
            "last_error is longer than {LAST_ERROR_MAX_CHARS} characters"
        )));
    }
    if report.app_version.chars().count() > APP_VERSION_MAX_CHARS {
        return Err(Error::BadRequest(format!(
            "app_version is longer than {APP_VERSION_MAX_CHARS} characters"
        )));
    }
    if report.app_version.contains('\0') {
        return Err(Error::BadRequest(
            "app_version holds a NUL character".to_owned(),
        ));
    }
    // The desk's last error is free text (an operating system's message, say): PostgreSQL text
    // cannot hold U+0000, so a NUL in it is kept as U+FFFD rather than losing the report.
    let last_error = report
        .last_error
        .as_deref()
        .map(|error| error.replace('\0', "\u{fffd}"));
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let device = auth::authenticate(&tx, &token, RowLock::None).await?;
    let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    tx.execute(
        "UPDATE devices SET status_reported_at = now(), status_pending = $3,
             status_refused = $4, status_oldest_pending = $5, status_last_synced_at = $6,
             status_last_error = $7, status_schema_version = $8, status_app_version = $9,
             last_seen_at = now()
         WHERE tenant_id = $1 AND device_id = $2",
        &[
            &device.tenant_id,
            &device.device_id,
            &count(report.pending),
            &count(report.refused),
            &report.oldest_pending_at,
            &report.last_synced_at,
            &last_error,
            &i32::try_from(report.schema_version).unwrap_or(i32::MAX),
            &report.app_version,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(Json(Recorded { recorded: true }))
}
