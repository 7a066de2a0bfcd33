//! Head-office login and sessions: `POST /v1/auth/login`, `GET /v1/auth/session`,
//! `POST /v1/auth/logout`.
//!
//! Login names the business by its slug, so it starts with no tenant: a [`LookupTx`] sees only
//! that business's row, then continues as that tenant to find the user. An unknown business, an
//! unknown e-mail, a wrong password and a user who may not log in all get the same answer
//! (`invalid_credentials`) after the same work (one Argon2id verification; a dummy one when
//! there is no hash to check). Failures are throttled per account and per address
//! (throttle.rs). A successful login re-hashes a password stored with weaker parameters and
//! starts a new session, revoking the one the browser presented, if any.
//!
//! The session lives in an HttpOnly, Secure, SameSite=Strict cookie; every request that changes
//! something must also carry the session's CSRF token in `X-CSRF-Token`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use kaunter_protocol::http::{LoginRequest, SessionView};
use uuid::Uuid;

use crate::AppState;
use crate::db::{LookupTx, TenantTx};
use crate::error::{Error, Result};
use crate::extract::JsonBody;
use crate::ids::TenantId;
use crate::password::{self, Verified};
use crate::throttle::{self, Key};
use crate::token::{self, SessionToken};

pub const COOKIE: &str = "kaunter_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session ends this long after login, however busy.
pub const SESSION_HOURS: i64 = 12;
/// ... or after this long without a request.
pub const IDLE_MINUTES: i64 = 120;
/// Longer passwords are refused before hashing (the policy allows 128 characters).
const PASSWORD_MAX_BYTES: usize = 1024;

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    presented: Option<SessionCookie>,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Response> {
    // PostgreSQL text cannot hold U+0000, and no slug or address holds a control character:
    // such input is looked up as "" (which names nobody), so it is one more wrong guess.
    let typed = |text: &str| {
        if text.chars().any(char::is_control) {
            String::new()
        } else {
            text.trim().to_lowercase()
        }
    };
    let slug = typed(&request.business);
    let email_key = typed(&request.email);
    let keys = [Key::account(&slug, &email_key), Key::address(peer.ip())];

    let mut client = state.pool().get().await?;
    if let Some(retry_after_secs) = throttle::locked_for(&**client, &keys).await? {
        return Err(Error::TooManyAttempts { retry_after_secs });
    }

    // Who is asking to log in, if anyone: the business by its slug, then the user by e-mail.
    let lookup = LookupTx::for_slug(&mut client, &slug).await?;
    let business = lookup
        .query_opt(
            "SELECT tenant_id, name, status FROM tenants WHERE slug = $1",
            &[&slug],
        )
        .await?;
    let (candidate, business_name, business_status) = match business {
        Some(row) => {
            let tenant_id: TenantId = row.try_get(0)?;
            let (name, status): (String, String) = (row.try_get(1)?, row.try_get(2)?);
            let tx = lookup.into_tenant(tenant_id).await?;
            let user = tx
                .query_opt(
                    "SELECT user_id, password_hash FROM users
                     WHERE tenant_id = $1 AND email_key = $2 AND status = 'ACTIVE'",
                    &[&tenant_id, &email_key],
                )
                .await?;
            tx.commit().await?;
            let user = match user {
                Some(row) => Some((
                    tenant_id,
                    row.try_get::<_, Uuid>(0)?,
                    row.try_get::<_, Option<String>>(1)?,
                )),
                None => None,
            };
            (user, name, status)
        }
        None => {
            lookup.commit().await?;
            (None, String::new(), String::new())
        }
    };
    let stored = candidate.as_ref().and_then(|(_, _, hash)| hash.clone());
    let verified = if request.password.len() > PASSWORD_MAX_BYTES {
        Verified::No
    } else {
        password::verify_off_thread(request.password.clone(), stored).await?
    };
    let (tenant_id, user_id) = match (candidate, verified) {
        (Some((tenant_id, user_id, _)), Verified::Yes | Verified::YesRehash) => {
            (tenant_id, user_id)
        }
        _ => {
            throttle::record_failure(&**client, &keys).await?;
            tracing::info!(address = %peer.ip(), "login refused");
            return Err(Error::InvalidCredentials);
        }
    };
    if business_status != "active" {
        return Err(Error::BusinessNotActive);
    }
    let tx = TenantTx::begin(&mut client, tenant_id).await?;
    // The second factor, for a person who has one: asked for only once the password is right
    // (so its absence tells nothing to someone guessing passwords), and a wrong code counts as
    // a failed login.
    let totp = tx
        .query_opt(
            "SELECT totp_secret, totp_last_step FROM users
             WHERE tenant_id = $1 AND user_id = $2 AND totp_enabled_at IS NOT NULL
             FOR UPDATE",
            &[&tenant_id, &user_id],
        )
        .await?
        .map(|row| {
            Ok::<_, Error>((
                row.try_get::<_, Vec<u8>>(0)?,
                row.try_get::<_, Option<i64>>(1)?,
            ))
        })
        .transpose()?;
    if let Some((secret, last_step)) = totp {
        let Some(code) = request.totp_code.as_deref() else {
            // Not a wrong guess, but Argon2 work for the asking: counted against the address.
            drop(tx);
            throttle::record_failure(&**client, &keys[1..]).await?;
            return Err(Error::TotpRequired);
        };
        let Some(step) = crate::totp::verify(&secret, code, Utc::now().timestamp(), last_step)
        else {
            drop(tx);
            throttle::record_failure(&**client, &keys).await?;
            tracing::info!(address = %peer.ip(), "login refused: second factor");
            return Err(Error::TotpInvalid);
        };
        tx.execute(
            "UPDATE users SET totp_last_step = $3 WHERE tenant_id = $1 AND user_id = $2",
            &[&tenant_id, &user_id, &step],
        )
        .await?;
    }
    tx.execute(
        "UPDATE users SET last_login_at = now() WHERE tenant_id = $1 AND user_id = $2",
        &[&tenant_id, &user_id],
    )
    .await?;
    // A new session at every login: the one this browser had (if it is this business's and its
    // secret matches) ends, so a session id planted before login is worth nothing after it.
    if let Some(SessionCookie(old)) = &presented
        && old.tenant_id == tenant_id
    {
        let stored: Option<Vec<u8>> = tx
            .query_opt(
                "SELECT secret_hash FROM sessions WHERE tenant_id = $1 AND session_id = $2",
                &[&tenant_id, &old.session_id],
            )
            .await?
            .map(|row| row.try_get(0))
            .transpose()?;
        if stored.is_some_and(|hash| old.matches(&hash)) {
            tx.execute(
                "UPDATE sessions SET revoked_at = coalesce(revoked_at, now())
                 WHERE tenant_id = $1 AND session_id = $2",
                &[&tenant_id, &old.session_id],
            )
            .await?;
        }
    }
    let started = start_session(&tx, tenant_id, user_id, business_name).await?;
    tx.commit().await?;
    throttle::clear(&**client, keys[0]).await?;
    tracing::info!(%tenant_id, %user_id, "logged in");
    // A hash weaker than today's parameters is replaced once the whole login has passed
    // (second factor included), hashed with no transaction open.
    if verified == Verified::YesRehash {
        let hash = password::hash_off_thread(request.password).await?;
        let tx = TenantTx::begin(&mut client, tenant_id).await?;
        tx.execute(
            "UPDATE users SET password_hash = $3, password_changed_at = now()
             WHERE tenant_id = $1 AND user_id = $2",
            &[&tenant_id, &user_id, &hash],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(%tenant_id, %user_id, "password re-hashed with current parameters");
    }
    started.into_response()
}

/// A session just made: its view (with the CSRF token) and the cookie that carries it.
#[derive(Debug)]
pub struct StartedSession {
    pub view: SessionView,
    cookie: String,
}

impl StartedSession {
    /// The `Set-Cookie` value.
    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// The view as JSON, setting the new cookie.
    pub fn into_response(self) -> Result<Response> {
        let mut response = Json(self.view).into_response();
        response.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&self.cookie)
                .map_err(|error| Error::Internal(format!("session cookie: {error}")))?,
        );
        Ok(response)
    }
}

