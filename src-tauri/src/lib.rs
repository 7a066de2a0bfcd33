//! The desktop shell: the only crate that depends on tauri. It opens the store, starts the
//! background sync and exposes thin commands over the framework-free libraries.

mod commands;
mod error;
mod state;

use state::DeskState;

/// Starts the desk app. Environment (for tests and several desks on one computer):
/// `KAUNTER_DATA_DIR` overrides where the database lives, `KAUNTER_KEYRING_PROFILE` separates
/// keyring entries, `KAUNTER_SYNC_INTERVAL_SECS` sets the background sync period.
pub fn run() -> Result<(), tauri::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KAUNTER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    tauri::Builder::default()
        .setup(|app| {
            let state = DeskState::open(app.handle())?;
            state.start_sync_if_enrolled();
            tauri::Manager::manage(app, state);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::desk_activity,
            commands::export_data,
            commands::enrol,
            commands::register_patient,
            commands::search_patients,
            commands::sync_status,
            commands::sync_now,
            commands::list_conflicts,
            commands::resolve_conflict,
            commands::refused_changes,
            commands::discard_refused_change,
            commands::desk_people,
            commands::sign_in,
            commands::sign_out,
            commands::list_catalogue,
            commands::save_catalogue_item,
            commands::clinical_record,
            commands::add_clinical_entry,
            commands::open_clinical_record_in_emergency,
            commands::reenrol,
        ])
        .run(tauri::generate_context!())
}
