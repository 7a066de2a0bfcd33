//! Head office's people (`users.manage`): list them and the roles they can be given, invite a
//! new person (PENDING until they accept with a password of their own), set a person ACTIVE,
//! INACTIVE or DISABLED, replace their roles, and remove a lost second factor.
//!
//! Rules that hold whatever the order of requests:
//! - the business always keeps at least one ACTIVE person with the built-in ADMIN role (checked
//!   after the change, under a per-business lock, inside its transaction);
//! - a change of a person's roles, status or second factor ends all their sessions; when the
//!   person is the caller, the answer carries a new session cookie;
//! - nobody changes their own status;
//! - a user or role id of another business is "no such record", like one that does not exist.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kaunter_core::access::{self, Permission};
use kaunter_core::business::{Email, check_password};
use kaunter_core::subscription::Resource;
use kaunter_protocol::http::{
    AcceptInvitationRequest, InvitationResponse, InviteUserRequest, ReinviteUserRequest,
    ResetUserTotpRequest, RoleRef, RoleView, RolesResponse, SetUserRolesRequest,
    SetUserStatusRequest, UserStatus, UserView, UsersResponse,
};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::AppState;
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::extract::JsonBody;
use crate::routes::auth::{self, Person, SessionCookie};
use crate::token::{self, InvitationToken};
use crate::{password, validate};

const PERSON_NAME_MAX_CHARS: usize = 200;
/// An invitation works for a week.
const INVITATION_DAYS: i64 = 7;

pub async fn list(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
) -> Result<Json<UsersResponse>> {
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    auth::person(&tx, &token)
        .await?
        .require(Permission::UsersManage)?;
    let users = users_in(&tx, None).await?;
    tx.commit().await?;
    Ok(Json(UsersResponse { users }))
}

