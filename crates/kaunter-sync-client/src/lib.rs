//! The desk's sync client: pushes the outbox and pulls the business's changes over HTTP, and
//! runs that in the background. Store work happens under a short lock that is never held across
//! a network call.

mod client;
mod engine;
mod error;

pub use client::{COMPRESS_FROM_BYTES, PushBody, SyncClient, Transport};
pub use engine::{
    LiveStatus, PullProgress, Pushed, SyncEngine, SyncReport, push_waiting, status_report,
    sync_once, sync_once_at,
};
pub use error::{Result, SyncError};
