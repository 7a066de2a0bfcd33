//! WAL checkpoints off the write path.
//!
//! With SQLite's automatic checkpoint, the commit that pushes the WAL past 1,000 pages copies
//! them into the database file and syncs it before it returns: about one registration in a
//! hundred took several times longer than the rest (the write path's p99 in BENCHMARKS.md).
//! The store's connection therefore never checkpoints; a thread with a connection of its own
//! runs a passive checkpoint (one that never waits for, nor blocks, the writer) every
//! [`INTERVAL`], and a full one, emptying the WAL, when the store closes.
//!
//! A crash in between loses nothing: committed transactions live in the WAL until a checkpoint
//! copies them, and SQLite replays the WAL when the file is next opened.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is folded into the database file. At the desk's fastest (a branch's first
/// download) a quarter of a second of writes is some tens of MB of WAL.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// The running checkpoint thread; dropping it runs a last full checkpoint and waits for it.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`, which must already be in WAL mode. On an
    /// error the store keeps SQLite's automatic checkpoint instead.
    pub(crate) fn start(path: &Path) -> Result<Checkpointer, String> {
        let conn = Connection::open(path).map_err(|error| error.to_string())?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|error| error.to_string())?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("kaunter-wal-checkpoint".into())
            .spawn(move || {
                // Any message or a dropped sender means the store is closing.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    if let Err(error) = checkpoint(&conn, "PASSIVE") {
                        tracing::warn!(%error, "WAL checkpoint failed; trying again shortly");
                    }
                }
                if let Err(error) = checkpoint(&conn, "TRUNCATE") {
                    tracing::warn!(%error, "final WAL checkpoint failed; SQLite replays the WAL at the next open");
                }
            })
            .map_err(|error| error.to_string())?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<()> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
