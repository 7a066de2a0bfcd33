//! `GET /v1/sync/pull?cursor=N&limit=M`: a desk fetches the changes it may see, in tenant change
//! order, a page at a time. Resumable: the cursor is the last change seq the desk has applied.
//!
//! Scope for now: changes of the device's own branch (tenant-wide catalogues come later).

use axum::Json;
use axum::extract::State;
use kaunter_protocol::http::{Change, PullResponse, PulledChange};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{self, Bearer, RowLock};
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::extract::QueryParams;

pub const DEFAULT_LIMIT: i64 = 500;
pub const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullQuery {
    /// The last change seq the desk has; 0 (the default) means from the beginning.
    #[serde(default)]
    pub cursor: i64,
    /// Page size: default [`DEFAULT_LIMIT`], larger values are cut to [`MAX_LIMIT`].
    pub limit: Option<i64>,
}

pub async fn pull(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    QueryParams(query): QueryParams<PullQuery>,
) -> Result<Json<PullResponse>> {
    if query.cursor < 0 {
        return Err(Error::BadRequest("cursor must be 0 or more".to_owned()));
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    if limit < 1 {
        return Err(Error::BadRequest("limit must be 1 or more".to_owned()));
    }

    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let device = auth::authenticate(&tx, &token, RowLock::None).await?;
    // One row more than asked tells whether there is another page.
    let rows = tx
        .query(
            "SELECT seq, change FROM changes
             WHERE tenant_id = $1 AND branch_id = $2 AND seq > $3
             ORDER BY seq
             LIMIT $4",
            &[
                &device.tenant_id,
                &device.branch_id,
                &query.cursor,
                &(limit + 1),
            ],
        )
        .await?;
    let open_conflicts = crate::routes::conflicts::open_count(&tx, &device).await?;
    tx.commit().await?;

    let page_size = usize::try_from(limit)
        .map_err(|_| Error::Internal("pull limit out of range".to_owned()))?;
    let has_more = rows.len() > page_size;
    let mut changes = Vec::with_capacity(page_size.min(rows.len()));
    for row in rows.iter().take(page_size) {
        let change: Change = serde_json::from_value(row.try_get(1)?).map_err(|error| {
            Error::Internal(format!("a stored change does not decode: {error}"))
        })?;
        changes.push(PulledChange {
            cursor: row.try_get(0)?,
            change,
        });
    }
    let next_cursor = changes.last().map_or(query.cursor, |change| change.cursor);
    Ok(Json(PullResponse {
        changes,
        next_cursor,
        has_more,
        open_conflicts,
    }))
}
