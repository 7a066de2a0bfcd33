//! Why a sync round failed, worded for the status bar.

use kaunter_store::StoreError;

pub type Result<T, E = SyncError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("Cannot reach the server ({0}). Changes are kept on this desk and will sync later.")]
    Offline(String),
    #[error(
        "The server refused this desk's credentials: head office removed the desk, or its credentials were lost. Nothing on this desk is lost: ask head office for an enrolment code and reconnect the desk with it."
    )]
    Unauthorized,
    #[error("The server refused the request ({code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
        expected_seq: Option<i64>,
    },
    #[error("The server sent an answer this desk does not understand: {0}")]
    Protocol(String),
    #[error(
        "This desk's records still differ from the server's after pulling them all again. Nothing was deleted; contact support."
    )]
    Diverged,
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("The server address {0:?} is not a valid http(s) URL.")]
    BadServerUrl(String),
}

impl SyncError {
    /// A network failure: the server was not reached, so the desk is offline.
    pub fn is_offline(&self) -> bool {
        matches!(self, SyncError::Offline(_))
    }

    /// The server no longer takes this desk's credentials (revoked, a reused refresh token, or
    /// the credentials gone from the keyring): only a new enrolment code brings it back, and
    /// the desk keeps everything meanwhile.
    pub fn is_shut_out(&self) -> bool {
        match self {
            SyncError::Unauthorized | SyncError::Store(StoreError::DeviceTokenMissing) => true,
            SyncError::Refused { code, .. } => {
                code == kaunter_protocol::http::error_code::REFRESH_TOKEN_REUSED
            }
            _ => false,
        }
    }
}