pub async fn roles(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
) -> Result<Json<RolesResponse>> {
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    auth::person(&tx, &token)
        .await?
        .require(Permission::UsersManage)?;
    let rows = tx
        .query(
            "SELECT r.role_id, r.name, r.built_in,
                    coalesce(array_agg(p.permission ORDER BY p.permission)
                             FILTER (WHERE p.permission IS NOT NULL), '{}')
             FROM roles r LEFT JOIN role_permissions p USING (tenant_id, role_id)
             WHERE r.tenant_id = $1
             GROUP BY r.role_id, r.name, r.built_in
             ORDER BY r.name",
            &[&token.tenant_id],
        )
        .await?;
    tx.commit().await?;
    let roles = rows
        .iter()
        .map(|row| {
            Ok(RoleView {
                role_id: row.try_get(0)?,
                name: row.try_get(1)?,
                built_in: row.try_get(2)?,
                permissions: row.try_get(3)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Json(RolesResponse { roles }))
}

pub async fn invite(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
    JsonBody(request): JsonBody<InviteUserRequest>,
) -> Result<(StatusCode, Json<InvitationResponse>)> {
    auth::require_csrf(&token, &headers)?;
    let mut errors = Vec::new();
    let name = validate::head_office_name(
        &mut errors,
        "name",
        &request.name,
        PERSON_NAME_MAX_CHARS,
        "Enter the person's name.",
    );
    let email = match Email::parse(&request.email) {
        Ok(email) => Some(email),
        Err((code, message)) => {
            errors.push(validate::field_error("email", code, message));
            None
        }
    };
    if request.role_ids.is_empty() {
        errors.push(no_role_error());
    }
    let (Some(name), Some(email), true) = (name, email, errors.is_empty()) else {
        return Err(Error::ValidationFailed(errors));
    };

    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    lock_people(&tx).await?;
    let person = auth::person(&tx, &token).await?;
    person.require(Permission::UsersManage)?;
    // Everyone who is not DISABLED counts against the plan's people.
    crate::subscription::require_room(&tx, person.tenant_id, Resource::User).await?;
    let user_id = Uuid::now_v7();
    let issued = token::issue_invitation(person.tenant_id, user_id)?;
    let inserted = tx
        .query_one(
            "INSERT INTO users (tenant_id, user_id, email, email_key, name, status, invited_by,
                 invitation_hash, invitation_expires_at, status_changed_at)
             VALUES ($1, $2, $3, $4, $5, 'PENDING', $6, $7,
                     now() + $8::bigint * interval '1 day', now())
             RETURNING invitation_expires_at",
            &[
                &person.tenant_id,
                &user_id,
                &email.as_str(),
                &email.key(),
                &name,
                &person.user_id,
                &issued.secret_hash.as_slice(),
                &INVITATION_DAYS,
            ],
        )
        .await;
    let expires_at = match inserted {
        Ok(row) => row.try_get(0)?,
        // Unique within this business only: another business's people are never compared.
        Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Err(Error::ValidationFailed(vec![validate::field_error(
                "email",
                "email_taken",
                "Someone in this business already has this e-mail address.",
            )]));
        }
        Err(error) => return Err(error.into()),
    };
    set_roles(&tx, user_id, &request.role_ids).await?;
    let user = one_user(&tx, user_id).await?;
    tx.commit().await?;
    tracing::info!(tenant = %person.tenant_id, by = %person.user_id, %user_id, "person invited");
    Ok((
        StatusCode::CREATED,
        Json(InvitationResponse {
            user,
            invitation_token: issued.text,
            expires_at,
        }),
    ))
}

/// A new invitation for a person still PENDING (the last one expired or went astray).
pub async fn reinvite(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
    JsonBody(request): JsonBody<ReinviteUserRequest>,
) -> Result<Json<InvitationResponse>> {
    auth::require_csrf(&token, &headers)?;
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    lock_people(&tx).await?;
    let person = auth::person(&tx, &token).await?;
    person.require(Permission::UsersManage)?;
    let (status, has_password) = status_of(&tx, request.user_id).await?;
    // A person still waiting, or one whose invitation was withdrawn before they accepted it.
    let invitable = status == access::UserStatus::Pending
        || (status == access::UserStatus::Disabled && !has_password);
    if !invitable {
        return Err(Error::ValidationFailed(vec![validate::field_error(
            "user_id",
            "not_pending",
            "This person has already accepted an invitation.",
        )]));
    }
    if status == access::UserStatus::Disabled {
        crate::subscription::require_room(&tx, person.tenant_id, Resource::User).await?;
    }
    let issued = token::issue_invitation(person.tenant_id, request.user_id)?;
    let expires_at = tx
        .query_one(
            "UPDATE users SET status = 'PENDING', invited_by = $5, invitation_hash = $3,
                 invitation_expires_at = now() + $4::bigint * interval '1 day'
             WHERE tenant_id = $1 AND user_id = $2
             RETURNING invitation_expires_at",
            &[
                &person.tenant_id,
                &request.user_id,
                &issued.secret_hash.as_slice(),
                &INVITATION_DAYS,
                &person.user_id,
            ],
        )
        .await?
        .try_get(0)?;
    let user = one_user(&tx, request.user_id).await?;
    tx.commit().await?;
    tracing::info!(tenant = %person.tenant_id, by = %person.user_id, user = %request.user_id,
                   "invitation sent again");
    Ok(Json(InvitationResponse {
        user,
        invitation_token: issued.text,
        expires_at,
    }))
}

/// `POST /v1/invitations/accept`: anyone holding the token. The password is checked against
/// the policy (and the person's e-mail and the business's slug) before anything changes.
pub async fn accept(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<AcceptInvitationRequest>,
) -> Result<StatusCode> {
    let invitation =
        InvitationToken::parse(&request.token).map_err(|_| Error::InvitationInvalid)?;
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, invitation.tenant_id).await?;
    let row = tx
        .query_opt(
            "SELECT u.email, t.slug, t.status FROM users u JOIN tenants t USING (tenant_id)
             WHERE u.tenant_id = $1 AND u.user_id = $2 AND u.status = 'PENDING'
               AND u.invitation_hash = $3 AND u.invitation_expires_at > now()",
            &[
                &invitation.tenant_id,
                &invitation.user_id,
                &invitation.secret_hash().as_slice(),
            ],
        )
        .await?
        .ok_or(Error::InvitationInvalid)?;
    let (email, slug, business_status): (String, Option<String>, String) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    tx.commit().await?;
    if business_status != "active" {
        return Err(Error::BusinessNotActive);
    }
    check_password(&request.password, &[&email, slug.as_deref().unwrap_or("")]).map_err(
        |(code, message)| {
            Error::ValidationFailed(vec![validate::field_error("password", code, message)])
        },
    )?;
    // Hashed with no transaction open; the update then takes the invitation only if it is
    // still the same one, unused and unexpired.
    let hash = password::hash_off_thread(request.password).await?;
    let tx = TenantTx::begin(&mut client, invitation.tenant_id).await?;
    let updated = tx
        .execute(
            "UPDATE users SET status = 'ACTIVE', password_hash = $4, password_changed_at = now(),
                 invitation_hash = NULL, invitation_expires_at = NULL, status_changed_at = now()
             WHERE tenant_id = $1 AND user_id = $2 AND status = 'PENDING'
               AND invitation_hash = $3 AND invitation_expires_at > now()",
            &[
                &invitation.tenant_id,
                &invitation.user_id,
                &invitation.secret_hash().as_slice(),
                &hash,
            ],
        )
        .await?;
    if updated != 1 {
        return Err(Error::InvitationInvalid);
    }
    tx.commit().await?;
    tracing::info!(tenant = %invitation.tenant_id, user = %invitation.user_id, "invitation accepted");
    Ok(StatusCode::NO_CONTENT)
}

