//! The tombstone horizon: deleted rows whose last change is older than the horizon are removed
//! for good, so neither the database nor a fresh desk carries them forever (PDPA 2010's
//! retention principle asks as much of personal data). Their change-log entries stay: they
//! hold ids and sequence numbers, no values.
//!
//! The business's `purged_seq` records how far the purge has gone. A desk whose pull cursor is
//! below it may hold rows deleted meanwhile that pull can no longer send, so pull refuses it
//! (`resync_required`) and the desk downloads its branch again. A purged row's id is kept in
//! `purged_rows`, and push refuses any later change to it (`row_purged`): a desk that was away
//! cannot bring a deleted row back. Ledger entries are never deleted, so never purged. The
//! versions a conflict kept of a purged row, and the bodies of its refused changes, are blanked.

use std::collections::HashMap;
use std::time::Duration;

use kaunter_protocol::http::Entity;
use kaunter_protocol::merge::row_digest;
use serde::Serialize;
use uuid::Uuid;

use crate::db::{Pool, TenantTx};
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::rows;

/// The default horizon: 90 days.
pub const DEFAULT_HORIZON: Duration = Duration::from_secs(90 * 24 * 60 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// The business's horizon after the purge (a change seq).
    pub purged_seq: i64,
    /// Deleted rows removed. (Their change-log entries stay: they hold ids, not values, and
    /// tell which device wrote what.)
    pub rows: u64,
}

/// Purges the tombstones of `tenant` whose last change reached the server more than `horizon`
/// ago.
pub async fn purge_older_than(
    pool: &Pool,
    tenant: TenantId,
    horizon: Duration,
) -> Result<PurgeReport> {
    let seconds = i64::try_from(horizon.as_secs())
        .map_err(|_| Error::InvalidInput("the horizon is too long".to_owned()))?;
    let mut client = pool.get().await?;
    let tx = TenantTx::begin(&mut client, tenant).await?;
    let through: Option<i64> = tx
        .query_one(
            "SELECT max(last_seq) FROM change_batches
             WHERE tenant_id = $1 AND received_at < now() - $2::bigint * interval '1 second'",
            &[&tenant, &seconds],
        )
        .await?
        .try_get(0)?;
    tx.commit().await?;
    drop(client);
    purge_through(pool, tenant, through.unwrap_or(0)).await
}

/// Purges the tombstones of `tenant` whose last change seq is at most `through`, and moves the
/// business's horizon there (it never moves back).
pub async fn purge_through(pool: &Pool, tenant: TenantId, through: i64) -> Result<PurgeReport> {
    let mut client = pool.get().await?;
    let tx = TenantTx::begin(&mut client, tenant).await?;
    // The tenant row's lock: pushes of this business wait, so none lands on a row being purged.
    let purged_seq: i64 = tx
        .query_opt(
            "UPDATE tenants SET purged_seq = GREATEST(purged_seq, $2) WHERE tenant_id = $1
             RETURNING purged_seq",
            &[&tenant, &through],
        )
        .await?
        .ok_or(Error::UnknownTenant(tenant))?
        .try_get(0)?;
    let tenant_uuid = tenant.as_uuid();
    let mut report = PurgeReport {
        purged_seq,
        rows: 0,
    };
    for entity in [Entity::Patient, Entity::Appointment, Entity::CatalogueItem] {
        let (table, id_column) = match entity {
            Entity::Patient => ("patients", "patient_id"),
            Entity::Appointment => ("appointments", "appointment_id"),
            Entity::CatalogueItem => ("catalogue_items", "item_id"),
            Entity::CashMovement | Entity::ClinicalEntry => continue,
        };
        let found = tx
            .query(
                &rows::select_tombstones_sql(entity),
                &[&tenant_uuid, &purged_seq],
            )
            .await?;
        if found.is_empty() {
            continue;
        }
        let mut ids = Vec::with_capacity(found.len());
        let mut branches = Vec::with_capacity(found.len());
        let mut digests: HashMap<rows::DigestOf, u64> = HashMap::new();
        for row in &found {
            let (id, stored) = rows::decode_row(entity, row)?;
            let digest = digests
                .entry(rows::DigestOf::row(entity, stored.branch_id))
                .or_default();
            *digest = digest.wrapping_add(row_digest(id, &stored.record));
            ids.push(id);
            branches.push(stored.branch_id);
        }
        tx.execute(
            "INSERT INTO purged_rows (tenant_id, entity, row_id, branch_id)
             SELECT $1, $2, u.id, u.branch_id FROM unnest($3::uuid[], $4::uuid[]) AS u(id, branch_id)
             ON CONFLICT DO NOTHING",
            &[&tenant_uuid, &entity.as_str(), &ids, &branches],
        )
        .await?;
        report.rows += tx
            .execute(
                &format!("DELETE FROM {table} WHERE tenant_id = $1 AND {id_column} = ANY($2)"),
                &[&tenant_uuid, &ids],
            )
            .await?;
        // What else still holds the purged rows' personal data: the versions kept by their
        // conflicts and the bodies of their refused changes. The records stay (a replayed push
        // still gets its refusals back); their contents go.
        tx.execute(
            "UPDATE conflicts SET
                 version_a = CASE WHEN row_a = ANY($2) THEN '{}'::jsonb ELSE version_a END,
                 version_b = CASE WHEN row_b = ANY($2) THEN '{}'::jsonb ELSE version_b END
             WHERE tenant_id = $1 AND (row_a = ANY($2) OR row_b = ANY($2))",
            &[&tenant_uuid, &ids],
        )
        .await?;
        let id_texts: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        tx.execute(
            "UPDATE rejected_changes
             SET change = jsonb_build_object('entity', change->'entity', 'row_id', change->'row_id',
                                             'purged', true)
             WHERE tenant_id = $1 AND change->>'row_id' = ANY($2)",
            &[&tenant_uuid, &id_texts],
        )
        .await?;
        for (of, digest) in digests {
            rows::move_digest(&tx, tenant_uuid, of, digest, 0).await?;
        }
    }
    tx.commit().await?;
    tracing::info!(%tenant, purged_seq, rows = report.rows, "tombstones purged");
    Ok(report)
}
