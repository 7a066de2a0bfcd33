//! What the desk holds while it runs: the opened store (or why it could not be opened) and the
//! background sync engine once the desk is enrolled.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kaunter_store::{OsKeyring, SecretStore, Store};
use kaunter_sync_client::{SyncClient, SyncEngine};
use tauri::Manager;

use crate::error;
use kaunter_protocol::ipc::CommandError;

const KEYRING_SERVICE: &str = "Kaunter";
const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(15);

pub struct DeskState {
    /// The store, or the reason it could not be opened (missing key, damaged file, ...): the
    /// window shows that reason instead of the desk, and nothing is overwritten.
    store: Result<Arc<Mutex<Store>>, CommandError>,
    engine: Mutex<Option<Arc<SyncEngine>>>,
    sync_interval: Duration,
}

impl DeskState {
    pub fn open(app: &tauri::AppHandle) -> Result<DeskState, Box<dyn std::error::Error>> {
        let data_dir = match std::env::var_os("KAUNTER_DATA_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => app.path().app_data_dir()?,
        };
        std::fs::create_dir_all(&data_dir)?;
        let profile =
            std::env::var("KAUNTER_KEYRING_PROFILE").unwrap_or_else(|_| "default".to_owned());
        let secrets: Arc<dyn SecretStore> = Arc::new(OsKeyring::new(KEYRING_SERVICE, profile));
        let path = data_dir.join("desk.db");
        tracing::info!(path = %path.display(), "opening the desk's store");
        let store = Store::open(&path, secrets)
            .map(|store| Arc::new(Mutex::new(store)))
            .map_err(error::from_store);
        let sync_interval = std::env::var("KAUNTER_SYNC_INTERVAL_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_SYNC_INTERVAL);
        Ok(DeskState {
            store,
            engine: Mutex::new(None),
            sync_interval,
        })
    }

    pub fn store(&self) -> Result<&Arc<Mutex<Store>>, CommandError> {
        self.store.as_ref().map_err(Clone::clone)
    }

    pub fn engine(&self) -> Option<Arc<SyncEngine>> {
        self.engine.lock().ok().and_then(|engine| engine.clone())
    }

    /// Starts background sync when the store is enrolled and has its credentials.
    pub fn start_sync_if_enrolled(&self) {
        let Ok(store) = self.store() else { return };
        let client = {
            let Ok(guard) = store.lock() else { return };
            let Some(identity) = guard.identity() else {
                return;
            };
            match SyncClient::with_credentials(&identity.server_url, guard.credentials()) {
                Ok(client) => client,
                Err(error) => {
                    tracing::warn!(%error, "not syncing");
                    return;
                }
            }
        };
        let engine = Arc::new(SyncEngine::new(store.clone(), client));
        if let Ok(mut slot) = self.engine.lock() {
            if slot.is_some() {
                return;
            }
            *slot = Some(engine.clone());
        }
        tauri::async_runtime::spawn(engine.run(self.sync_interval));
    }
}