pub async fn set_status(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
    JsonBody(request): JsonBody<SetUserStatusRequest>,
) -> Result<Json<UserView>> {
    auth::require_csrf(&token, &headers)?;
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    // Locked first, so the caller's own privileges are read after any change that won the lock.
    lock_people(&tx).await?;
    let person = auth::person(&tx, &token).await?;
    person.require(Permission::UsersManage)?;
    let (from, has_password) = status_of(&tx, request.user_id).await?;
    let to = core_status(request.status);
    if to == access::UserStatus::Active && !has_password {
        // A withdrawn invitation: the person never chose a password, so ACTIVE would be an
        // account nobody can log in to (and would count as an ADMIN). Invite them again.
        return Err(Error::ValidationFailed(vec![validate::field_error(
            "status",
            "invitation_not_accepted",
            "This person never accepted their invitation; send a new one instead.",
        )]));
    }
    access::check_status_change(from, to, request.user_id == person.user_id).map_err(
        |refused| {
            Error::ValidationFailed(vec![validate::field_error(
                "status",
                refused.code(),
                refused.message(),
            )])
        },
    )?;
    if from == access::UserStatus::Disabled && to != access::UserStatus::Disabled {
        // Back from DISABLED: counts against the plan's people again.
        crate::subscription::require_room(&tx, person.tenant_id, Resource::User).await?;
    }
    if from != to {
        tx.execute(
            "UPDATE users SET status = $3, status_changed_at = now(),
                 invitation_hash = CASE WHEN $3 = 'PENDING' THEN invitation_hash END,
                 invitation_expires_at = CASE WHEN $3 = 'PENDING' THEN invitation_expires_at END
             WHERE tenant_id = $1 AND user_id = $2",
            &[&person.tenant_id, &request.user_id, &to.as_str()],
        )
        .await?;
        if to != access::UserStatus::Active {
            auth::revoke_sessions_of(&tx, request.user_id).await?;
        }
        require_an_admin(&tx).await?;
        withdraw_orphaned_invitations(&tx).await?;
    }
    let user = one_user(&tx, request.user_id).await?;
    tx.commit().await?;
    tracing::info!(tenant = %person.tenant_id, by = %person.user_id, user = %request.user_id,
                   from = from.as_str(), to = to.as_str(), "status changed");
    Ok(Json(user))
}

pub async fn set_user_roles(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
    JsonBody(request): JsonBody<SetUserRolesRequest>,
) -> Result<Response> {
    auth::require_csrf(&token, &headers)?;
    if request.role_ids.is_empty() {
        return Err(Error::ValidationFailed(vec![no_role_error()]));
    }
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    // Locked first, so the caller's own privileges are read after any change that won the lock.
    lock_people(&tx).await?;
    let person = auth::person(&tx, &token).await?;
    person.require(Permission::UsersManage)?;
    status_of(&tx, request.user_id).await?;
    tx.execute(
        "DELETE FROM user_roles WHERE tenant_id = $1 AND user_id = $2",
        &[&person.tenant_id, &request.user_id],
    )
    .await?;
    set_roles(&tx, request.user_id, &request.role_ids).await?;
    require_an_admin(&tx).await?;
    withdraw_orphaned_invitations(&tx).await?;
    let renewed = privileges_changed(&tx, &person, request.user_id).await?;
    let user = one_user(&tx, request.user_id).await?;
    tx.commit().await?;
    tracing::info!(tenant = %person.tenant_id, by = %person.user_id, user = %request.user_id,
                   "roles changed");
    let mut response = Json(user).into_response();
    if let Some(renewed) = renewed {
        // The caller's new session: its cookie, and its CSRF token for the next change.
        let headers = response.headers_mut();
        headers.insert(
            header::SET_COOKIE,
            HeaderValue::from_str(renewed.cookie())
                .map_err(|error| Error::Internal(format!("session cookie: {error}")))?,
        );
        headers.insert(
            auth::CSRF_HEADER,
            HeaderValue::from_str(&renewed.view.csrf_token)
                .map_err(|error| Error::Internal(format!("CSRF token: {error}")))?,
        );
    }
    Ok(response)
}

