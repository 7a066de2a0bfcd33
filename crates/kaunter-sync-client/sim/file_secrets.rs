//! Secrets in a plain file, for the crash test only: its desk processes are killed and started
//! again, so the key must outlive a process, and no test may touch a real keyring. Never use
//! this for a real desk (the key would sit beside the data it protects).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use kaunter_store::{SecretStore, StoreError};
use zeroize::Zeroizing;

#[derive(Debug)]
pub struct FileSecretStore {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileSecretStore {
    pub fn new(path: impl Into<PathBuf>) -> FileSecretStore {
        FileSecretStore {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    fn read(&self) -> Result<BTreeMap<String, String>, StoreError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| StoreError::Keyring(format!("secrets file: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(StoreError::Keyring(e.to_string())),
        }
    }
}

impl SecretStore for FileSecretStore {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<String>>, StoreError> {
        let _guard = self
            .lock
            .lock()
            .map_err(|_| StoreError::Keyring("poisoned".into()))?;
        Ok(self.read()?.remove(name).map(Zeroizing::new))
    }

    fn set(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let _guard = self
            .lock
            .lock()
            .map_err(|_| StoreError::Keyring("poisoned".into()))?;
        let mut secrets = self.read()?;
        secrets.insert(name.to_owned(), value.to_owned());
        let text =
            serde_json::to_string(&secrets).map_err(|e| StoreError::Keyring(e.to_string()))?;
        // Write a new file and rename it over the old one, so a kill leaves one or the other.
        let temporary = self.path.with_extension("tmp");
        let mut file =
            std::fs::File::create(&temporary).map_err(|e| StoreError::Keyring(e.to_string()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&temporary, &self.path))
            .map_err(|e| StoreError::Keyring(e.to_string()))
    }
}
