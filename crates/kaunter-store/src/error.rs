//! Everything the store can refuse, with messages that tell the person at the desk what to do.

use kaunter_core::patient::RegistrationError;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "The encryption key for this desk's data is not in the system keyring. Restore the keyring (or the backup of this computer's credentials); Kaunter will not create a new key for existing data."
    )]
    KeyMissing,
    #[error(
        "The key in the system keyring does not open this desk's data. Restore the original key; Kaunter will not overwrite it."
    )]
    WrongKey,
    #[error("The system keyring could not be used: {0}")]
    Keyring(String),
    #[error("The device credentials are not in the system keyring. Enrol this desk again.")]
    DeviceTokenMissing,
    #[error("Sign in at this desk first (choose your name and enter your PIN).")]
    SignInRequired,
    #[error("That PIN is not right.")]
    WrongPin,
    #[error("Too many wrong PINs for this person; wait {0} seconds and try again.")]
    PinLocked(u64),
    #[error("Your role does not allow this ({0}). Ask someone whose role does.")]
    NotAllowed(&'static str),
    #[error(
        "A refund needs a manager's approval: someone whose role allows refunds enters their own PIN."
    )]
    ApprovalRequired,
    #[error("This desk is not enrolled with a business yet.")]
    NotEnrolled,
    #[error("This desk is already enrolled with a business.")]
    AlreadyEnrolled,
    #[error(
        "The server answered for another desk than this one; nothing was changed. Use a code of this desk's own branch."
    )]
    NotThisDesk,
    #[error("A stored value in {table}.{column} could not be decrypted: it was altered or moved.")]
    Tampered {
        table: &'static str,
        column: &'static str,
    },
    #[error("{0} was not found on this desk.")]
    NotFound(String),
    #[error("There is no field {0:?} to change.")]
    UnknownField(String),
    #[error("The registration has errors.")]
    Invalid(Vec<RegistrationError>),
    #[error("The record has errors.")]
    InvalidRecord(Vec<kaunter_protocol::FieldError>),
    #[error("A ledger entry cannot be changed once written; record a correcting entry instead.")]
    LedgerImmutable,
    #[error(
        "This record belongs to another branch: this desk may read it, and it is changed at its own branch."
    )]
    OtherBranch,
    #[error(
        "This business's subscription has ended, so this desk is read-only: everything can still be read and exported. Head office pays to write again; nothing here is lost."
    )]
    SubscriptionReadOnly,
    #[error(
        "This business's subscription is suspended (or this desk has not reached the server for too long): the desk is read-only and does not sync. Everything can still be read and exported; connect to the server once head office has paid."
    )]
    SubscriptionSuspended,
    #[error("The server's licence was refused: {0}. The desk keeps the licence it had.")]
    LicenceRejected(String),
    #[error("The export could not be written ({0}). Choose another folder and try again.")]
    Export(String),
    #[error("The local database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("The local database is damaged: {0}")]
    Corrupt(String),
    #[error(
        "Local database migration {version} was changed after it was applied; this build cannot open this database safely."
    )]
    MigrationChanged { version: usize },
    #[error(
        "This database was written by a newer Kaunter (schema {found}, this build knows {known}). Update Kaunter."
    )]
    TooNew { found: usize, known: usize },
}
