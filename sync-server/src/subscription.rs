//! A business's subscription as the server keeps it: the facts in `subscriptions` (one row per
//! business) and its switched-on modules, read and written here and nowhere else; the rules
//! over them (trial, expiry, grace, suspension, payments, limits) are kaunter-core's
//! `subscription` module, asked with the time of each request.
//!
//! What the state means for desks: FULL syncs both ways; READ_ONLY (grace) pulls, and a push is
//! refused with `subscription_read_only`; SUSPENDED refuses every sync route with
//! `subscription_suspended` (a desk's status report still reaches head office). Nothing is
//! deleted in any state, here or on the desks.

use chrono::{DateTime, Utc};
use kaunter_core::subscription::{
    Access, BillingCycle, Module, ModuleChange, Plan, PricingModel, Resource, Subscription,
    SubscriptionFacts, check_limit,
};

pub use kaunter_core::subscription::Usage;

use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::ids::TenantId;

/// The facts columns, in [`decode`]'s order.
pub const COLUMNS: &str = "s.plan, s.cycle, s.pricing, s.trial_ends_at, s.period_ends_at, \
     s.cancel_at_period_end, s.last_paid_at";

/// A subscription from [`COLUMNS`] starting at column `at` of `row`.
pub fn decode(row: &tokio_postgres::Row, at: usize) -> Result<Subscription> {
    let plan: String = row.try_get(at)?;
    let cycle: Option<String> = row.try_get(at + 1)?;
    let pricing: Option<String> = row.try_get(at + 2)?;
    let unknown = |what: &str, text: &str| Error::Internal(format!("stored {what} {text:?}"));
    let facts = SubscriptionFacts {
        plan: Plan::parse(&plan).ok_or_else(|| unknown("plan", &plan))?,
        cycle: cycle
            .as_deref()
            .map(|text| BillingCycle::parse(text).ok_or_else(|| unknown("cycle", text)))
            .transpose()?,
        pricing: pricing
            .as_deref()
            .map(|text| PricingModel::parse(text).ok_or_else(|| unknown("pricing", text)))
            .transpose()?,
        trial_ends_at: row.try_get(at + 3)?,
        period_ends_at: row.try_get(at + 4)?,
        cancel_at_period_end: row.try_get(at + 5)?,
        last_paid_at: row.try_get(at + 6)?,
    };
    Subscription::restore(facts)
        .map_err(|error| Error::Internal(format!("stored subscription: {error}")))
}

/// The business's subscription (every business has one from its first transaction).
pub async fn load(tx: &TenantTx<'_>, tenant: TenantId) -> Result<Subscription> {
    let row = tx
        .query_one_cached(
            &format!("SELECT {COLUMNS} FROM subscriptions s WHERE s.tenant_id = $1"),
            &[&tenant],
        )
        .await?;
    decode(&row, 0)
}

/// Writes the business's subscription facts (a new business's trial, or after a payment or a
/// cancellation).
pub async fn save(tx: &TenantTx<'_>, tenant: TenantId, subscription: &Subscription) -> Result<()> {
    let facts = subscription.facts();
    tx.execute(
        "INSERT INTO subscriptions (tenant_id, plan, cycle, pricing, trial_ends_at,
             period_ends_at, cancel_at_period_end, last_paid_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant_id) DO UPDATE SET plan = EXCLUDED.plan, cycle = EXCLUDED.cycle,
             pricing = EXCLUDED.pricing, trial_ends_at = EXCLUDED.trial_ends_at,
             period_ends_at = EXCLUDED.period_ends_at,
             cancel_at_period_end = EXCLUDED.cancel_at_period_end,
             last_paid_at = EXCLUDED.last_paid_at, updated_at = now()",
        &[
            &tenant,
            &facts.plan.as_str(),
            &facts.cycle.map(BillingCycle::as_str),
            &facts.pricing.map(PricingModel::as_str),
            &facts.trial_ends_at,
            &facts.period_ends_at,
            &facts.cancel_at_period_end,
            &facts.last_paid_at,
        ],
    )
    .await?;
    Ok(())
}

/// What a sync route needs of the business's subscription at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncNeed {
    /// Sending changes up: only with full access.
    Push,
    /// Receiving changes (pull, conflicts): also in grace. (The staff roster is not sync: it is
    /// served in every state.)
    Pull,
}

