//! The desk's local store: the only crate that speaks SQLite. It keeps every record of the desk
//! in one SQLite file (WAL mode), encrypts personal fields at this boundary (AES-256-GCM,
//! envelope bound to its place), finds people by IC or phone through blind indexes, and writes
//! each change and its outbox entry in one transaction.

mod checkpoint;
mod cipher;
pub mod convert;
mod error;
mod export;
mod licence;
mod migrations;
mod rows;
mod secrets;
mod store;

pub use cipher::{BlindIndex, FieldCipher, KeyMaterial};
pub use error::{Result, StoreError};
pub use export::ExportedFile;
pub use licence::LicenceStatus;
pub use secrets::{MemorySecretStore, OsKeyring, SecretStore};
pub use store::{
    DeskCredentials, DeskIdentity, EMERGENCY_OPENING, IDLE_SIGN_OUT, NewBooking, NewCashMovement,
    NewCatalogueItem, PIN_ATTEMPTS, PIN_LOCK, SignedIn, StaffView, Store, SyncState,
};
