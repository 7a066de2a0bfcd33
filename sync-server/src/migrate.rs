//! Schema migrations: the SQL files of `migrations/`, embedded at compile time (see build.rs),
//! applied at start-up as the owner role, one transaction each, and tracked with a checksum so an
//! edited migration is caught instead of silently skipped.

use sha2::{Digest, Sha256};
use tokio_postgres::NoTls;

use crate::error::{Error, Result};

/// One embedded migration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub version: u32,
    /// The file name without `.sql`, e.g. `0001_initial`.
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    /// Hex sha256 of the file's bytes.
    pub fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

const EMBEDDED: &[(u32, &str, &str)] = include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// Every migration this build carries, in version order.
pub fn migrations() -> impl Iterator<Item = Migration> {
    EMBEDDED
        .iter()
        .map(|&(version, name, sql)| Migration { version, name, sql })
}

/// Session-level advisory lock key: "kaunter" in ASCII. Two servers starting at once take turns.
/// Advisory locks are per database, which is the scope migrations need.
const MIGRATION_LOCK_KEY: i64 = 0x006b_6175_6e74_6572;

/// Applies every migration not yet applied, as the owner, and returns the versions it applied.
///
/// Fails, before applying anything, if an applied migration's checksum differs from the embedded
/// file, or if the database has a migration this build does not know.
pub async fn run(owner: &tokio_postgres::Config) -> Result<Vec<u32>> {
    let (mut client, connection) = owner.connect(NoTls).await?;
    let connection = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "migration connection closed with an error");
        }
    });
    // The lock is held by this session: closing the connection below releases it, even when a
    // migration fails half-way.
    let result = run_locked(&mut client).await;
    drop(client);
    let _ = connection.await;
    result
}

async fn run_locked(client: &mut tokio_postgres::Client) -> Result<Vec<u32>> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer     NOT NULL PRIMARY KEY,
                 name       text        NOT NULL,
                 sha256     text        NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;

    let applied = client
        .query(
            "SELECT version, name, sha256 FROM schema_migrations ORDER BY version",
            &[],
        )
        .await?;
    let mut applied_versions = Vec::with_capacity(applied.len());
    for row in &applied {
        let version: i32 = row.try_get(0)?;
        let name: String = row.try_get(1)?;
        let checksum: String = row.try_get(2)?;
        let version = u32::try_from(version).map_err(|_| Error::MigrationUnknown {
            version: 0,
            name: name.clone(),
        })?;
        let Some(embedded) = migrations().find(|m| m.version == version) else {
            return Err(Error::MigrationUnknown { version, name });
        };
        if embedded.checksum() != checksum {
            return Err(Error::MigrationChanged {
                version,
                name: embedded.name.to_owned(),
                applied: checksum,
                embedded: embedded.checksum(),
            });
        }
        applied_versions.push(version);
    }

    let mut newly_applied = Vec::new();
    for migration in migrations().filter(|m| !applied_versions.contains(&m.version)) {
        let version = i32::try_from(migration.version)
            .map_err(|_| Error::Internal("migration version out of range".to_owned()))?;
        let transaction = client.transaction().await?;
        transaction.batch_execute(migration.sql).await?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
                &[&version, &migration.name, &migration.checksum()],
            )
            .await?;
        transaction.commit().await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied migration"
        );
        newly_applied.push(migration.version);
    }
    ensure_licence_key(client).await?;
    Ok(newly_applied)
}

/// Makes the licence signing key once (a random 32-byte Ed25519 seed), right after the
/// migration that holds it; a key that exists is never replaced, since desks pin it.
async fn ensure_licence_key(client: &tokio_postgres::Client) -> Result<()> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut_slice())
        .map_err(|error| Error::Internal(format!("no randomness for the licence key: {error}")))?;
    client
        .execute(
            "INSERT INTO signing_keys (purpose, seed) VALUES ('licence', $1)
             ON CONFLICT (purpose) DO NOTHING",
            &[&seed.as_slice()],
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_embedded_in_order_without_gaps() {
        let versions: Vec<u32> = migrations().map(|m| m.version).collect();
        let expected: Vec<u32> = (1..=versions.len() as u32).collect();
        assert_eq!(versions, expected);
    }
}
