//! `GET /v1/sync/pull?cursor=N&limit=M`: a desk fetches the rows it may see that changed since
//! its cursor, in tenant change order, a page at a time. Resumable: the cursor is the last
//! change seq the desk has applied.
//!
//! State-based: a row is sent once, as it stands (its winning field writes, grouped by stamp),
//! however many changes it went through; the desk merges it field by field, which leaves it
//! where replaying every change would. So the change log keeps no bodies and a large branch's
//! first download is one pass over its rows.
//!
//! Scope: the tenant-wide rows (the catalogue) and the rows of the device's own branch, or of
//! every branch for a device enrolled with business scope; only entities the desk's schema
//! version knows. A cursor below the business's tombstone horizon is refused with
//! `resync_required` (410): the desk starts again from 0.

use axum::Json;
use axum::extract::State;
use kaunter_protocol::http::{Checkpoint, Entity, PullResponse, PullScope, PulledChange};
use kaunter_protocol::{ACCEPTED_SCHEMA_VERSIONS, SCHEMA_VERSION};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{self, Bearer, RowLock};
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::extract::QueryParams;
use crate::rows;

pub const DEFAULT_LIMIT: i64 = 500;
pub const MAX_LIMIT: i64 = 5000;

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
    let entities: Vec<Entity> = Entity::ALL
        .into_iter()
        .filter(|entity| entity.since_schema_version() <= version)
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
    crate::subscription::require(device.access, crate::subscription::SyncNeed::Pull)?;
    // The digest of what the desk is sent (its branch or every branch, plus the tenant-wide
    // rows) is that state after exactly the changes up to `as_of`. Digests add up (wrapping),
    // as the desk's own does over its rows.
    // A desk older than schema 4 has no guard against changing another branch's rows: it is
    // sent its own branch's, whatever its scope.
    let one_branch = device.scope == PullScope::Branch || version < 4;
    let snapshot = tx
        .query_one_cached(
            "SELECT catalogue_digest, change_seq, purged_seq FROM tenants WHERE tenant_id = $1",
            &[&device.tenant_id],
        )
        .await?;
    let (catalogue_digest, as_of, purged_seq): (i64, i64, i64) = (
        snapshot.try_get(0)?,
        snapshot.try_get(1)?,
        snapshot.try_get(2)?,
    );
    let mut digest = catalogue_digest as u64;
    for row in tx
        .query_cached(
            "SELECT state_digest FROM branches WHERE tenant_id = $1 AND ($3 OR branch_id = $2)",
            &[&device.tenant_id, &device.branch_id, &!one_branch],
        )
        .await?
    {
        let branch_digest: i64 = row.try_get(0)?;
        digest = digest.wrapping_add(branch_digest as u64);
    }
    // Changes of rows purged since the desk's cursor are gone: what it holds may include rows
    // deleted meanwhile, which it can no longer learn of change by change.
    if query.cursor > 0 && query.cursor < purged_seq {
        return Err(Error::ResyncRequired);
    }
    let page_size = usize::try_from(limit)
        .map_err(|_| Error::Internal("pull limit out of range".to_owned()))?;
    // Each entity's first `limit + 1` rows past the cursor; the page is the first `limit` of
    // them all in seq order (every row left out comes after it), and one more tells whether
    // there is another page. Seqs are unique across a business's rows.
    let mut found = Vec::new();
    for &entity in &entities {
        let rows = tx
            .query_cached(
                &rows::select_changed_sql(entity, one_branch),
                &[
                    &device.tenant_id,
                    &device.branch_id,
                    &query.cursor,
                    &as_of,
                    &(limit + 1),
                ],
            )
            .await?;
        for row in &rows {
            let (id, stored) = rows::decode_row(entity, row)?;
            found.push((stored.last_change_seq, entity, id, stored));
        }
    }
    found.sort_unstable_by_key(|(seq, ..)| *seq);
    let has_more = found.len() > page_size;
    found.truncate(page_size);
    let open_conflicts = crate::routes::conflicts::open_count(&tx, &device, version).await?;
    let remaining = if query.count {
        let mut counted = 0i64;
        for &entity in &entities {
            let in_table: i64 = tx
                .query_one_cached(
                    &rows::count_changed_sql(entity, one_branch),
                    &[&device.tenant_id, &device.branch_id, &query.cursor, &as_of],
                )
                .await?
                .try_get(0)?;
            counted += in_table;
        }
        Some(counted)
    } else {
        None
    };
    tx.commit().await?;

    let mut changes = Vec::with_capacity(found.len());
    for (seq, entity, id, stored) in &found {
        for (index, change) in rows::as_changes(*entity, *id, stored)
            .into_iter()
            .enumerate()
        {
            changes.push(PulledChange {
                cursor: *seq,
                change,
                // A version-2 desk rejects fields it does not know.
                created_at: (index == 0 && version >= 3).then_some(stored.created_at),
            });
        }
    }
    // On the last page the desk has seen every change of its branch up to `as_of`, whichever
    // branch the changes in between were for.
    let (next_cursor, checkpoint) = if has_more {
        (found.last().map_or(query.cursor, |(seq, ..)| *seq), None)
    } else {
        let cursor = query.cursor.max(as_of);
        // An older desk holds only some of the branch's entities: no digest covers just those.
        let checkpoint = (version == SCHEMA_VERSION).then(|| Checkpoint {
            cursor,
            digest: format!("{digest:016x}"),
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
