//! Where the desk's secrets live: the data keys and the device token. Behind a small trait so
//! tests never touch a developer's real keyring; the real one is the OS keyring (Windows
//! Credential Manager, macOS Keychain, Secret Service on Linux).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use zeroize::Zeroizing;

use crate::error::{Result, StoreError};

pub trait SecretStore: Send + Sync + fmt::Debug {
    /// `Ok(None)` when no secret of that name exists; `Err` when the store itself failed.
    fn get(&self, name: &str) -> Result<Option<Zeroizing<String>>>;
    fn set(&self, name: &str, value: &str) -> Result<()>;
}

/// The OS keyring. `profile` separates several desks (or test runs) on one computer.
#[derive(Debug, Clone)]
pub struct OsKeyring {
    service: String,
    profile: String,
}

impl OsKeyring {
    pub fn new(service: impl Into<String>, profile: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            profile: profile.into(),
        }
    }

    fn entry(&self, name: &str) -> Result<keyring::Entry> {
        keyring::Entry::new(&self.service, &format!("{}/{name}", self.profile))
            .map_err(|e| StoreError::Keyring(e.to_string()))
    }
}

impl SecretStore for OsKeyring {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<String>>> {
        match self.entry(name)?.get_password() {
            Ok(secret) => Ok(Some(Zeroizing::new(secret))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(StoreError::Keyring(e.to_string())),
        }
    }

    fn set(&self, name: &str, value: &str) -> Result<()> {
        self.entry(name)?
            .set_password(value)
            .map_err(|e| StoreError::Keyring(e.to_string()))
    }
}

/// Secrets kept in memory: for tests and simulations only.
#[derive(Default)]
pub struct MemorySecretStore {
    secrets: Mutex<HashMap<String, Zeroizing<String>>>,
}

impl fmt::Debug for MemorySecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemorySecretStore([redacted])")
    }
}

impl MemorySecretStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets a secret, as a wiped keyring would.
    pub fn remove(&self, name: &str) {
        if let Ok(mut secrets) = self.secrets.lock() {
            secrets.remove(name);
        }
    }
}

impl SecretStore for MemorySecretStore {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<String>>> {
        let secrets = self
            .secrets
            .lock()
            .map_err(|_| StoreError::Keyring("memory secret store poisoned".into()))?;
        Ok(secrets.get(name).cloned())
    }

    fn set(&self, name: &str, value: &str) -> Result<()> {
        let mut secrets = self
            .secrets
            .lock()
            .map_err(|_| StoreError::Keyring("memory secret store poisoned".into()))?;
        secrets.insert(name.to_owned(), Zeroizing::new(value.to_owned()));
        Ok(())
    }
}
