//! The server's one error type, and the one place it becomes an HTTP answer.
//!
//! Handlers return [`Result`]; [`IntoResponse`] turns an [`Error`] into a status and a stable
//! [`ErrorBody`] code. Internal failures (database, pool, I/O) are logged here, once, and answered
//! with a bare `internal`: no SQL, no row of any tenant, no stack trace ever reaches a client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kaunter_core::subscription::ModuleChangeRefused;
use kaunter_protocol::FieldError;
use kaunter_protocol::http::{ErrorBody, error_code};

use crate::ids::{BranchId, TenantId};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; the message describes the caller's input and is safe to show.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Missing, garbled, unknown or revoked device token: one answer for all.
    #[error("missing or invalid device token")]
    Unauthorized,
    /// Unknown, used or expired enrolment code: one answer for all.
    #[error("enrolment code is invalid, used or expired")]
    EnrolmentCodeInvalid,
    /// Login: unknown business, unknown e-mail, wrong password, or a user who may not log in:
    /// one answer for all.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: i64 },
    #[error("the business is not active")]
    BusinessNotActive,
    /// Missing, garbled, unknown, expired or revoked session cookie: one answer for all.
    #[error("no live session")]
    SessionInvalid,
    #[error("missing or wrong CSRF token")]
    CsrfFailed,
    /// A live session whose roles do not allow the request.
    #[error("the role does not allow this")]
    Forbidden,
    /// Login with the right password by a person with a second factor, but no code.
    #[error("a second-factor code is required")]
    TotpRequired,
    /// A wrong, stale or already used second-factor code.
    #[error("the second-factor code is not right")]
    TotpInvalid,
    /// An ADMIN whose business requires a second factor and who has none yet.
    #[error("a second factor must be set up first")]
    TotpSetupRequired,
    /// Setting up a second factor that is already on, confirming or disabling one that is not.
    #[error("{0}")]
    TotpState(&'static str),
    /// A desk's access token ended (rotating credentials): it renews itself.
    #[error("the access token has expired")]
    TokenExpired,
    /// A refresh token used twice: the desk has been revoked.
    #[error("a refresh token was used twice; the device is revoked")]
    RefreshTokenReused,
    /// Unknown, used or expired invitation: one answer for all.
    #[error("invitation is invalid, used or expired")]
    InvitationInvalid,
    #[error("the change would leave the business without an active ADMIN")]
    LastAdmin,
    #[error("the branch is closed")]
    BranchClosed,
    /// Re-enrolment named a device the code does not reconnect (or the code is of the other
    /// kind), or a reconnect code was asked for a desk that is not a removed desk.
    #[error("the device cannot be replaced")]
    DeviceNotReplaceable,
    /// Re-enrolment: the server holds more of this device's changes than the desk wrote.
    #[error("the device's changes were written elsewhere")]
    DeviceWrittenElsewhere,
    /// An id that is not one of the caller's business's (or does not exist): one answer.
    #[error("no such record")]
    UnknownRecord,
    #[error("no such route")]
    NotFound,
    /// A conflict id that is not one of this branch's.
    #[error("no such conflict")]
    UnknownConflict,
    #[error("the conflict was already resolved another way")]
    ConflictAlreadyResolved,
    /// An emergency opening of a clinical record that head office already reviewed.
    #[error("already reviewed")]
    AlreadyReviewed,
    /// The subscription ended and is in its grace: reads and pulls only.
    #[error("the subscription is read-only")]
    SubscriptionReadOnly,
    /// The subscription is suspended: no sync.
    #[error("the subscription is suspended")]
    SubscriptionSuspended,
    /// A plan limit (the sentence says which).
    #[error("{0}")]
    PlanLimitReached(String),
    /// kaunter-core refused to apply a payment (its code and sentence say why).
    #[error("{0}")]
    PaymentRefused(kaunter_core::subscription::PaymentRefused),
    /// kaunter-core refused a set of modules: none, one not offered (422 at `modules`), or
    /// more than the plan allows (409 `plan_limit_reached`).
    #[error("{0}")]
    ModulesRefused(kaunter_core::subscription::ModuleChangeRefused),
    /// kaunter-core refused a cancellation (a trial, a perpetual licence, already expired).
    #[error("{0}")]
    CancelRefused(kaunter_core::subscription::CancelRefused),
    /// A payment provider's webhook, but no secret is configured to verify it with.
    #[error("no webhook secret is configured for this provider")]
    WebhookNotConfigured,
    /// A webhook whose signature is missing or does not match.
    #[error("the webhook signature is missing or wrong")]
    WebhookSignatureInvalid,
    /// A webhook signed outside the tolerance of the server's clock.
    #[error("the webhook was signed too long ago or in the future")]
    WebhookStale,
    /// A verified webhook whose event cannot be used; the text says why.
    #[error("the webhook event cannot be used: {0}")]
    WebhookInvalid(String),
    /// A verified webhook naming no business that exists.
    #[error("the webhook names no known business")]
    WebhookUnknownBusiness,
    /// A verified webhook whose amount or currency is not the price; the text says what.
    #[error("{0}")]
    WebhookAmountMismatch(String),
    /// A resolution that makes no sense for the conflict's kind (merging two bookings).
    #[error("that resolution does not apply to this kind of conflict")]
    ResolutionNotAllowed,
    /// Pull from a cursor below the business's tombstone horizon.
    #[error("the cursor is below the tombstone horizon; resync from 0")]
    ResyncRequired,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("request body in a content encoding the server does not read")]
    UnsupportedContentEncoding,
    #[error("client schema version {0} is not supported")]
    UnsupportedSchemaVersion(u32),
    #[error("sequence gap: the server expects seq {expected} next")]
    SequenceGap { expected: i64 },
    #[error("validation failed: {}", describe_fields(.0))]
    ValidationFailed(Vec<FieldError>),
    #[error("the request took too long")]
    Timeout,
    #[error("the database is unavailable: {}", error_chain(.0))]
    Unavailable(#[from] deadpool_postgres::PoolError),

    /// Admin: the tenant does not exist (or is not visible under its own id).
    #[error("no business with id {0}")]
    UnknownTenant(TenantId),
    /// Admin: the branch does not exist in the given business.
    #[error("no branch {0} in that business")]
    UnknownBranch(BranchId),
    /// Admin input that fails a rule; the message says which.
    #[error("{0}")]
    InvalidInput(String),

    #[error(
        "migration {version} ({name}) was changed after it was applied (checksum {applied} in the \
         database, {embedded} in this build); migrations are append-only: restore the file and \
         add a new migration instead"
    )]
    MigrationChanged {
        version: u32,
        name: String,
        applied: String,
        embedded: String,
    },
    #[error(
        "the database has migration {version} ({name}) which this build does not know; run a \
         server at least as new as the one that applied it"
    )]
    MigrationUnknown { version: u32, name: String },
    #[error(
        "refusing to serve: database role {role} is a superuser or has BYPASSRLS, so row-level \
         security would not apply; connect as kaunter_app (see --app-database-url)"
    )]
    UnsafeAppRole { role: String },
    #[error("configuration: {0}")]
    Config(String),

    #[error("database error: {}", error_chain(.0))]
    Database(#[from] tokio_postgres::Error),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Something that cannot happen unless stored data or a dependency misbehaves.
    #[error("internal error: {0}")]
    Internal(String),
}

