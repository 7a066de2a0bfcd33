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

/// Migration 0009 turned JSON stamps into the binary layout in SQL; the server reads them with
/// `stamps::decode`. A row stored before it must read back as the same stamps after it.
#[tokio::test]
async fn stamps_stored_as_json_read_back_the_same_after_compaction() {
    use kaunter_protocol::http::{Stamps, WireStamp};
    use uuid::Uuid;

    let db = TestDatabase::create_unmigrated().await.unwrap();
    let mut client = db.owner_client().await.unwrap();
    migrate_below(&mut client, 9).await;
    let (tenant, branch) = (Uuid::now_v7(), Uuid::now_v7());
    let (desk_a, desk_b) = (Uuid::now_v7(), Uuid::now_v7());
    let stamp = |hlc: u64, device_id: Uuid| WireStamp { hlc, device_id };
    // Two writers, field names out of collation order, the largest hlc a real clock gives.
    let stamps: Stamps = [
        ("full_name", stamp(117_673_136_680_599_552, desk_b)),
        ("id_number", stamp(117_673_136_680_599_552, desk_a)),
        ("Zed", stamp(1, desk_a)),
        ("deleted", stamp(i64::MAX as u64, desk_b)),
        ("_phone", stamp(0, desk_a)),
    ]
    .into_iter()
    .map(|(name, stamp)| (name.to_owned(), stamp))
    .collect();
    client
        .batch_execute(&format!(
            "INSERT INTO tenants (tenant_id, name) VALUES ('{tenant}', 'Klinik');
             INSERT INTO branches (tenant_id, branch_id, name) VALUES ('{tenant}', '{branch}', 'Main');
             INSERT INTO devices (tenant_id, device_id, branch_id, name, token_hash)
                 VALUES ('{tenant}', '{desk_a}', '{branch}', 'Desk', decode(repeat('00', 32), 'hex'));"
        ))
        .await
        .unwrap();
    let insert = |id: Uuid, stamps: serde_json::Value| {
        let client = &client;
        async move {
            client
                .execute(
                    "INSERT INTO patients (tenant_id, patient_id, branch_id, full_name, id_type,
                         id_number, created_at, updated_at, origin_device_id, last_change_seq,
                         stamps)
                     VALUES ($1, $2, $3, 'Siti', 'mykad', '900101145678', now(), now(), $4, 1, $5)",
                    &[&tenant, &id, &branch, &desk_a, &stamps],
                )
                .await
                .unwrap();
        }
    };
    let (stamped, unstamped) = (Uuid::now_v7(), Uuid::now_v7());
    insert(stamped, serde_json::to_value(&stamps).unwrap()).await;
    insert(unstamped, serde_json::json!({})).await;

    assert_eq!(
        migrate::run(&db.owner_config().unwrap()).await.unwrap(),
        migrations()
            .map(|m| m.version)
            .filter(|v| *v >= 9)
            .collect::<Vec<_>>()
    );
    let read = |id: Uuid| {
        let client = &client;
        async move {
            let row = client
                .query_one("SELECT stamps FROM patients WHERE patient_id = $1", &[&id])
                .await
                .unwrap();
            kaunter_sync_server::stamps::decode(row.get(0)).unwrap()
        }
    };
    assert_eq!(read(stamped).await, stamps);
    assert_eq!(read(unstamped).await, Stamps::new());
    db.drop_db().await.unwrap();
}

/// Migration 0028 moved each device's high-water mark out of its `devices` row: a mark stored
/// before it must be the device's mark after it, or the device's next push would be refused
/// (or, worse, replayed entries applied again).
#[tokio::test]
async fn high_water_marks_move_to_device_marks_unchanged() {
    use uuid::Uuid;

    let db = TestDatabase::create_unmigrated().await.unwrap();
    let mut client = db.owner_client().await.unwrap();
    migrate_below(&mut client, 28).await;
    let (tenant, branch) = (Uuid::now_v7(), Uuid::now_v7());
    let (pushed, fresh) = (Uuid::now_v7(), Uuid::now_v7());
    client
        .batch_execute(&format!(
            "INSERT INTO tenants (tenant_id, name, slug) VALUES ('{tenant}', 'Klinik', 'klinik');
             INSERT INTO branches (tenant_id, branch_id, name) VALUES ('{tenant}', '{branch}', 'Main');
             INSERT INTO devices (tenant_id, device_id, branch_id, name, token_hash, high_water)
                 VALUES ('{tenant}', '{pushed}', '{branch}', 'Desk 1', decode(repeat('00', 32), 'hex'), 4242),
                        ('{tenant}', '{fresh}', '{branch}', 'Desk 2', decode(repeat('01', 32), 'hex'), 0);"
        ))
        .await
        .unwrap();

    assert_eq!(
        migrate::run(&db.owner_config().unwrap()).await.unwrap(),
        migrations()
            .map(|m| m.version)
            .filter(|v| *v >= 28)
            .collect::<Vec<_>>()
    );
    let tx = client.transaction().await.unwrap();
    tx.batch_execute(&format!(
        "SELECT set_config('app.tenant_id', '{tenant}', true)"
    ))
    .await
    .unwrap();
    let marks: Vec<(Uuid, i64)> = tx
        .query(
            "SELECT device_id, high_water FROM device_marks ORDER BY high_water DESC",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(marks, [(pushed, 4242), (fresh, 0)]);
    let column: i64 = tx
        .query_one(
            "SELECT count(*) FROM information_schema.columns
             WHERE table_name = 'devices' AND column_name = 'high_water'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(column, 0, "one place holds the mark");
    tx.commit().await.unwrap();
    db.drop_db().await.unwrap();
}

/// Applies and records, as `migrate::run` would, every migration before `version`: the schema
/// an older server left, for a test of what a migration does to data stored before it.
async fn migrate_below(client: &mut tokio_postgres::Client, version: u32) {
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (version integer NOT NULL PRIMARY KEY,
                 name text NOT NULL, sha256 text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .unwrap();
    for migration in migrations().filter(|m| m.version < version) {
        let tx = client.transaction().await.unwrap();
        tx.batch_execute(migration.sql).await.unwrap();
        tx.execute(
            "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
            &[
                &(migration.version as i32),
                &migration.name,
                &migration.checksum(),
            ],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
}
