//! `GET /v1/licence` (a desk): a fresh signed licence lease for the calling desk. Answered in
//! every subscription state (a desk in grace or suspended learns so from it), for a device
//! whose token checks out. After the answer's transaction commits, the business's e-mail
//! notices are looked at in the background (`notices::look_later`).

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
    let signed = crate::licence::issue(&tx, &device, Utc::now()).await?;
    tx.commit().await?;
    // Every round of every desk comes here, whatever the subscription's state: the business's
    // e-mail notices are looked at (at most once an hour) and whatever is waiting is sent, in
    // the background and in transactions of their own, so the answer never waits for them or
    // fails because of them.
    crate::notices::look_later(state.pool(), device.tenant_id, state.mailer());
    Ok(Json(signed))
}