/// Refuses a sync route the subscription's `access` does not allow, each state with its own
/// error code.
pub fn require(access: Access, need: SyncNeed) -> Result<()> {
    match (access, need) {
        (Access::Full, _) | (Access::ReadOnly, SyncNeed::Pull) => Ok(()),
        (Access::ReadOnly, SyncNeed::Push) => Err(Error::SubscriptionReadOnly),
        (Access::Suspended, _) => Err(Error::SubscriptionSuspended),
    }
}

/// Refuses head office's change of what the subscription includes (its modules) unless the
/// subscription has full access, with the codes a desk's push gets: in grace
/// `subscription_read_only`, suspended `subscription_suspended`.
pub fn require_full_access(access: Access) -> Result<()> {
    require(access, SyncNeed::Push)
}

/// A new business's subscription: a trial from `started_at`, with `module` switched on.
pub async fn start(
    tx: &TenantTx<'_>,
    tenant: TenantId,
    started_at: DateTime<Utc>,
    module: Module,
) -> Result<Subscription> {
    let subscription = Subscription::trial(started_at);
    save(tx, tenant, &subscription).await?;
    tx.execute(
        "INSERT INTO subscription_modules (tenant_id, module) VALUES ($1, $2)",
        &[&tenant, &module.as_str()],
    )
    .await?;
    Ok(subscription)
}

/// What the business uses of its plan's limits: modules switched on, people with an account
/// that is not DISABLED, desks not removed.
pub async fn usage(tx: &TenantTx<'_>, tenant: TenantId) -> Result<Usage> {
    let row = tx
        .query_one(
            "SELECT (SELECT count(*) FROM subscription_modules WHERE tenant_id = $1),
                    (SELECT count(*) FROM users WHERE tenant_id = $1 AND status <> 'DISABLED'),
                    (SELECT count(*) FROM devices WHERE tenant_id = $1 AND revoked_at IS NULL)",
            &[&tenant],
        )
        .await?;
    let count = |at: usize| -> Result<u32> {
        let n: i64 = row.try_get(at)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    };
    Ok(Usage {
        modules: count(0)?,
        users: count(1)?,
        devices: count(2)?,
    })
}

/// The modules the business has switched on.
pub async fn modules(tx: &TenantTx<'_>, tenant: TenantId) -> Result<Vec<Module>> {
    tx.query(
        "SELECT module FROM subscription_modules WHERE tenant_id = $1 ORDER BY module",
        &[&tenant],
    )
    .await?
    .iter()
    .map(|row| {
        let text: String = row.try_get(0)?;
        Module::parse(&text).ok_or_else(|| Error::Internal(format!("stored module {text:?}")))
    })
    .collect()
}

/// Switches modules on and off as kaunter-core's `check_module_change` decided. The caller
/// holds the subscription row's lock (see [`require_room`]); a module that stays on keeps its
/// `enabled_at`.
pub async fn apply_module_change(
    tx: &TenantTx<'_>,
    tenant: TenantId,
    change: &ModuleChange,
) -> Result<()> {
    let spelled = |modules: &[Module]| modules.iter().map(|m| m.as_str()).collect::<Vec<_>>();
    if !change.switch_off.is_empty() {
        tx.execute(
            "DELETE FROM subscription_modules WHERE tenant_id = $1 AND module = ANY($2)",
            &[&tenant, &spelled(&change.switch_off)],
        )
        .await?;
    }
    if !change.switch_on.is_empty() {
        tx.execute(
            "INSERT INTO subscription_modules (tenant_id, module)
             SELECT $1, unnest($2::text[])",
            &[&tenant, &spelled(&change.switch_on)],
        )
        .await?;
    }
    Ok(())
}

/// Refuses adding one more `resource` when the business's plan has no room for it, with a
/// sentence that says which limit. The business's subscription row is locked first, so two
/// additions at once cannot both take the last place.
pub async fn require_room(tx: &TenantTx<'_>, tenant: TenantId, resource: Resource) -> Result<()> {
    tx.execute(
        "SELECT 1 FROM subscriptions WHERE tenant_id = $1 FOR UPDATE",
        &[&tenant],
    )
    .await?;
    let limits = load(tx, tenant).await?.limits();
    let in_use = usage(tx, tenant).await?;
    check_limit(&limits, &in_use, resource)
        .map_err(|exceeded| Error::PlanLimitReached(exceeded.to_string()))
}
