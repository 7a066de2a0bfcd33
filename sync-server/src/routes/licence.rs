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
    let signed = crate::licence::issue(&tx, &device, Utc::now()).await?;
    tx.commit().await?;
    Ok(Json(signed))
}