/// Starts a new session for `user_id` inside `tx`: at login, and when a person's own
/// privileges change (the old session is revoked first, so the new one is the only one).
pub async fn start_session(
    tx: &TenantTx<'_>,
    tenant_id: TenantId,
    user_id: Uuid,
    business_name: String,
) -> Result<StartedSession> {
    let session_id = Uuid::now_v7();
    let (issued, csrf_token) = token::issue_session(tenant_id, session_id)?;
    let expires_at: DateTime<Utc> = tx
        .query_one(
            "INSERT INTO sessions (tenant_id, session_id, user_id, secret_hash, expires_at)
             VALUES ($1, $2, $3, $4, now() + $5::bigint * interval '1 hour')
             RETURNING expires_at",
            &[
                &tenant_id,
                &session_id,
                &user_id,
                &issued.secret_hash.as_slice(),
                &SESSION_HOURS,
            ],
        )
        .await?
        .try_get(0)?;
    let view = session_view(
        tx,
        tenant_id,
        user_id,
        business_name,
        csrf_token,
        expires_at,
    )
    .await?;
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        issued.text,
        SESSION_HOURS * 3600
    );
    Ok(StartedSession { view, cookie })
}

/// Ends every live session of `user_id` (their privileges or status changed, or their second
/// factor did): they log in again, or get a fresh session at once when it is their own
/// change ([`start_session`]).
pub async fn revoke_sessions_of(tx: &TenantTx<'_>, user_id: Uuid) -> Result<u64> {
    Ok(tx
        .execute(
            "UPDATE sessions SET revoked_at = now()
             WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL",
            &[&tx.tenant(), &user_id],
        )
        .await?)
}

