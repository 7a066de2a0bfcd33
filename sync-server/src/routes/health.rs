//! `GET /v1/health`: for load balancers and start-up scripts; also proves the database answers.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::AppState;
use crate::error::Result;

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Health {
    pub status: &'static str,
}

pub async fn health(State(state): State<AppState>) -> Result<Json<Health>> {
    let client = state.pool().get().await?;
    client.simple_query("SELECT 1").await?;
    Ok(Json(Health { status: "ok" }))
}
