//! The local schema, as append-only migrations compiled into the binary. Each runs in its own
//! transaction; `PRAGMA user_version` counts the applied ones and a checksum table notices a
//! migration edited after release (which would leave desks with different schemas).

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};

/// Append only. Never edit a migration that has shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the clinic slice.
    r#"
    CREATE TABLE store_migrations (
        version INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL
    );
    -- Who this desk is and which key protects it. Plain values only: nothing personal.
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    -- Personal fields are AES-256-GCM envelopes (BLOB); *_bidx are blind indexes.
    CREATE TABLE patients (
        id TEXT PRIMARY KEY,
        branch_id TEXT NOT NULL,
        full_name BLOB NOT NULL,
        id_type TEXT NOT NULL,
        id_number BLOB NOT NULL,
        id_number_bidx BLOB NOT NULL,
        phone BLOB,
        phone_bidx BLOB,
        date_of_birth BLOB,
        sex TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        server_cursor INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX patients_id_number_bidx ON patients (id_number_bidx);
    CREATE INDEX patients_phone_bidx ON patients (phone_bidx);
    CREATE INDEX patients_created_at ON patients (created_at);
    -- Changes waiting for the server. seq is allocated from sync_state.last_seq, never reused.
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY,
        entity TEXT NOT NULL,
        row_id TEXT NOT NULL,
        payload BLOB NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX outbox_row_id ON outbox (row_id);
    CREATE TABLE sync_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last_seq INTEGER NOT NULL DEFAULT 0,
        acked_seq INTEGER NOT NULL DEFAULT 0,
        pull_cursor INTEGER NOT NULL DEFAULT 0,
        last_attempt_at TEXT,
        last_synced_at TEXT,
        last_error TEXT
    );
    INSERT INTO sync_state (id) VALUES (1);
    "#,
    // 2: per-field merge. Each patient keeps the stamp of the write behind every field (plain
    // JSON: stamps are times and device ids, nothing personal) and its tombstone; the desk's
    // hybrid logical clock survives restarts; the server's refusals stay beside their entries.
    r#"
    ALTER TABLE patients ADD COLUMN stamps TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE patients ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sync_state ADD COLUMN hlc INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN rejected_code TEXT;
    ALTER TABLE outbox ADD COLUMN rejected_message TEXT;
    "#,
    // 3: how many conflicts of this branch the server says are waiting for a person.
    r#"
    ALTER TABLE sync_state ADD COLUMN open_conflicts INTEGER NOT NULL DEFAULT 0;
    "#,
    // 4: the digest of this desk's rows, kept like the server's branch digest (the u64's bits).
    r#"
    ALTER TABLE sync_state ADD COLUMN state_digest INTEGER NOT NULL DEFAULT 0;
    "#,
    // 5: the client schema version each outbox entry was written under (2 for every entry
    // before this column: version 2 is the first this store's outbox ever held).
    r#"
    ALTER TABLE outbox ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 2;
    "#,
    // 6: appointments and the cash ledger (client schema 3), and the tombstone horizon. Times
    // are RFC 3339 UTC text with microseconds, so they sort as text. Notes are AES-GCM envelopes.
    r#"
    CREATE TABLE appointments (
        id TEXT PRIMARY KEY,
        branch_id TEXT NOT NULL,
        patient_id TEXT NOT NULL,
        practitioner_id TEXT NOT NULL,
        starts_at TEXT NOT NULL,
        ends_at TEXT NOT NULL,
        status TEXT NOT NULL,
        note BLOB,
        stamps TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        server_cursor INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX appointments_starts_at ON appointments (starts_at);
    CREATE INDEX appointments_practitioner ON appointments (practitioner_id, starts_at);
    CREATE TABLE cash_movements (
        id TEXT PRIMARY KEY,
        branch_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        amount_sen INTEGER NOT NULL CHECK (amount_sen > 0),
        patient_id TEXT,
        note BLOB,
        stamps TEXT NOT NULL,
        created_at TEXT NOT NULL,
        server_cursor INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX cash_movements_created_at ON cash_movements (created_at);
    CREATE INDEX patients_tombstones ON patients (server_cursor) WHERE deleted = 1;
    CREATE INDEX appointments_tombstones ON appointments (server_cursor) WHERE deleted = 1;
    ALTER TABLE sync_state ADD COLUMN purged_seq INTEGER NOT NULL DEFAULT 0;
    -- A desk of schema 2 was never sent appointments or cash entries, and never noted the
    -- server cursor of its own changes pulled back: it downloads its branch again from 0.
    UPDATE sync_state SET pull_cursor = 0;
    "#,
    // 7: the people who may sign in at this desk (from the server's roster: names and PIN
    // hashes as envelopes), and who was signed in when each outbox entry was written.
    r#"
    CREATE TABLE staff (
        user_id TEXT PRIMARY KEY,
        name BLOB NOT NULL,
        roles TEXT NOT NULL,
        permissions TEXT NOT NULL,
        pin_verifier BLOB NOT NULL
    ) WITHOUT ROWID;
    -- Wrong PINs per person since their last success, kept across restarts so closing the app
    -- does not reset the count; locked_until is an RFC 3339 time.
    CREATE TABLE pin_failures (
        user_id TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        locked_until TEXT
    ) WITHOUT ROWID;
    ALTER TABLE outbox ADD COLUMN actor TEXT;
    "#,
    // 8: the business's catalogue of products and services (client schema 4), tenant-wide and
    // not personal data, so in plain columns. Prices in sen.
    r#"
    CREATE TABLE catalogue_items (
        id TEXT PRIMARY KEY,
        branch_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        code TEXT NOT NULL,
        name TEXT NOT NULL,
        price_sen INTEGER NOT NULL CHECK (price_sen >= 0),
        tax_code TEXT NOT NULL,
        duration_minutes INTEGER,
        active INTEGER NOT NULL,
        stamps TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        server_cursor INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX catalogue_items_name ON catalogue_items (name);
    CREATE INDEX catalogue_items_tombstones ON catalogue_items (server_cursor) WHERE deleted = 1;
    -- A desk of schema 3 was never sent the catalogue, whose items may be older than its cursor:
    -- it downloads again from 0 (rows it holds merge with themselves, unchanged).
    UPDATE sync_state SET pull_cursor = 0;
    "#,
    // 9: who approved an outbox entry with their own PIN (a refund by someone who may not
    // refund alone).
    r#"
    ALTER TABLE outbox ADD COLUMN approver TEXT;
    "#,
    // 10: patients' clinical records (client schema 5): append-only entries whose body is
    // clinical, so encrypted.
    r#"
    CREATE TABLE clinical_entries (
        id TEXT PRIMARY KEY,
        branch_id TEXT NOT NULL,
        patient_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        body BLOB NOT NULL,
        author_id TEXT,
        stamps TEXT NOT NULL,
        created_at TEXT NOT NULL,
        server_cursor INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX clinical_entries_patient ON clinical_entries (patient_id, created_at);
    -- A desk of schema 4 was never sent clinical entries: it downloads again from 0.
    UPDATE sync_state SET pull_cursor = 0;
    "#,
];

fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn run(conn: &mut Connection) -> Result<()> {
    let applied: usize = conn
        .query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))
        .map(|v| usize::try_from(v).unwrap_or(usize::MAX))?;
    if applied > MIGRATIONS.len() {
        return Err(StoreError::TooNew {
            found: applied,
            known: MIGRATIONS.len(),
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().take(applied) {
        let version = index + 1;
        let recorded: Option<String> = conn
            .query_row(
                "SELECT sha256 FROM store_migrations WHERE version = ?1",
                params![version as i64],
                |row| row.get(0),
            )
            .optional()?;
        if recorded.as_deref() != Some(checksum(sql).as_str()) {
            return Err(StoreError::MigrationChanged { version });
        }
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let version = index + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO store_migrations (version, sha256) VALUES (?1, ?2)",
            params![version as i64, checksum(sql)],
        )?;
        tx.pragma_update(None, "user_version", version as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn migrations_apply_once_and_notice_edits() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        run(&mut conn).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        conn.execute(
            "UPDATE store_migrations SET sha256 = 'edited' WHERE version = 1",
            [],
        )
        .unwrap();
        assert!(matches!(
            run(&mut conn),
            Err(StoreError::MigrationChanged { version: 1 })
        ));
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(
            run(&mut conn),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }
}
