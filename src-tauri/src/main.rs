//! The desk app's entry point; everything lives in the library so tests can reach it.
// No console window behind the desk app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::process::ExitCode;

fn main() -> ExitCode {
    match kaunter_desktop::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Kaunter could not start: {error}");
            ExitCode::FAILURE
        }
    }
}
