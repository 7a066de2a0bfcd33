//! Head office's branches: list them (any person of the business), add, rename and close them
//! (`branches.manage`), and issue a new desk's enrolment code for one (`devices.manage`).
//!
//! Closing never deletes: the branch's patients, bookings and cash entries stay, its desks keep
//! syncing what they hold until head office revokes them, and only new desks are refused (no
//! new codes; the unused ones stop working at enrolment). A branch id of another business is
//! "no such record", exactly like one that does not exist.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use kaunter_core::access::Permission;
use kaunter_protocol::http::{
    BranchView, BranchesResponse, CloseBranchRequest, EnrolmentCodeRequest, EnrolmentCodeResponse,
    NewBranchRequest, PullScope, RenameBranchRequest,
};

use crate::AppState;
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::extract::JsonBody;
use crate::ids::{BranchId, DeviceId};
use crate::routes::auth::{self, SessionCookie};
use crate::{admin, validate};

const BRANCH_NAME_MAX_CHARS: usize = 200;
/// Enrolment codes: 7 days unless asked otherwise, between an hour and 30 days.
const DEFAULT_CODE_HOURS: u32 = 7 * 24;
const MAX_CODE_HOURS: u32 = 30 * 24;

pub async fn list(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
) -> Result<Json<BranchesResponse>> {
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    auth::person(&tx, &token).await?.require_ready()?;
    let branches = branches_in(&tx, None).await?;
    tx.commit().await?;
    Ok(Json(BranchesResponse { branches }))
}

