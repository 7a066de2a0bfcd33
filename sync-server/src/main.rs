//! `sync-server`: sets up logging, parses the command line, and hands over to the library.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use kaunter_sync_server::cli::{self, Cli};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_env("KAUNTER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match cli::run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sync-server: {error}");
            ExitCode::FAILURE
        }
    }
}
