//! Head office's billing: `GET /v1/payments` lists the business's payments, newest first
//! (at most 200), `GET /v1/payments/invoice` shows one's invoice or refund note, and `POST /v1/subscription/cancel` (CSRF) cancels the paid subscription at
//! its period's end with kaunter-core's `Subscription::cancel`. Both need `settings.manage`;
//! row-level security keeps every other business's payments out of the list.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use kaunter_core::access::Permission;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::extract::QueryParams;
use crate::ids::PaymentId;
use crate::payments::{self, InvoiceView, PaymentView};
use crate::routes::auth::{self, SessionCookie};
use crate::subscription;

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PaymentsResponse {
    /// Newest first, at most 200.
    pub payments: Vec<PaymentView>,
}

pub async fn payments(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
) -> Result<Json<PaymentsResponse>> {
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    auth::person(&tx, &token)
        .await?
        .require(Permission::SettingsManage)?;
    let payments = payments::list(&tx).await?;
    tx.commit().await?;
    Ok(Json(PaymentsResponse { payments }))
}

/// Which payment's invoice to show.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceQuery {
    pub payment_id: PaymentId,
}

/// `GET /v1/payments/invoice?payment_id=…`: the invoice or refund note of one of the
/// business's payments. Another business's payment id finds nothing here (row-level security
/// and the tenant in the query), and is answered as any unknown id is.
pub async fn invoice(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    QueryParams(query): QueryParams<InvoiceQuery>,
) -> Result<Json<InvoiceView>> {
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    auth::person(&tx, &token)
        .await?
        .require(Permission::SettingsManage)?;
    let invoice = payments::invoice(&tx, query.payment_id).await?;
    tx.commit().await?;
    invoice.map(Json).ok_or(Error::UnknownRecord)
}

/// The subscription after a cancellation.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CancelResponse {
    pub plan: String,
    /// ACTIVE (cancelling) until the period's end, then GRACE and SUSPENDED.
    pub state: String,
    /// FULL until the period's end.
    pub access: String,
    pub cancel_at_period_end: bool,
    /// When the paid period, and with it the subscription, ends.
    pub period_ends_at: Option<DateTime<Utc>>,
    pub cycle: Option<String>,
    pub pricing: Option<String>,
    pub last_paid_at: Option<DateTime<Utc>>,
}

pub async fn cancel(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
) -> Result<Json<CancelResponse>> {
    auth::require_csrf(&token, &headers)?;
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let person = auth::person(&tx, &token).await?;
    person.require(Permission::SettingsManage)?;
    // Locked, so a payment arriving meanwhile is applied before or after, never lost.
    tx.execute(
        "SELECT 1 FROM subscriptions WHERE tenant_id = $1 FOR UPDATE",
        &[&person.tenant_id],
    )
    .await?;
    let mut current = subscription::load(&tx, person.tenant_id).await?;
    let now = Utc::now();
    current.cancel(now).map_err(Error::CancelRefused)?;
    subscription::save(&tx, person.tenant_id, &current).await?;
    tx.commit().await?;
    tracing::info!(tenant = %person.tenant_id, user = %person.user_id, "subscription cancelled");
    let at = current.state_at(now);
    let facts = current.facts();
    Ok(Json(CancelResponse {
        plan: facts.plan.as_str().to_owned(),
        state: at.as_str().to_owned(),
        access: at.access().as_str().to_owned(),
        cancel_at_period_end: facts.cancel_at_period_end,
        period_ends_at: facts.period_ends_at,
        cycle: facts.cycle.map(|cycle| cycle.as_str().to_owned()),
        pricing: facts.pricing.map(|pricing| pricing.as_str().to_owned()),
        last_paid_at: facts.last_paid_at,
    }))
}