/// `field: message; field: message`, for logs and the command line.
fn describe_fields(fields: &[FieldError]) -> String {
    fields
        .iter()
        .map(|error| format!("{}: {}", error.field, error.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// An error and its sources on one line: tokio-postgres keeps the server's message (which
/// says what actually went wrong) in the source, not in Display.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Error {
    fn status_and_body(&self) -> (StatusCode, ErrorBody) {
        let body = |code: &str, message: &str| ErrorBody {
            code: code.to_owned(),
            message: message.to_owned(),
            expected_seq: None,
            fields: Vec::new(),
        };
        match self {
            Error::BadRequest(detail) => (
                StatusCode::BAD_REQUEST,
                body(
                    error_code::BAD_REQUEST,
                    &format!("The request is malformed: {detail}"),
                ),
            ),
            Error::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                body(
                    error_code::UNAUTHORIZED,
                    "This device is not recognised. Enrol it again with a new code from head office.",
                ),
            ),
            Error::EnrolmentCodeInvalid => (
                StatusCode::BAD_REQUEST,
                body(
                    error_code::ENROLMENT_CODE_INVALID,
                    "This enrolment code is not valid, has been used, or has expired. Ask head office for a new one.",
                ),
            ),
            Error::InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                body(
                    error_code::INVALID_CREDENTIALS,
                    "The business, e-mail or password is not right.",
                ),
            ),
            Error::TooManyAttempts { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                body(
                    error_code::TOO_MANY_ATTEMPTS,
                    "Too many failed logins. Wait a while, then try again.",
                ),
            ),
            Error::BusinessNotActive => (
                StatusCode::FORBIDDEN,
                body(
                    error_code::BUSINESS_NOT_ACTIVE,
                    "This business's account is suspended. Contact Kaunter support.",
                ),
            ),
            Error::SessionInvalid => (
                StatusCode::UNAUTHORIZED,
                body(
                    error_code::SESSION_INVALID,
                    "Your session has ended. Log in again.",
                ),
            ),
            Error::CsrfFailed => (
                StatusCode::FORBIDDEN,
                body(
                    error_code::CSRF_FAILED,
                    "This request did not come from a Kaunter page. Reload the page and try again.",
                ),
            ),
            Error::Forbidden => (
                StatusCode::FORBIDDEN,
                body(
                    error_code::FORBIDDEN,
                    "Your role does not allow this. Ask your business's administrator.",
                ),
            ),
            Error::TotpRequired => (
                StatusCode::UNAUTHORIZED,
                body(
                    error_code::TOTP_REQUIRED,
                    "Enter the six-digit code from your authenticator app.",
                ),
            ),
            Error::TotpInvalid => (
                StatusCode::UNAUTHORIZED,
                body(
                    error_code::TOTP_INVALID,
                    "That code is not right or was already used. Enter the code your authenticator app shows now.",
                ),
            ),
            Error::TotpSetupRequired => (
                StatusCode::FORBIDDEN,
                body(
                    error_code::TOTP_SETUP_REQUIRED,
                    "Your business requires administrators to use an authenticator app. Set one up to continue.",
                ),
            ),
            Error::TotpState(message) => {
                (StatusCode::CONFLICT, body(error_code::TOTP_STATE, message))
            }
            Error::TokenExpired => (
                StatusCode::UNAUTHORIZED,
                body(
                    error_code::TOKEN_EXPIRED,
                    "This desk's access has expired; it renews it with its refresh token.",
                ),
            ),
            Error::RefreshTokenReused => (
                StatusCode::UNAUTHORIZED,
                body(
                    error_code::REFRESH_TOKEN_REUSED,
                    "This desk's credentials were used from two places, so it was signed out for safety. Its data is kept; enrol it again with a new code from head office.",
                ),
            ),
            Error::InvitationInvalid => (
                StatusCode::BAD_REQUEST,
                body(
                    error_code::INVITATION_INVALID,
                    "This invitation is not valid, has been used, or has expired. Ask your administrator for a new one.",
                ),
            ),
            Error::LastAdmin => (
                StatusCode::CONFLICT,
                body(
                    error_code::LAST_ADMIN,
                    "The business must keep at least one active ADMIN. Make someone else ADMIN first.",
                ),
            ),
            Error::BranchClosed => (
                StatusCode::CONFLICT,
                body(
                    error_code::BRANCH_CLOSED,
                    "This branch is closed: it keeps its records but gets no new desks.",
                ),
            ),
            Error::DeviceNotReplaceable => (
                StatusCode::CONFLICT,
                body(
                    error_code::DEVICE_NOT_REPLACEABLE,
                    "This code does not reconnect this desk: a reconnect code is issued by head office for one removed desk, and a plain enrolment code only enrols a new desk.",
                ),
            ),
            Error::DeviceWrittenElsewhere => (
                StatusCode::CONFLICT,
                body(
                    error_code::DEVICE_WRITTEN_ELSEWHERE,
                    "The server holds changes under this desk's name that this desk never made: another copy of it wrote them. Nothing was changed; keep this desk's data and contact support.",
                ),
            ),
            Error::UnknownRecord => (
                StatusCode::NOT_FOUND,
                body(error_code::NOT_FOUND, "There is no such record."),
            ),
            Error::NotFound => (
                StatusCode::NOT_FOUND,
                body(error_code::NOT_FOUND, "There is nothing at this address."),
            ),
            Error::UnknownConflict => (
                StatusCode::NOT_FOUND,
                body(
                    error_code::NOT_FOUND,
                    "There is no such conflict for this branch.",
                ),
            ),
            Error::ConflictAlreadyResolved => (
                StatusCode::CONFLICT,
                body(
                    error_code::CONFLICT_ALREADY_RESOLVED,
                    "Someone already resolved this conflict another way; refresh the list.",
                ),
            ),
            Error::SubscriptionReadOnly => (
                StatusCode::PAYMENT_REQUIRED,
                body(
                    error_code::SUBSCRIPTION_READ_ONLY,
                    "This business's subscription has ended: Kaunter is read-only until it is paid. Everything can still be read and exported, and changes waiting on this desk are kept and sent once it is paid (head office's Kaunter page says how to pay).",
                ),
            ),
            Error::SubscriptionSuspended => (
                StatusCode::PAYMENT_REQUIRED,
                body(
                    error_code::SUBSCRIPTION_SUSPENDED,
                    "This business's subscription is suspended: this desk cannot sync. Its data stays on it, read-only, and can be exported; changes waiting here are sent once head office pays.",
                ),
            ),
            Error::PlanLimitReached(message) => (
                StatusCode::CONFLICT,
                body(error_code::PLAN_LIMIT_REACHED, message),
            ),
            Error::PaymentRefused(refused) => (
                StatusCode::CONFLICT,
                body(refused.code(), &refused.to_string()),
            ),
            Error::ModulesRefused(refused) => match refused {
                ModuleChangeRefused::OverLimit { .. } => (
                    StatusCode::CONFLICT,
                    body(error_code::PLAN_LIMIT_REACHED, &refused.to_string()),
                ),
                ModuleChangeRefused::NoModule | ModuleChangeRefused::NotOffered(_) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorBody {
                        fields: vec![FieldError {
                            field: "modules".to_owned(),
                            code: refused.code().to_owned(),
                            message: refused.to_string(),
                        }],
                        ..body(
                            error_code::VALIDATION_FAILED,
                            "Some fields are not valid; each says why.",
                        )
                    },
                ),
            },
            Error::CancelRefused(refused) => (
                StatusCode::CONFLICT,
                body(refused.code(), &refused.to_string()),
            ),
            Error::WebhookNotConfigured => (
                StatusCode::SERVICE_UNAVAILABLE,
                body(
                    error_code::WEBHOOK_NOT_CONFIGURED,
                    "This server takes no payments from this provider yet: its webhook secret is not configured.",
                ),
            ),
            Error::WebhookSignatureInvalid => (
                StatusCode::BAD_REQUEST,
                body(
                    error_code::WEBHOOK_SIGNATURE_INVALID,
                    "The webhook's signature is missing or does not match its body under the configured secret.",
                ),
            ),
            Error::WebhookStale => (
                StatusCode::BAD_REQUEST,
                body(
                    error_code::WEBHOOK_STALE,
                    "The webhook's time is too far from the server's clock; the provider retries with a fresh signature.",
                ),
            ),
            Error::WebhookInvalid(detail) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                body(
                    error_code::WEBHOOK_INVALID,
                    &format!("The webhook's event cannot be used: {detail}."),
                ),
            ),
            Error::WebhookUnknownBusiness => (
                StatusCode::UNPROCESSABLE_ENTITY,
                body(
                    error_code::WEBHOOK_UNKNOWN_BUSINESS,
                    "The webhook's event names no business Kaunter knows; check the checkout's metadata.",
                ),
            ),
            Error::WebhookAmountMismatch(reason) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                body(
                    error_code::WEBHOOK_AMOUNT_MISMATCH,
                    &format!("The payment was not applied: {reason} It is recorded as failed."),
                ),
            ),
            Error::AlreadyReviewed => (
                StatusCode::CONFLICT,
                body(
                    error_code::ALREADY_REVIEWED,
                    "Someone already reviewed this emergency opening; refresh the list.",
                ),
            ),
            Error::ResolutionNotAllowed => (
                StatusCode::BAD_REQUEST,
                body(
                    error_code::RESOLUTION_NOT_ALLOWED,
                    "That choice does not apply to this kind of conflict: two bookings can be kept or one cancelled, not merged.",
                ),
            ),
            Error::ResyncRequired => (
                StatusCode::GONE,
                body(
                    error_code::RESYNC_REQUIRED,
                    "This desk has been away longer than the server keeps deleted records. It must download its branch again (nothing waiting to be sent is lost).",
                ),
            ),
            Error::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                body(
                    error_code::BAD_REQUEST,
                    "This address does not accept that method.",
                ),
            ),
            Error::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                body(
                    error_code::PAYLOAD_TOO_LARGE,
                    "The request body is too large. Send fewer entries per request.",
                ),
            ),
            Error::UnsupportedContentEncoding => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                body(
                    error_code::UNSUPPORTED_CONTENT_ENCODING,
                    "The request body's Content-Encoding is not one this server reads: send it as it is, or compressed with zstd.",
                ),
            ),
            Error::UnsupportedSchemaVersion(_) => (
                StatusCode::BAD_REQUEST,
                body(
                    error_code::UNSUPPORTED_SCHEMA_VERSION,
                    "This version of the app is not supported by the server. Update the app.",
                ),
            ),
            Error::SequenceGap { expected } => (
                StatusCode::CONFLICT,
                ErrorBody {
                    expected_seq: Some(*expected),
                    ..body(
                        error_code::SEQUENCE_GAP,
                        "Some changes are missing before this batch; send from the expected sequence number.",
                    )
                },
            ),
            Error::ValidationFailed(fields) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorBody {
                    fields: fields.clone(),
                    ..body(
                        error_code::VALIDATION_FAILED,
                        "Some fields are not valid; each says why.",
                    )
                },
            ),
            Error::Timeout => (
                StatusCode::SERVICE_UNAVAILABLE,
                body(
                    error_code::INTERNAL,
                    "The server took too long to answer. Try again shortly.",
                ),
            ),
            Error::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                body(
                    error_code::INTERNAL,
                    "The server cannot reach its database. Try again shortly.",
                ),
            ),
            // PostgreSQL broke a deadlock or a serialization conflict by failing this request:
            // nothing of it was kept, and the same request again may well go through.
            Error::Database(error)
                if error.code().is_some_and(|code| {
                    *code == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
                        || *code == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                }) =>
            {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    body(
                        error_code::INTERNAL,
                        "The server was busy with other changes to the same records. Try again \
                         shortly.",
                    ),
                )
            }
            Error::UnknownTenant(_)
            | Error::UnknownBranch(_)
            | Error::InvalidInput(_)
            | Error::MigrationChanged { .. }
            | Error::MigrationUnknown { .. }
            | Error::UnsafeAppRole { .. }
            | Error::Config(_)
            | Error::Database(_)
            | Error::Io(_)
            | Error::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                body(
                    error_code::INTERNAL,
                    "Something went wrong on the server. Try again later.",
                ),
            ),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, body) = self.status_and_body();
        if status.is_server_error() {
            // The one place internal errors are logged; the client sees only the stable code.
            tracing::error!(error = %self, "request failed");
        }
        let mut response = (status, axum::Json(body)).into_response();
        match self {
            Error::Unauthorized | Error::TokenExpired | Error::RefreshTokenReused => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Error::TooManyAttempts { retry_after_secs } => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs.max(1)),
                );
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use kaunter_core::subscription::{
        BillingCycle, BillingMismatch, CancelRefused, ModuleChangeRefused, PaymentRefused,
        PricingModel,
    };
    use kaunter_protocol::http::error_code;

    #[tokio::test]
    async fn a_deadlock_or_conflict_postgresql_broke_is_answered_try_again() {
        let db = crate::test_support::TestDatabase::create().await.unwrap();
        let client = db.owner_client().await.unwrap();
        let failing = |sql: String| {
            let client = &client;
            async move { client.batch_execute(&sql).await.unwrap_err() }
        };
        // deadlock_detected, serialization_failure
        for code in ["40P01", "40001"] {
            let error = failing(format!(
                "DO $$ BEGIN RAISE EXCEPTION 'broken' USING ERRCODE = '{code}'; END $$"
            ))
            .await;
            let (status, body) = super::Error::Database(error).status_and_body();
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{code}");
            assert!(
                body.message.contains("Try again"),
                "{code}: {}",
                body.message
            );
        }
        // Any other database error stays an internal one.
        let error = failing("SELECT 1 / 0".to_owned()).await;
        assert_eq!(
            super::Error::Database(error).status_and_body().0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        db.drop_db().await.unwrap();
    }

    #[test]
    fn kaunter_cores_refusal_codes_are_declared_on_the_wire() {
        let billing = BillingMismatch {
            cycle: BillingCycle::OneTime,
            pricing: PricingModel::Subscription,
        };
        for (refused, declared) in [
            (
                PaymentRefused::Billing(billing).code(),
                error_code::BILLING_MISMATCH,
            ),
            (
                PaymentRefused::AlreadyPerpetual.code(),
                error_code::ALREADY_PERPETUAL,
            ),
            (
                PaymentRefused::BeforeLastPayment {
                    last_paid_at: chrono::DateTime::UNIX_EPOCH,
                }
                .code(),
                error_code::PAYMENT_OUT_OF_ORDER,
            ),
            (
                ModuleChangeRefused::OverLimit {
                    limit: 1,
                    wanted: 2,
                }
                .code(),
                error_code::PLAN_LIMIT_REACHED,
            ),
            (CancelRefused::Trial.code(), error_code::CANCEL_TRIAL),
            (
                CancelRefused::Perpetual.code(),
                error_code::CANCEL_PERPETUAL,
            ),
            (
                CancelRefused::Expired {
                    expired_at: chrono::DateTime::UNIX_EPOCH,
                }
                .code(),
                error_code::CANCEL_EXPIRED,
            ),
        ] {
            assert_eq!(refused, declared);
        }
    }
}
