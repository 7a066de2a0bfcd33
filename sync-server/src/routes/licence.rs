//! `GET /v1/licence` (a desk): a fresh signed licence lease for the calling desk. Answered in
//! every subscription state (a desk in grace or suspended learns so from it), for a device
//! whose token checks out.

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use kaunter_protocol::http::SignedLicence;

use crate::AppState;
use crate::auth::{self, Bearer, RowLock};
use crate::db::TenantTx;
use crate::error::Result;

pub async fn licence(
    State(state): State<AppState>,
    Bearer(token): Bearer,
) -> Result<Json<SignedLicence>> {
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let device = auth::authenticate(&tx, &token, RowLock::None).await?;
    let now = Utc::now();
    let signed = crate::licence::issue(&tx, &device, now).await?;
    // Every round of every desk comes here, whatever the subscription's state: the business's
    // e-mail notices are looked at from here, at most once an hour.
    let look = crate::notices::claim_check(&tx, device.tenant_id).await?;
    if look {
        crate::notices::enqueue_due(&tx, device.tenant_id, now).await?;
    }
    // Anything waiting to be sent (a receipt, a notice whose retry is due) goes now too.
    let waiting = crate::notices::any_due(&tx, device.tenant_id).await?;
    tx.commit().await?;
    if waiting {
        crate::notices::deliver_later(state.pool(), device.tenant_id, state.mailer());
    }
    Ok(Json(signed))
}