/// Removes another person's second factor (a lost phone). One's own is turned off with a
/// current code instead (`/v1/auth/totp/disable`).
pub async fn reset_totp(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
    JsonBody(request): JsonBody<ResetUserTotpRequest>,
) -> Result<Json<UserView>> {
    auth::require_csrf(&token, &headers)?;
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    lock_people(&tx).await?;
    let person = auth::person(&tx, &token).await?;
    person.require(Permission::UsersManage)?;
    status_of(&tx, request.user_id).await?;
    if request.user_id == person.user_id {
        return Err(Error::ValidationFailed(vec![validate::field_error(
            "user_id",
            "own_second_factor",
            "Turn your own second factor off with a code from it.",
        )]));
    }
    tx.execute(
        "UPDATE users SET totp_secret = NULL, totp_enabled_at = NULL, totp_last_step = NULL
         WHERE tenant_id = $1 AND user_id = $2",
        &[&person.tenant_id, &request.user_id],
    )
    .await?;
    auth::revoke_sessions_of(&tx, request.user_id).await?;
    let user = one_user(&tx, request.user_id).await?;
    tx.commit().await?;
    tracing::warn!(tenant = %person.tenant_id, by = %person.user_id, user = %request.user_id,
                   "second factor removed by an administrator");
    Ok(Json(user))
}

/// The person's sessions end; when they are the caller, a new session replaces this one and
/// its cookie comes back.
async fn privileges_changed(
    tx: &TenantTx<'_>,
    caller: &Person,
    user_id: Uuid,
) -> Result<Option<auth::StartedSession>> {
    auth::revoke_sessions_of(tx, user_id).await?;
    if user_id != caller.user_id {
        return Ok(None);
    }
    let business_name = auth::business_name(tx).await?;
    let started = auth::start_session(tx, caller.tenant_id, user_id, business_name).await?;
    Ok(Some(started))
}

/// Withdraws (DISABLED, token void) every waiting invitation whose inviter may no longer
/// manage people (set away, blocked, or without the permission now): an invitation carries
/// its inviter's authority, which must not outlive it.
async fn withdraw_orphaned_invitations(tx: &TenantTx<'_>) -> Result<()> {
    let withdrawn = tx
        .execute(
            "UPDATE users p SET status = 'DISABLED', invitation_hash = NULL,
                 invitation_expires_at = NULL, status_changed_at = now()
             WHERE p.tenant_id = $1 AND p.status = 'PENDING' AND p.invited_by IS NOT NULL
               AND NOT EXISTS (
                   SELECT 1 FROM users i
                   JOIN user_roles ur ON ur.tenant_id = i.tenant_id AND ur.user_id = i.user_id
                   JOIN role_permissions rp
                        ON rp.tenant_id = ur.tenant_id AND rp.role_id = ur.role_id
                   WHERE i.tenant_id = p.tenant_id AND i.user_id = p.invited_by
                     AND i.status = 'ACTIVE' AND rp.permission = $2)",
            &[&tx.tenant(), &Permission::UsersManage.as_str()],
        )
        .await?;
    if withdrawn > 0 {
        tracing::info!(tenant = %tx.tenant(), withdrawn, "invitations of a former administrator withdrawn");
    }
    Ok(())
}

fn no_role_error() -> kaunter_protocol::FieldError {
    validate::field_error("role_ids", "required", "Give the person at least one role.")
}

fn core_status(status: UserStatus) -> access::UserStatus {
    match status {
        UserStatus::Pending => access::UserStatus::Pending,
        UserStatus::Active => access::UserStatus::Active,
        UserStatus::Inactive => access::UserStatus::Inactive,
        UserStatus::Disabled => access::UserStatus::Disabled,
    }
}

fn wire_status(status: access::UserStatus) -> UserStatus {
    match status {
        access::UserStatus::Pending => UserStatus::Pending,
        access::UserStatus::Active => UserStatus::Active,
        access::UserStatus::Inactive => UserStatus::Inactive,
        access::UserStatus::Disabled => UserStatus::Disabled,
    }
}

/// Changes to people of one business take turns, so two administrators demoting each other at
/// once cannot both pass the last-ADMIN check.
pub(crate) async fn lock_people(tx: &TenantTx<'_>) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('kaunter-people:' || $1::text, 0))",
        &[&tx.tenant().to_string()],
    )
    .await?;
    Ok(())
}

