//! `GET /v1/sync/pull?cursor=N&limit=M`: a desk fetches the changes it may see, in tenant change
//! order, a page at a time. Resumable: the cursor is the last change seq the desk has applied.
//!
//! Scope for now: changes of the device's own branch (tenant-wide catalogues come later), of the
//! entities the desk's schema version knows. A cursor below the business's tombstone horizon is
//! refused with `resync_required` (410): the desk starts again from 0.

use axum::Json;
use axum::extract::State;
use kaunter_protocol::http::{Change, Checkpoint, Entity, PullResponse, PulledChange};
use kaunter_protocol::{ACCEPTED_SCHEMA_VERSIONS, SCHEMA_VERSION};
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
    /// Also count the changes from the cursor on (a desk asks on the first page of a round).
    #[serde(default)]
    pub count: bool,
    /// The client schema version the desk speaks; absent means 2, the last version that did
    /// not send it. A desk is sent only the entities its version knows.
    pub schema_version: Option<u32>,
}

pub async fn pull(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    QueryParams(query): QueryParams<PullQuery>,
) -> Result<Json<PullResponse>> {
    if query.cursor < 0 {
        return Err(Error::BadRequest("cursor must be 0 or more".to_owned()));
    }
    let version = query.schema_version.unwrap_or(2);
    if !ACCEPTED_SCHEMA_VERSIONS.contains(&version) {
        return Err(Error::UnsupportedSchemaVersion(version));
    }
    let entities: Vec<&str> = Entity::ALL
        .into_iter()
        .filter(|entity| entity.since_schema_version() <= version)
        .map(Entity::as_str)
        .collect();
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    if limit < 1 {
        return Err(Error::BadRequest("limit must be 1 or more".to_owned()));
    }

    let mut client = state.pool().get().await?;
    // One snapshot for every query below: the digest, the horizon and the changes agree even
    // when a push or a purge commits meanwhile.
    let tx = TenantTx::begin_snapshot(&mut client, token.tenant_id).await?;
    let device = auth::authenticate(&tx, &token, RowLock::None).await?;
    // The branch's digest is its state after exactly the changes up to `as_of`.
    let snapshot = tx
        .query_one(
            "SELECT b.state_digest, t.change_seq, t.purged_seq FROM branches b
             JOIN tenants t ON t.tenant_id = b.tenant_id
             WHERE b.tenant_id = $1 AND b.branch_id = $2",
            &[&device.tenant_id, &device.branch_id],
        )
        .await?;
    let (digest, as_of, purged_seq): (i64, i64, i64) = (
        snapshot.try_get(0)?,
        snapshot.try_get(1)?,
        snapshot.try_get(2)?,
    );
    // Changes of rows purged since the desk's cursor are gone: what it holds may include rows
    // deleted meanwhile, which it can no longer learn of change by change.
    if query.cursor > 0 && query.cursor < purged_seq {
        return Err(Error::ResyncRequired);
    }
    // One row more than asked tells whether there is another page.
    let rows = tx
        .query(
            "SELECT seq, change FROM changes
             WHERE tenant_id = $1 AND branch_id = $2 AND seq > $3 AND seq <= $5
               AND entity = ANY($6)
             ORDER BY seq
             LIMIT $4",
            &[
                &device.tenant_id,
                &device.branch_id,
                &query.cursor,
                &(limit + 1),
                &as_of,
                &entities,
            ],
        )
        .await?;
    let open_conflicts = crate::routes::conflicts::open_count(&tx, &device, version).await?;
    let remaining = if query.count {
        let counted: i64 = tx
            .query_one(
                "SELECT count(*) FROM changes
                 WHERE tenant_id = $1 AND branch_id = $2 AND seq > $3 AND seq <= $4
                   AND entity = ANY($5)",
                &[
                    &device.tenant_id,
                    &device.branch_id,
                    &query.cursor,
                    &as_of,
                    &entities,
                ],
            )
            .await?
            .try_get(0)?;
        Some(counted)
    } else {
        None
    };
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
    // On the last page the desk has seen every change of its branch up to `as_of`, whichever
    // branch the changes in between were for.
    let (next_cursor, checkpoint) = if has_more {
        (
            changes.last().map_or(query.cursor, |change| change.cursor),
            None,
        )
    } else {
        let cursor = query.cursor.max(as_of);
        // An older desk holds only some of the branch's entities: no digest covers just those.
        let checkpoint = (version == SCHEMA_VERSION).then(|| Checkpoint {
            cursor,
            digest: format!("{:016x}", digest as u64),
        });
        (cursor, checkpoint)
    };
    Ok(Json(PullResponse {
        changes,
        next_cursor,
        has_more,
        open_conflicts,
        remaining,
        checkpoint,
        purged_seq: (version >= 3).then_some(purged_seq),
    }))
}
