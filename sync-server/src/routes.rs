//! The HTTP handlers, one module per route. Each is thin: extract, open the tenant transaction,
//! call the checks, answer; errors become responses in error.rs.

pub mod auth;
pub mod billing;
pub mod branches;
pub mod conflicts;
pub mod device_tokens;
pub mod devices;
pub mod emergency_access;
pub mod enrol;
pub mod health;
pub mod licence;
pub mod pull;
pub mod push;
pub mod signup;
pub mod staff;
pub mod status;
pub mod subscription;
pub mod totp;
pub mod users;
pub mod webhooks;

use crate::error::Error;

/// Any path the router does not know.
pub async fn not_found() -> Error {
    Error::NotFound
}

/// A known path with a method it does not accept.
pub async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}
