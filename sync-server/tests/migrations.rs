//! Migrations against the real PostgreSQL: applied once, safe to run concurrently, and loud when
//! an applied migration was edited or is unknown to this build.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kaunter_sync_server::Error;
use kaunter_sync_server::migrate::{self, migrations};
use kaunter_sync_server::test_support::TestDatabase;

#[tokio::test]
async fn migrations_apply_once_and_are_recorded_with_their_checksums() {
    let db = TestDatabase::create_unmigrated().await.unwrap();
    let owner = db.owner_config().unwrap();
    let all: Vec<u32> = migrations().map(|m| m.version).collect();
    assert_eq!(migrate::run(&owner).await.unwrap(), all);
    assert_eq!(migrate::run(&owner).await.unwrap(), Vec::<u32>::new());

    let client = db.owner_client().await.unwrap();
    let recorded: Vec<(i32, String, String)> = client
        .query(
            "SELECT version, name, sha256 FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let expected: Vec<(i32, String, String)> = migrations()
        .map(|m| (m.version as i32, m.name.to_owned(), m.checksum()))
        .collect();
    assert_eq!(recorded, expected);
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn two_servers_starting_at_once_do_not_race() {
    let db = TestDatabase::create_unmigrated().await.unwrap();
    let owner = db.owner_config().unwrap();
    let (first, second) = tokio::join!(migrate::run(&owner), migrate::run(&owner));
    let mut applied = [first.unwrap(), second.unwrap()];
    applied.sort();
    let all: Vec<u32> = migrations().map(|m| m.version).collect();
    assert_eq!(applied, [Vec::new(), all]);
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn an_edited_migration_fails_loudly() {
    let db = TestDatabase::create().await.unwrap();
    let client = db.owner_client().await.unwrap();
    client
        .execute(
            "UPDATE schema_migrations SET sha256 = repeat('0', 64) WHERE version = 1",
            &[],
        )
        .await
        .unwrap();
    let error = migrate::run(&db.owner_config().unwrap()).await.unwrap_err();
    assert!(
        matches!(&error, Error::MigrationChanged { version: 1, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("0001_initial") && message.contains("append-only"),
        "{message}"
    );
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_migration_unknown_to_this_build_fails_loudly() {
    let db = TestDatabase::create().await.unwrap();
    let client = db.owner_client().await.unwrap();
    client
        .execute(
            "INSERT INTO schema_migrations (version, name, sha256)
             VALUES (9999, '9999_from_the_future', repeat('0', 64))",
            &[],
        )
        .await
        .unwrap();
    let error = migrate::run(&db.owner_config().unwrap()).await.unwrap_err();
    assert!(
        matches!(&error, Error::MigrationUnknown { version: 9999, .. }),
        "{error:?}"
    );
    db.drop_db().await.unwrap();
}
