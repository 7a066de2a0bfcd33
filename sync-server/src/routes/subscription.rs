//! Head office's subscription: `GET /v1/subscription` (`settings.manage`) answers with the
//! plan, the state and what it allows, days left, the limits beside what is in use, the module
//! catalogue with what is switched on, and the price list to choose from. `PUT
//! /v1/subscription/modules` (`settings.manage`, CSRF) switches modules on and off: the body is
//! the whole set wanted, kaunter-core's `check_module_change` judges it, and the answer is the
//! same view. Desks learn the new set from their next licence lease. Payments arrive through the
//! payment provider's webhook, not through these routes.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use kaunter_core::access::Permission;
use kaunter_core::subscription::{
    Module, Plan, Resource, State as SubscriptionState, check_module_change, module_catalogue,
    terms,
};
use kaunter_protocol::FieldError;
use kaunter_protocol::http::SetModulesRequest;
use serde::Serialize;

use crate::AppState;
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::extract::JsonBody;
use crate::ids::TenantId;
use crate::routes::auth::{self, SessionCookie};
use crate::subscription;
use crate::validate::field_error;

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
    let view = view(&tx, person.tenant_id, Utc::now()).await?;
    tx.commit().await?;
    Ok(Json(view))
}

pub async fn set_modules(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
    JsonBody(request): JsonBody<SetModulesRequest>,
) -> Result<Json<SubscriptionView>> {
    auth::require_csrf(&token, &headers)?;
    let wanted = parse_modules(&request.modules)?;
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let person = auth::person(&tx, &token).await?;
    person.require(Permission::SettingsManage)?;
    let tenant = person.tenant_id;
    // Locked, so two changes, or a change and a payment, queue; the set is read under the lock.
    tx.execute(
        "SELECT 1 FROM subscriptions WHERE tenant_id = $1 FOR UPDATE",
        &[&tenant],
    )
    .await?;
    let current = subscription::load(&tx, tenant).await?;
    let now = Utc::now();
    subscription::require_full_access(current.access(now))?;
    let on = subscription::modules(&tx, tenant).await?;
    let change = check_module_change(&on, &wanted, &current.limits(), module_catalogue())
        .map_err(Error::ModulesRefused)?;
    subscription::apply_module_change(&tx, tenant, &change).await?;
    let view = view(&tx, tenant, now).await?;
    tx.commit().await?;
    let names = |modules: &[Module]| modules.iter().map(|m| m.as_str()).collect::<Vec<_>>();
    tracing::info!(
        tenant = %tenant,
        user = %person.user_id,
        on = ?names(&change.switch_on),
        off = ?names(&change.switch_off),
        "modules changed"
    );
    Ok(Json(view))
}

/// Unknown names reported at most, so a body of thousands of them gets a short answer.
const UNKNOWN_NAMES_REPORTED: usize = 5;

/// The modules `names` spell, each exactly as the catalogue does; an unknown name is a field
/// error of `modules` (the first few are named).
fn parse_modules(names: &[String]) -> Result<Vec<Module>> {
    let mut modules = Vec::with_capacity(names.len().min(Module::ALL.len()));
    let mut errors: Vec<FieldError> = Vec::new();
    for name in names {
        match Module::parse(name) {
            Some(module) => {
                if !modules.contains(&module) {
                    modules.push(module);
                }
            }
            None if errors.len() >= UNKNOWN_NAMES_REPORTED => {}
            None => {
                let known: Vec<&str> = Module::ALL.iter().map(|m| m.as_str()).collect();
                // The name is shown as sent, cut short: it is the caller's own input.
                let shown: String = name.chars().take(40).collect();
                errors.push(field_error(
                    "modules",
                    "module_unknown",
                    &format!(
                        "{shown:?} is not a module; the modules are {}.",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(modules)
    } else {
        Err(Error::ValidationFailed(errors))
    }
}

/// The business's subscription as head office sees it at `now`.
async fn view(tx: &TenantTx<'_>, tenant: TenantId, now: DateTime<Utc>) -> Result<SubscriptionView> {
    let current = subscription::load(tx, tenant).await?;
    let usage = subscription::usage(tx, tenant).await?;
    let enabled = subscription::modules(tx, tenant).await?;
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
    Ok(SubscriptionView {
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
        modules: module_catalogue()
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
    })
}