/// The business's name, for a session's view.
pub async fn business_name(tx: &TenantTx<'_>) -> Result<String> {
    Ok(tx
        .query_one(
            "SELECT name FROM tenants WHERE tenant_id = $1",
            &[&tx.tenant()],
        )
        .await?
        .try_get(0)?)
}

/// `GET /v1/auth/session`: who this session is (and its CSRF token, for a reloaded page).
pub async fn session(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
) -> Result<Json<SessionView>> {
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let (user_id, expires_at) = check_session(&tx, &token).await?;
    let business_name = business_name(&tx).await?;
    let view = session_view(
        &tx,
        token.tenant_id,
        user_id,
        business_name,
        token.csrf_token(),
        expires_at,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// `POST /v1/auth/logout`: ends the session (CSRF token required) and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
) -> Result<Response> {
    require_csrf(&token, &headers)?;
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    check_session(&tx, &token).await?;
    tx.execute(
        "UPDATE sessions SET revoked_at = now() WHERE tenant_id = $1 AND session_id = $2",
        &[&token.tenant_id, &token.session_id],
    )
    .await?;
    tx.commit().await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "kaunter_session=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0",
        ),
    );
    Ok(response)
}

/// The session cookie, parsed (no database yet). Missing or garbled → `session_invalid`.
#[derive(Debug, Clone)]
pub struct SessionCookie(pub SessionToken);

impl<S: Send + Sync> FromRequestParts<S> for SessionCookie {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .ok_or(Error::SessionInvalid)
            .and_then(|(_, value)| {
                SessionToken::parse(value.trim()).map_err(|_| Error::SessionInvalid)
            })
            .map(SessionCookie)
    }
}

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for SessionCookie {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> std::result::Result<Option<Self>, Self::Rejection> {
        Ok(
            <SessionCookie as FromRequestParts<S>>::from_request_parts(parts, state)
                .await
                .ok(),
        )
    }
}

/// The person behind a live session, with what their roles allow.
#[derive(Debug, Clone)]
pub struct Person {
    pub tenant_id: TenantId,
    pub user_id: Uuid,
    permissions: Vec<String>,
    /// The business requires this ADMIN to have a second factor, and they have none yet.
    totp_setup_required: bool,
}

impl Person {
    /// What any live session may do, except one that must first set up its second factor.
    pub fn require_ready(&self) -> Result<()> {
        if self.totp_setup_required {
            Err(Error::TotpSetupRequired)
        } else {
            Ok(())
        }
    }