/// [`Error::LastAdmin`] unless someone ACTIVE, who can log in, holds the built-in ADMIN role.
async fn require_an_admin(tx: &TenantTx<'_>) -> Result<()> {
    let admins: i64 = tx
        .query_one(
            "SELECT count(*) FROM users u
             WHERE u.tenant_id = $1 AND u.status = 'ACTIVE' AND u.password_hash IS NOT NULL
               AND EXISTS (
                 SELECT 1 FROM user_roles ur JOIN roles r USING (tenant_id, role_id)
                 WHERE ur.tenant_id = u.tenant_id AND ur.user_id = u.user_id
                   AND r.built_in AND r.name = $2)",
            &[&tx.tenant(), &access::ADMIN],
        )
        .await?
        .try_get(0)?;
    if admins == 0 {
        Err(Error::LastAdmin)
    } else {
        Ok(())
    }
}

/// The person's status and whether they have a password, locked for this transaction;
/// another business's or an unknown id is [`Error::UnknownRecord`].
async fn status_of(tx: &TenantTx<'_>, user_id: Uuid) -> Result<(access::UserStatus, bool)> {
    let row = tx
        .query_opt(
            "SELECT status, password_hash IS NOT NULL FROM users
             WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
            &[&tx.tenant(), &user_id],
        )
        .await?
        .ok_or(Error::UnknownRecord)?;
    let text: String = row.try_get(0)?;
    let status = access::UserStatus::parse(&text)
        .ok_or_else(|| Error::Internal(format!("stored user status {text:?} is unknown")))?;
    Ok((status, row.try_get(1)?))
}

/// Gives `user_id` the roles `role_ids` (added to what they hold). A role that is not this
/// business's is [`Error::UnknownRecord`].
async fn set_roles(tx: &TenantTx<'_>, user_id: Uuid, role_ids: &[Uuid]) -> Result<()> {
    let mut wanted = role_ids.to_vec();
    wanted.sort();
    wanted.dedup();
    tx.execute(
        "INSERT INTO user_roles (tenant_id, user_id, role_id)
             SELECT $1, $2, r.role_id FROM roles r
             WHERE r.tenant_id = $1 AND r.role_id = ANY($3)
             ON CONFLICT DO NOTHING",
        &[&tx.tenant(), &user_id, &wanted],
    )
    .await?;
    let known: i64 = tx
        .query_one(
            "SELECT count(*) FROM roles WHERE tenant_id = $1 AND role_id = ANY($2)",
            &[&tx.tenant(), &wanted],
        )
        .await?
        .try_get(0)?;
    if usize::try_from(known).ok() != Some(wanted.len()) {
        return Err(Error::UnknownRecord);
    }
    Ok(())
}

async fn one_user(tx: &TenantTx<'_>, user_id: Uuid) -> Result<UserView> {
    users_in(tx, Some(user_id))
        .await?
        .pop()
        .ok_or(Error::UnknownRecord)
}

/// The business's people (or the one asked for), by name, with their roles by name.
async fn users_in(tx: &TenantTx<'_>, only: Option<Uuid>) -> Result<Vec<UserView>> {
    let rows = tx
        .query(
            "SELECT u.user_id, u.name, u.email, u.status, u.totp_enabled_at IS NOT NULL,
                    u.created_at, u.last_login_at, u.invitation_expires_at,
                    coalesce(array_agg(r.role_id ORDER BY r.name)
                             FILTER (WHERE r.role_id IS NOT NULL), '{}'),
                    coalesce(array_agg(r.name ORDER BY r.name)
                             FILTER (WHERE r.role_id IS NOT NULL), '{}')
             FROM users u
             LEFT JOIN user_roles ur ON ur.tenant_id = u.tenant_id AND ur.user_id = u.user_id
             LEFT JOIN roles r ON r.tenant_id = ur.tenant_id AND r.role_id = ur.role_id
             WHERE u.tenant_id = $1 AND ($2::uuid IS NULL OR u.user_id = $2)
             GROUP BY u.tenant_id, u.user_id
             ORDER BY u.name, u.user_id",
            &[&tx.tenant(), &only],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let status: String = row.try_get(3)?;
            let status = access::UserStatus::parse(&status)
                .ok_or_else(|| Error::Internal(format!("stored user status {status:?}")))?;
            let role_ids: Vec<Uuid> = row.try_get(8)?;
            let role_names: Vec<String> = row.try_get(9)?;
            Ok(UserView {
                user_id: row.try_get(0)?,
                name: row.try_get(1)?,
                email: row.try_get(2)?,
                status: wire_status(status),
                roles: role_ids
                    .into_iter()
                    .zip(role_names)
                    .map(|(role_id, name)| RoleRef { role_id, name })
                    .collect(),
                totp_enabled: row.try_get(4)?,
                created_at: row.try_get(5)?,
                last_login_at: row.try_get(6)?,
                invitation_expires_at: row.try_get(7)?,
            })
        })
        .collect()
}
