//! `POST /v1/enrol`: a new desk trades a single-use enrolment code for its device token.
//!
//! The caller is not yet anyone, so the tenant is not known when the transaction starts: it first
//! sees only the code row whose hash it knows, learns the tenant from it, and then continues as
//! that tenant (see [`crate::db::LookupTx`]).

use axum::Json;
use axum::extract::State;
use kaunter_protocol::http::{EnrolRequest, EnrolResponse, PullScope};

use crate::AppState;
use crate::db::LookupTx;
use crate::enrolment_code::EnrolmentCode;
use crate::error::{Error, Result};
use crate::extract::JsonBody;
use crate::ids::{BranchId, DeviceId, TenantId};
use crate::{token, validate};

pub async fn enrol(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<EnrolRequest>,
) -> Result<Json<EnrolResponse>> {
    let code = EnrolmentCode::parse(&request.code).ok_or(Error::EnrolmentCodeInvalid)?;
    let name_errors = validate::device_name(&request.device_name);
    if !name_errors.is_empty() {
        return Err(Error::ValidationFailed(name_errors));
    }
    let device_name = request.device_name.trim();
    let code_hash = code.hash();

    let mut client = state.pool().get().await?;
    let lookup = LookupTx::for_enrolment_code(&mut client, &code_hash).await?;
    // FOR UPDATE: of two desks racing with one code, the second waits, then finds it used.
    // Codes are 60 random bits, so two tenants sharing a hash is not a practical concern; the
    // LIMIT only keeps the query well-defined.
    let row = lookup
        .query_opt(
            "SELECT tenant_id, branch_id, scope, replaces_device FROM enrolment_codes
             WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now()
             ORDER BY tenant_id LIMIT 1
             FOR UPDATE",
            &[&code_hash.as_slice()],
        )
        .await?
        .ok_or(Error::EnrolmentCodeInvalid)?;
    let tenant_id: TenantId = row.try_get(0)?;
    let branch_id: BranchId = row.try_get(1)?;
    let scope_text: String = row.try_get(2)?;
    let scope = PullScope::parse(&scope_text)
        .ok_or_else(|| Error::Internal(format!("stored code scope {scope_text:?} is unknown")))?;
    // A reconnect code serves only the desk it was issued for, and only to reconnect; a plain
    // code only enrols a new desk.
    let code_replaces: Option<DeviceId> = row.try_get(3)?;
    if code_replaces.map(|device| device.as_uuid()) != request.replaces_device {
        return Err(Error::DeviceNotReplaceable);
    }

    let tx = lookup.into_tenant(tenant_id).await?;
    // A code issued before its branch closed stops working with the closing.
    let branch_open: bool = tx
        .query_one(
            "SELECT closed_at IS NULL FROM branches WHERE tenant_id = $1 AND branch_id = $2
             FOR SHARE",
            &[&tenant_id, &branch_id],
        )
        .await?
        .try_get(0)?;
    if !branch_open {
        return Err(Error::EnrolmentCodeInvalid);
    }
    // A new desk, or a removed one coming back, takes a place of the plan's desks.
    crate::subscription::require_room(&tx, tenant_id, kaunter_core::subscription::Resource::Device)
        .await?;
    let device_id = match request.replaces_device {
        None => DeviceId::new_v7(),
        Some(old) => DeviceId::from_uuid(old),
    };
    let issued = token::issue(tenant_id, device_id)?;
    let scope = if request.replaces_device.is_none() {
        tx.execute(
            "INSERT INTO devices (tenant_id, device_id, branch_id, name, token_hash, scope)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &tenant_id,
                &device_id,
                &branch_id,
                &device_name,
                &issued.secret_hash.as_slice(),
                &scope.as_str(),
            ],
        )
        .await?;
        tx.execute(
            "INSERT INTO device_marks (tenant_id, device_id) VALUES ($1, $2)",
            &[&tenant_id, &device_id],
        )
        .await?;
        scope
    } else {
        reinstate(
            &tx,
            device_id,
            branch_id,
            device_name,
            &issued,
            request.last_seq,
        )
        .await?
    };
    tx.execute(
        "UPDATE enrolment_codes SET used_at = now(), used_by_device = $3
         WHERE tenant_id = $1 AND code_hash = $2",
        &[&tenant_id, &code_hash.as_slice(), &device_id],
    )
    .await?;
    // Rotating credentials replace the long-lived token just stored with a short-lived one and
    // add a refresh token.
    let rotating = if request.rotating_credentials {
        Some(
            crate::routes::device_tokens::issue_credentials(
                &tx,
                device_id,
                state.access_token_ttl(),
            )
            .await?,
        )
    } else {
        None
    };
    let names = tx
        .query_one(
            "SELECT t.name, b.name FROM tenants t
             JOIN branches b ON b.tenant_id = t.tenant_id
             WHERE t.tenant_id = $1 AND b.branch_id = $2",
            &[&tenant_id, &branch_id],
        )
        .await?;
    let business_name: String = names.try_get(0)?;
    let branch_name: String = names.try_get(1)?;
    tx.commit().await?;

    tracing::info!(%tenant_id, %branch_id, %device_id,
                   again = request.replaces_device.is_some(), "device enrolled");
    Ok(Json(EnrolResponse {
        tenant_id: tenant_id.as_uuid(),
        branch_id: branch_id.as_uuid(),
        device_id: device_id.as_uuid(),
        access_expires_at: rotating.as_ref().map(|c| c.access_expires_at),
        device_token: match &rotating {
            Some(credentials) => credentials.access_token.clone(),
            None => issued.text,
        },
        refresh_token: rotating.map(|c| c.refresh_token),
        business_name,
        branch_name,
        scope,
    }))
}