    /// Forbidden unless one of the person's roles allows `permission` (and the session is
    /// [ready](Person::require_ready)).
    pub fn require(&self, permission: kaunter_core::access::Permission) -> Result<()> {
        self.require_ready()?;
        if self
            .permissions
            .iter()
            .any(|held| held == permission.as_str())
        {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }
}

/// Checks the session inside `tx` (which must be scoped to its tenant) and says who it is.
pub async fn person(tx: &TenantTx<'_>, token: &SessionToken) -> Result<Person> {
    let (user_id, _) = check_session(tx, token).await?;
    let permissions: Vec<String> = tx
        .query_one(
            "SELECT coalesce(array_agg(DISTINCT p.permission), '{}')
             FROM user_roles ur JOIN role_permissions p USING (tenant_id, role_id)
             WHERE ur.tenant_id = $1 AND ur.user_id = $2",
            &[&token.tenant_id, &user_id],
        )
        .await?
        .try_get(0)?;
    let (_, totp_setup_required) = second_factor(tx, user_id).await?;
    Ok(Person {
        tenant_id: token.tenant_id,
        user_id,
        permissions,
        totp_setup_required,
    })
}

/// Whether `user_id` has a second factor, and whether they must set one up first (their
/// business requires one of its ADMINs and they have none).
async fn second_factor(tx: &TenantTx<'_>, user_id: Uuid) -> Result<(bool, bool)> {
    let row = tx
        .query_one(
            "SELECT u.totp_enabled_at IS NOT NULL,
                    coalesce(s.require_admin_totp, false) AND EXISTS (
                        SELECT 1 FROM user_roles ur JOIN roles r USING (tenant_id, role_id)
                        WHERE ur.tenant_id = u.tenant_id AND ur.user_id = u.user_id
                          AND r.built_in AND r.name = $3)
             FROM users u LEFT JOIN business_settings s USING (tenant_id)
             WHERE u.tenant_id = $1 AND u.user_id = $2",
            &[&tx.tenant(), &user_id, &kaunter_core::access::ADMIN],
        )
        .await?;
    let (enabled, required): (bool, bool) = (row.try_get(0)?, row.try_get(1)?);
    Ok((enabled, required && !enabled))
}

/// The CSRF token of `token`'s session must be in `X-CSRF-Token`.
pub fn require_csrf(token: &SessionToken, headers: &HeaderMap) -> Result<()> {
    let presented = headers
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .ok_or(Error::CsrfFailed)?;
    if token.csrf_matches(presented.trim()) {
        Ok(())
    } else {
        Err(Error::CsrfFailed)
    }
}

/// The session's user and end, if the session is live: its secret matches, it is not revoked,
/// expired or idle too long, and its user may still log in. Notes the request (at most once a
/// minute, to spare writes).
pub(crate) async fn check_session(
    tx: &TenantTx<'_>,
    token: &SessionToken,
) -> Result<(Uuid, DateTime<Utc>)> {
    let row = tx
        .query_opt(
            "SELECT s.user_id, s.secret_hash, s.expires_at
             FROM sessions s JOIN users u USING (tenant_id, user_id)
             WHERE s.tenant_id = $1 AND s.session_id = $2 AND s.revoked_at IS NULL
               AND s.expires_at > now()
               AND s.last_seen_at > now() - $3::bigint * interval '1 minute'
               AND u.status = 'ACTIVE'",
            &[&token.tenant_id, &token.session_id, &IDLE_MINUTES],
        )
        .await?
        .ok_or(Error::SessionInvalid)?;
    let stored: Vec<u8> = row.try_get(1)?;
    if !token.matches(&stored) {
        return Err(Error::SessionInvalid);
    }
    tx.execute(
        "UPDATE sessions SET last_seen_at = now()
         WHERE tenant_id = $1 AND session_id = $2 AND last_seen_at < now() - interval '1 minute'",
        &[&token.tenant_id, &token.session_id],
    )
    .await?;
    Ok((row.try_get(0)?, row.try_get(2)?))
}

async fn session_view(
    tx: &TenantTx<'_>,
    tenant_id: TenantId,
    user_id: Uuid,
    business_name: String,
    csrf_token: String,
    expires_at: DateTime<Utc>,
) -> Result<SessionView> {
    let user = tx
        .query_one(
            "SELECT name, email FROM users WHERE tenant_id = $1 AND user_id = $2",
            &[&tenant_id, &user_id],
        )
        .await?;
    let access = tx
        .query_one(
            "SELECT coalesce(array_agg(DISTINCT r.name ORDER BY r.name), '{}'),
                    coalesce(array_agg(DISTINCT p.permission ORDER BY p.permission)
                             FILTER (WHERE p.permission IS NOT NULL), '{}')
             FROM user_roles ur
             JOIN roles r USING (tenant_id, role_id)
             LEFT JOIN role_permissions p USING (tenant_id, role_id)
             WHERE ur.tenant_id = $1 AND ur.user_id = $2",
            &[&tenant_id, &user_id],
        )
        .await?;
    let (totp_enabled, totp_setup_required) = second_factor(tx, user_id).await?;
    Ok(SessionView {
        tenant_id: tenant_id.as_uuid(),
        business_name,
        user_id,
        name: user.try_get(0)?,
        email: user.try_get(1)?,
        roles: access.try_get(0)?,
        permissions: access.try_get(1)?,
        csrf_token,
        expires_at,
        totp_enabled,
        totp_setup_required,
    })
}