pub async fn add(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
    JsonBody(request): JsonBody<NewBranchRequest>,
) -> Result<(StatusCode, Json<BranchView>)> {
    auth::require_csrf(&token, &headers)?;
    let mut errors = Vec::new();
    let name = validate::head_office_name(
        &mut errors,
        "name",
        &request.name,
        BRANCH_NAME_MAX_CHARS,
        "Give the branch a name, e.g. \"Cawangan Bangsar\".",
    );
    let code = match request.code.as_deref().map(str::trim) {
        None | Some("") => Some(None),
        Some(code) => validate::branch_code(&mut errors, "code", code).map(Some),
    };
    let (Some(name), Some(code)) = (name, code) else {
        return Err(Error::ValidationFailed(errors));
    };
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let person = auth::person(&tx, &token).await?;
    person.require(Permission::BranchesManage)?;
    let branch_id = BranchId::new_v7();
    admin::insert_branch(&tx, branch_id, &name, code.as_deref()).await?;
    let view = one_branch(&tx, branch_id).await?;
    tx.commit().await?;
    tracing::info!(tenant = %person.tenant_id, user = %person.user_id, %branch_id, "branch added");
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn rename(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
    JsonBody(request): JsonBody<RenameBranchRequest>,
) -> Result<Json<BranchView>> {
    auth::require_csrf(&token, &headers)?;
    let mut errors = Vec::new();
    let name = validate::head_office_name(
        &mut errors,
        "name",
        &request.name,
        BRANCH_NAME_MAX_CHARS,
        "Give the branch a name.",
    )
    .ok_or(Error::ValidationFailed(errors))?;
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let person = auth::person(&tx, &token).await?;
    person.require(Permission::BranchesManage)?;
    let branch_id = BranchId::from_uuid(request.branch_id);
    let updated = tx
        .execute(
            "UPDATE branches SET name = $3 WHERE tenant_id = $1 AND branch_id = $2",
            &[&person.tenant_id, &branch_id, &name],
        )
        .await?;
    if updated == 0 {
        return Err(Error::UnknownRecord);
    }
    let view = one_branch(&tx, branch_id).await?;
    tx.commit().await?;
    tracing::info!(tenant = %person.tenant_id, user = %person.user_id, %branch_id, "branch renamed");
    Ok(Json(view))
}

/// Closing a closed branch changes nothing and gets the same answer.
pub async fn close(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CloseBranchRequest>,
) -> Result<Json<BranchView>> {
    auth::require_csrf(&token, &headers)?;
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let person = auth::person(&tx, &token).await?;
    person.require(Permission::BranchesManage)?;
    let branch_id = BranchId::from_uuid(request.branch_id);
    let updated = tx
        .execute(
            "UPDATE branches SET closed_at = coalesce(closed_at, now())
             WHERE tenant_id = $1 AND branch_id = $2",
            &[&person.tenant_id, &branch_id],
        )
        .await?;
    if updated == 0 {
        return Err(Error::UnknownRecord);
    }
    let view = one_branch(&tx, branch_id).await?;
    tx.commit().await?;
    tracing::info!(tenant = %person.tenant_id, user = %person.user_id, %branch_id, "branch closed");
    Ok(Json(view))
}

pub async fn enrolment_code(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
    JsonBody(request): JsonBody<EnrolmentCodeRequest>,
) -> Result<(StatusCode, Json<EnrolmentCodeResponse>)> {
    auth::require_csrf(&token, &headers)?;
    let hours = request.valid_hours.unwrap_or(DEFAULT_CODE_HOURS);
    if !(1..=MAX_CODE_HOURS).contains(&hours) {
        return Err(Error::ValidationFailed(vec![validate::field_error(
            "valid_hours",
            "out_of_range",
            "An enrolment code works for 1 hour to 30 days.",
        )]));
    }
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let person = auth::person(&tx, &token).await?;
    person.require(Permission::DevicesManage)?;
    // A desk that is sent every branch's records is as much as managing the branches.
    let scope = request.scope.unwrap_or(PullScope::Branch);
    if scope == PullScope::Business {
        person.require(Permission::BranchesManage)?;
    }
    let branch_id = BranchId::from_uuid(request.branch_id);
    // A reconnect code: for one removed desk of this branch, which keeps its scope.
    let replaces = request.replaces_device.map(DeviceId::from_uuid);
    if let Some(device) = replaces
        && admin::reconnectable_branch(&tx, device).await? != branch_id
    {
        return Err(Error::DeviceNotReplaceable);
    }
    let (code, expires_at) = match admin::create_enrolment_code_in(
        &tx,
        branch_id,
        i64::from(hours) * 3600,
        scope,
        replaces,
    )
    .await
    {
        Err(Error::UnknownBranch(_)) => return Err(Error::UnknownRecord),
        other => other?,
    };
    tx.commit().await?;
    tracing::info!(tenant = %person.tenant_id, user = %person.user_id, %branch_id,
                   scope = scope.as_str(), "enrolment code issued from head office");
    Ok((
        StatusCode::CREATED,
        Json(EnrolmentCodeResponse {
            code,
            branch_id: request.branch_id,
            expires_at,
            scope,
        }),
    ))
}

async fn one_branch(tx: &TenantTx<'_>, branch_id: BranchId) -> Result<BranchView> {
    branches_in(tx, Some(branch_id))
        .await?
        .pop()
        .ok_or(Error::UnknownRecord)
}

/// The business's branches (or the one asked for), open ones first, by name.
async fn branches_in(tx: &TenantTx<'_>, only: Option<BranchId>) -> Result<Vec<BranchView>> {
    let rows = tx
        .query(
            "SELECT b.branch_id, b.name, b.code, b.created_at, b.closed_at,
                    (SELECT count(*) FROM devices d
                     WHERE d.tenant_id = b.tenant_id AND d.branch_id = b.branch_id
                       AND d.revoked_at IS NULL)
             FROM branches b
             WHERE b.tenant_id = $1 AND ($2::uuid IS NULL OR b.branch_id = $2)
             ORDER BY b.closed_at IS NOT NULL, b.name, b.branch_id",
            &[&tx.tenant(), &only],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let devices: i64 = row.try_get(5)?;
            Ok(BranchView {
                branch_id: row.try_get(0)?,
                name: row.try_get(1)?,
                code: row.try_get(2)?,
                created_at: row.try_get(3)?,
                closed_at: row.try_get(4)?,
                active_devices: u32::try_from(devices).unwrap_or(u32::MAX),
            })
        })
        .collect()
}