/// Re-enrolment with the reconnect code head office issued for this desk: the revoked desk takes
/// its place again under its own device id, so its high-water mark, its outbox numbering and
/// its stamps all continue, and nothing it kept while it was shut out is lost or applied twice.
/// It keeps its scope. Refused when the server holds more of the device's changes than the desk
/// ever wrote (`last_seq`): another copy of the desk wrote them, and this desk's own changes
/// under those numbers would be taken for replays. Its old credentials stay dead: the token
/// hash is replaced and every refresh token it had is expired (an expired one is refused
/// without revoking anything, so an old copy cannot be used to shut the desk out again).
async fn reinstate(
    tx: &crate::db::TenantTx<'_>,
    device_id: DeviceId,
    branch_id: BranchId,
    device_name: &str,
    issued: &token::IssuedToken,
    last_seq: i64,
) -> Result<PullScope> {
    let tenant_id = tx.tenant();
    let found = tx
        .query_opt(
            "SELECT d.branch_id, d.revoked_at IS NOT NULL, m.high_water, d.scope
             FROM devices d JOIN device_marks m USING (tenant_id, device_id)
             WHERE d.tenant_id = $1 AND d.device_id = $2 FOR UPDATE",
            &[&tenant_id, &device_id],
        )
        .await?;
    let Some(found) = found else {
        return Err(Error::DeviceNotReplaceable);
    };
    let (branch, revoked, high_water): (BranchId, bool, i64) =
        (found.try_get(0)?, found.try_get(1)?, found.try_get(2)?);
    if branch != branch_id || !revoked {
        return Err(Error::DeviceNotReplaceable);
    }
    if high_water > last_seq {
        tracing::warn!(%tenant_id, %device_id, high_water, last_seq,
                       "a desk asked to reconnect, but more of its changes are on the server than it wrote");
        return Err(Error::DeviceWrittenElsewhere);
    }
    tx.execute(
        "UPDATE devices SET token_hash = $3, name = $4, revoked_at = NULL, token_expires_at = NULL
         WHERE tenant_id = $1 AND device_id = $2",
        &[
            &tenant_id,
            &device_id,
            &issued.secret_hash.as_slice(),
            &device_name,
        ],
    )
    .await?;
    tx.execute(
        "UPDATE device_refresh_tokens SET expires_at = least(expires_at, now())
         WHERE tenant_id = $1 AND device_id = $2",
        &[&tenant_id, &device_id],
    )
    .await?;
    let scope: String = found.try_get(3)?;
    PullScope::parse(&scope)
        .ok_or_else(|| Error::Internal(format!("stored device scope {scope:?} is unknown")))
}
