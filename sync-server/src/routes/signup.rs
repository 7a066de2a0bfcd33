//! `POST /v1/signup`: a business signs itself up. One transaction makes the business (profile,
//! 7-day trial), its first branch, its settings, its default roles and their permissions, and
//! its first user with the ADMIN role: a half-made business never exists.
//!
//! The caller is nobody yet, so the transaction is scoped to the new business's id before it
//! writes anything (row-level security admits exactly those rows). A slug or name another
//! business already has is a field error; the unique indexes decide, so two sign-ups racing for
//! one slug cannot both win.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use kaunter_core::access::{ADMIN, default_roles};
use kaunter_core::business::{SignUpForm, TRIAL_DAYS, validate_sign_up};
use kaunter_protocol::FieldError;
use kaunter_protocol::http::{SignUpRequest, SignUpResponse};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::AppState;
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::extract::JsonBody;
use crate::ids::{BranchId, TenantId};
use crate::{admin, password};

pub async fn sign_up(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<SignUpRequest>,
) -> Result<(StatusCode, Json<SignUpResponse>)> {
    let form = SignUpForm {
        business_name: &request.business_name,
        slug: &request.slug,
        industry: &request.industry,
        email: &request.email,
        phone: &request.phone,
        address_line1: &request.address_line1,
        address_line2: &request.address_line2,
        postcode: &request.postcode,
        city: &request.city,
        state: &request.state,
        branch_name: &request.branch_name,
        admin_name: &request.admin_name,
        admin_email: &request.admin_email,
        admin_password: &request.admin_password,
        language: &request.language,
    };
    let valid = validate_sign_up(&form).map_err(|errors| {
        Error::ValidationFailed(
            errors
                .into_iter()
                .map(|e| field_error(e.field, e.code, e.message))
                .collect(),
        )
    })?;
    // Hashed before the transaction opens: no lock is held while Argon2 works.
    let password_hash = password::hash_off_thread(valid.admin_password.clone()).await?;
    let tenant_id = TenantId::new_v7();
    let branch_id = BranchId::new_v7();
    let user_id = Uuid::now_v7();

    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, tenant_id).await?;
    let inserted = tx
        .query_one(
            "INSERT INTO tenants (tenant_id, name, slug, industry, email, phone, address_line1,
                 address_line2, postcode, city, state, trial_ends_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                     now() + $12::bigint * interval '1 day')
             RETURNING trial_ends_at",
            &[
                &tenant_id,
                &valid.business_name,
                &valid.slug.as_str(),
                &valid.industry.as_str(),
                &valid.email.as_str(),
                &valid.phone.e164(),
                &valid.address_line1,
                &valid.address_line2,
                &valid.postcode,
                &valid.city,
                &valid.state,
                &TRIAL_DAYS,
            ],
        )
        .await;
    let trial_ends_at: DateTime<Utc> = match inserted {
        Ok(row) => row.try_get(0)?,
        Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            let constraint = error.as_db_error().and_then(|db| db.constraint());
            return Err(Error::ValidationFailed(vec![match constraint {
                Some("tenants_slug") => field_error(
                    "slug",
                    "slug_taken",
                    "Another business has this address. Choose another.",
                ),
                _ => field_error(
                    "business_name",
                    "name_taken",
                    "Another business is registered with this name.",
                ),
            }]));
        }
        Err(error) => return Err(error.into()),
    };
    // The subscription's trial is the business's: it started when the business did.
    crate::subscription::start(
        &tx,
        tenant_id,
        trial_ends_at - chrono::TimeDelta::days(TRIAL_DAYS),
        kaunter_core::subscription::Module::for_industry(valid.industry),
    )
    .await?;
    admin::insert_branch(&tx, branch_id, &valid.branch_name, None).await?;
    admin::insert_settings(&tx, valid.language).await?;
    let mut admin_role = None;
    for role in default_roles(valid.industry) {
        let role_id = Uuid::now_v7();
        if role.name == ADMIN {
            admin_role = Some(role_id);
        }
        tx.execute(
            "INSERT INTO roles (tenant_id, role_id, name, built_in) VALUES ($1, $2, $3, true)",
            &[&tenant_id, &role_id, &role.name],
        )
        .await?;
        let permissions: Vec<&str> = role.permissions.iter().map(|p| p.as_str()).collect();
        tx.execute(
            "INSERT INTO role_permissions (tenant_id, role_id, permission)
             SELECT $1, $2, unnest($3::text[])",
            &[&tenant_id, &role_id, &permissions],
        )
        .await?;
    }
    let admin_role =
        admin_role.ok_or_else(|| Error::Internal("no ADMIN among the default roles".to_owned()))?;
    tx.execute(
        "INSERT INTO users (tenant_id, user_id, email, email_key, name, status, password_hash,
             password_changed_at)
         VALUES ($1, $2, $3, $4, $5, 'ACTIVE', $6, now())",
        &[
            &tenant_id,
            &user_id,
            &valid.admin_email.as_str(),
            &valid.admin_email.key(),
            &valid.admin_name,
            &password_hash,
        ],
    )
    .await?;
    tx.execute(
        "INSERT INTO user_roles (tenant_id, user_id, role_id) VALUES ($1, $2, $3)",
        &[&tenant_id, &user_id, &admin_role],
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%tenant_id, slug = valid.slug.as_str(), "business signed up");
    Ok((
        StatusCode::CREATED,
        Json(SignUpResponse {
            tenant_id: tenant_id.as_uuid(),
            branch_id: branch_id.as_uuid(),
            user_id,
            slug: valid.slug.as_str().to_owned(),
            trial_ends_at,
        }),
    ))
}

fn field_error(field: &str, code: &str, message: &str) -> FieldError {
    FieldError {
        field: field.to_owned(),
        code: code.to_owned(),
        message: message.to_owned(),
    }
}
