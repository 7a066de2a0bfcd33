//! Head office's view of its subscription: `GET /v1/subscription` (`settings.manage`) answers
//! with the plan, the state and what it allows, days left, the limits beside what is in use,
//! the modules, and the price list to choose from. Payments arrive through the payment
//! provider's webhook, not through this route.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use kaunter_core::access::Permission;
use kaunter_core::subscription::{Plan, Resource, State as SubscriptionState, terms};
use serde::Serialize;

use crate::AppState;
use crate::db::TenantTx;
use crate::error::Result;
use crate::routes::auth::{self, SessionCookie};
use crate::subscription;

/// One limit of the plan beside what the business uses of it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LimitView {
    /// MODULE, USER or DEVICE.
    pub resource: String,
    /// None: no limit.
    pub limit: Option<u32>,
    pub in_use: u32,
}

/// A module of the catalogue and whether this business has it switched on.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ModuleView {
    pub module: String,
    pub version: String,
    /// ACTIVE, INACTIVE or BETA.
    pub status: String,
    pub enabled: bool,
}

/// A plan of the price list (sen, MYR).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PlanView {
    pub plan: String,
    pub monthly_sen: i64,
    pub yearly_sen: i64,
    pub perpetual_sen: i64,
    pub limits: Vec<LimitView>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SubscriptionView {
    pub plan: String,
    /// TRIAL, ACTIVE, GRACE or SUSPENDED.
    pub state: String,
    /// FULL, READ_ONLY or SUSPENDED.
    pub access: String,
    /// Whole days left of the current stage (rounded up); None for a perpetual licence.
    pub days_left: Option<i64>,
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// When the access already granted ends (None: perpetual).
    pub period_ends_at: Option<DateTime<Utc>>,
    /// When the trial or period ended, once it has.
    pub expired_at: Option<DateTime<Utc>>,
    /// When a grace ends (and the business is suspended), while in grace.
    pub read_only_until: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub cycle: Option<String>,
    pub pricing: Option<String>,
    pub last_paid_at: Option<DateTime<Utc>>,
    pub limits: Vec<LimitView>,
    pub modules: Vec<ModuleView>,
    pub plans: Vec<PlanView>,
}

fn limit_views(
    limits: &kaunter_core::subscription::Limits,
    usage: Option<&subscription::Usage>,
) -> Vec<LimitView> {
    Resource::ALL
        .into_iter()
        .map(|resource| LimitView {
            resource: resource.as_str().to_owned(),
            limit: limits.of(resource),
            in_use: usage.map_or(0, |usage| usage.of(resource)),
        })
        .collect()
}

pub async fn show(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
) -> Result<Json<SubscriptionView>> {
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let person = auth::person(&tx, &token).await?;
    person.require(Permission::SettingsManage)?;
    let current = subscription::load(&tx, person.tenant_id).await?;
    let usage = subscription::usage(&tx, person.tenant_id).await?;
    let enabled = subscription::modules(&tx, person.tenant_id).await?;
    tx.commit().await?;
    let now = Utc::now();
    let at = current.state_at(now);
    let (expired_at, read_only_until) = match at {
        SubscriptionState::Grace {
            expired_at,
            read_only_until,
        } => (Some(expired_at), Some(read_only_until)),
        SubscriptionState::Suspended { expired_at, .. } => (Some(expired_at), None),
        SubscriptionState::Trial { .. } | SubscriptionState::Active { .. } => (None, None),
    };
    let facts = current.facts();
    Ok(Json(SubscriptionView {
        plan: facts.plan.as_str().to_owned(),
        state: at.as_str().to_owned(),
        access: at.access().as_str().to_owned(),
        days_left: current.days_left(now),
        trial_ends_at: facts.trial_ends_at,
        period_ends_at: facts.period_ends_at,
        expired_at,
        read_only_until,
        cancel_at_period_end: facts.cancel_at_period_end,
        cycle: facts.cycle.map(|cycle| cycle.as_str().to_owned()),
        pricing: facts.pricing.map(|pricing| pricing.as_str().to_owned()),
        last_paid_at: facts.last_paid_at,
        limits: limit_views(&current.limits(), Some(&usage)),
        modules: kaunter_core::subscription::module_catalogue()
            .iter()
            .map(|info| ModuleView {
                module: info.module.as_str().to_owned(),
                version: info.version.to_owned(),
                status: info.status.as_str().to_owned(),
                enabled: enabled.contains(&info.module),
            })
            .collect(),
        plans: Plan::ALL
            .into_iter()
            .map(|plan| {
                let terms = terms(plan);
                PlanView {
                    plan: plan.as_str().to_owned(),
                    monthly_sen: terms.monthly_sen,
                    yearly_sen: terms.yearly_sen,
                    perpetual_sen: terms.perpetual_sen,
                    limits: limit_views(&terms.limits, None),
                }
            })
            .collect(),
    }))
}
