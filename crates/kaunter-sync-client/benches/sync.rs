//! Sync benchmarks that print figures, each beside a baseline measured in the same run:
//!
//! 1. local write path: `Store::register_patient` (validation done, HLC, AES-GCM on four
//!    fields, two blind indexes, duplicate check, row + outbox entry in one transaction) against
//!    a bare rusqlite insert of the same row in plaintext, one transaction each, same pragmas;
//! 2. server ingest: patients pushed over real HTTP to the real server by the desk's push loop
//!    (two requests in flight; merge, change log, high-water mark) against a raw multi-row
//!    PostgreSQL upsert of the same rows, measured in turns, round by round;
//! 3. initial sync: a fresh desk pulling and applying a branch's changes over loopback;
//! 4. bytes per row of a push and of a pull page, as JSON and as sent (zstd), against the row's
//!    own size.
//!
//! Run: `cargo bench -p kaunter-sync-client --bench sync` (PostgreSQL as for the tests;
//! `KAUNTER_BENCH_ROWS` sets the row count of 2 and 3, default 100000;
//! `KAUNTER_BENCH_ONLY=ingest` runs 2 alone, for profiling). Figures go to stdout;
//! BENCHMARKS.md records a run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeDelta, Utc};
use kaunter_core::{Hlc, IdType, NewPatient, RegistrationForm};
use kaunter_protocol::SCHEMA_VERSION;
use kaunter_protocol::http::{Change, Entity, OutboxEntry, PatientRecord, PushRequest, WireStamp};
use kaunter_store::{DeskIdentity, MemorySecretStore, Store};
use kaunter_sync_client::{PushBody, SyncClient, push_waiting, sync_once};
use kaunter_sync_server::admin;
use kaunter_sync_server::test_support::{TestDatabase, TestServer};
use uuid::Uuid;

const WRITES: usize = 2000;
const PUSH_BATCH: usize = 500;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn patient(i: usize) -> NewPatient {
    let born = NaiveDate::from_ymd_opt(1950, 1, 1).unwrap() + TimeDelta::days((i / 1000) as i64);
    let ic = format!("{}14{:04}", born.format("%y%m%d"), i % 1000);
    let name = format!("Pesakit Penanda Aras {i}");
    let phone = format!("012{:07}", i);
    registered(&name, &ic, &phone)
}

/// A registration form of a MyKad holder, validated as the desk does.
fn registered(name: &str, mykad: &str, phone: &str) -> NewPatient {
    NewPatient::validate(
        &RegistrationForm {
            full_name: name,
            id_type: IdType::MyKad,
            id_number: mykad,
            phone,
            date_of_birth: None,
            sex: None,
        },
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
    )
    .unwrap()
}

/// `p` as the row the wire carries, a new one of `branch`.
fn as_record(p: &NewPatient, branch: Uuid, sex: Option<kaunter_protocol::Sex>) -> PatientRecord {
    PatientRecord {
        id: Uuid::now_v7(),
        branch_id: branch,
        full_name: p.full_name().to_owned(),
        id_type: kaunter_protocol::IdType::Mykad,
        id_number: p.id_number().to_owned(),
        phone: p.phone().map(|ph| ph.e164().to_owned()),
        date_of_birth: Some(p.date_of_birth()),
        sex,
    }
}

fn identity(tenant: Uuid, branch: Uuid, device: Uuid, server_url: &str) -> DeskIdentity {
    DeskIdentity {
        tenant_id: kaunter_core::TenantId::from_uuid(tenant),
        branch_id: kaunter_core::BranchId::from_uuid(branch),
        device_id: kaunter_core::DeviceId::from_uuid(device),
        device_name: "Bench desk".into(),
        server_url: server_url.to_owned(),
        business_name: "Klinik Penanda Aras".into(),
        branch_name: "Main".into(),
    }
}

fn write_path() {
    let dir = tempfile::tempdir().unwrap();

    // Baseline: the same row, plaintext, bare rusqlite, same journal and sync settings.
    let conn = rusqlite::Connection::open(dir.path().join("bare.db")).unwrap();
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.pragma_update(None, "cache_size", -65_536).unwrap();
    conn.execute_batch(
        "CREATE TABLE patients (id TEXT PRIMARY KEY, branch_id TEXT, full_name TEXT, id_type TEXT,
             id_number TEXT, phone TEXT, date_of_birth TEXT, sex TEXT, created_at TEXT) WITHOUT ROWID",
    )
    .unwrap();
    let mut bare = Vec::with_capacity(WRITES);
    for i in 0..WRITES {
        let p = patient(i);
        let started = Instant::now();
        let tx = conn.unchecked_transaction().unwrap();
        tx.execute(
            "INSERT INTO patients VALUES (?1, ?2, ?3, 'mykad', ?4, ?5, ?6, 'male', ?7)",
            rusqlite::params![
                Uuid::now_v7().to_string(),
                Uuid::nil().to_string(),
                p.full_name(),
                p.id_number(),
                p.phone().map(|ph| ph.e164().to_owned()),
                p.date_of_birth().to_string(),
                Utc::now().to_rfc3339(),
            ],
        )
        .unwrap();
        tx.commit().unwrap();
        bare.push(started.elapsed());
    }

    let mut store = Store::open(
        dir.path().join("desk.db"),
        Arc::new(MemorySecretStore::new()),
    )
    .unwrap();
    store
        .enrol(
            identity(
                Uuid::now_v7(),
                Uuid::now_v7(),
                Uuid::now_v7(),
                "http://127.0.0.1:1",
            ),
            "kt1.bench",
        )
        .unwrap();
    let mut ours = Vec::with_capacity(WRITES);
    for i in 0..WRITES {
        let p = patient(i);
        let started = Instant::now();
        store.register_patient(&p, Utc::now()).unwrap();
        ours.push(started.elapsed());
    }
    bare.sort();
    ours.sort();
    println!("## 1. Local write path ({WRITES} registrations, one transaction each)");
    println!("| | p50 µs | p99 µs |");
    println!("|---|---|---|");
    println!(
        "| bare rusqlite insert (baseline) | {:.0} | {:.0} |",
        micros(percentile(&bare, 0.5)),
        micros(percentile(&bare, 0.99))
    );
    println!(
        "| register_patient (encrypt + blind index + outbox) | {:.0} | {:.0} |",
        micros(percentile(&ours, 0.5)),
        micros(percentile(&ours, 0.99))
    );
    println!(
        "ratio ours/baseline: p50 {:.2}, p99 {:.2}; goal p99 < 2000 µs: {}",
        micros(percentile(&ours, 0.5)) / micros(percentile(&bare, 0.5)),
        micros(percentile(&ours, 0.99)) / micros(percentile(&bare, 0.99)),
        if percentile(&ours, 0.99) < Duration::from_millis(2) {
            "met"
        } else {
            "NOT met"
        }
    );
    println!();
}

fn record(i: usize, branch: Uuid) -> PatientRecord {
    as_record(&patient(i), branch, Some(kaunter_protocol::Sex::Male))
}

/// Registrations as a front desk makes them, for the bytes on the wire (section 4): Malay,
/// Chinese and Indian names, dates of birth, places of birth, serials and mobile numbers drawn
/// at random (seeded), each a few minutes after the one before. The ingest rows above are
/// regular (numbered names, phones and documents, made in a tight loop) and would compress
/// far better than a real branch's.
fn front_desk_sample(count: usize, branch: Uuid, device: Uuid) -> Vec<OutboxEntry> {
    const MALAY: &[&str] = &[
        "Nur Aisyah",
        "Muhammad Hafiz",
        "Siti Nurhaliza",
        "Ahmad Faris",
        "Nurul Izzah",
        "Mohd Firdaus",
        "Aminah",
        "Farah Nadia",
        "Haziq Iskandar",
        "Zulkifli",
        "Noraini",
        "Khairul Anuar",
    ];
    const FATHERS: &[&str] = &[
        "Ahmad",
        "Ismail",
        "Abdullah",
        "Hassan",
        "Yusof",
        "Osman",
        "Rahman",
        "Ibrahim",
        "Subramaniam",
        "Krishnan",
        "Muthu",
        "Raman",
    ];
    const SURNAMES: &[&str] = &["Tan", "Lim", "Wong", "Lee", "Chong", "Goh", "Ng", "Ong"];
    const SYLLABLES: &[&str] = &[
        "Mei", "Ling", "Wei", "Jie", "Kar", "Mun", "Siew", "Lan", "Boon", "Hock", "Chee", "Keong",
        "Hui", "Yee",
    ];
    const INDIAN: &[&str] = &[
        "Rajesh", "Priya", "Kavitha", "Arjun", "Devi", "Suresh", "Lakshmi",
    ];
    let mut rng = kaunter_core::SeededRng::new(0x6b61_756e);
    let mut at = Utc::now() - TimeDelta::days(30);
    (0..count)
        .map(|i| {
            let mut pick = |items: &[&'static str]| *rng.pick(items).unwrap();
            let name = match i % 3 {
                0 => format!("{} binti {}", pick(MALAY), pick(FATHERS)),
                1 => format!("{} {} {}", pick(SURNAMES), pick(SYLLABLES), pick(SYLLABLES)),
                _ => format!("{} a/l {}", pick(INDIAN), pick(FATHERS)),
            };
            let born = NaiveDate::from_ymd_opt(1940, 1, 1).unwrap()
                + TimeDelta::days(i64::try_from(rng.below(29_000)).unwrap());
            let ic = format!(
                "{}{:02}{:04}",
                born.format("%y%m%d"),
                1 + rng.below(14),
                rng.below(10_000)
            );
            let phone = format!("01{}{:07}", 2 + rng.below(8), rng.below(10_000_000));
            let record = as_record(&registered(&name, &ic, &phone), branch, None);
            at += TimeDelta::seconds(30 + i64::try_from(rng.below(600)).unwrap());
            let millis = u64::try_from(at.timestamp_millis()).unwrap();
            registration(
                i as i64 + 1,
                &record,
                device,
                Hlc::new(millis, 0).unwrap().as_u64(),
                at,
            )
        })
        .collect()
}

/// `record`'s registration by `device`, as outbox entry `seq`.
fn registration(
    seq: i64,
    record: &PatientRecord,
    device: Uuid,
    hlc: u64,
    at: chrono::DateTime<Utc>,
) -> OutboxEntry {
    OutboxEntry {
        actor: None,
        approver: None,
        seq,
        schema_version: SCHEMA_VERSION,
        change: Change {
            entity: Entity::Patient,
            row_id: record.id,
            branch_id: record.branch_id,
            stamp: WireStamp {
                hlc,
                device_id: device,
            },
            fields: record.fields(),
            recorded_at: at,
        },
    }
}

/// Where a baseline's business stands among the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Baseline {
    /// A business made before another that has rows of its own, as every business but the
    /// newest is, and as the business push writes into is here.
    AmongOthers,
    /// The newest business (what the baseline was until 2026-12-06). Business ids are UUIDv7,
    /// so its rows sort last in every index that starts with the business's id, and
    /// PostgreSQL inserts into an index's last page without searching the index for it: on
    /// this VM about 13 % faster than the same rows into a business made earlier.
    Newest,
}

/// A business made after every other, with `rows` patients: enough leaf pages of its own in
/// each index that no other business's rows go into an index's last page.
async fn newer_business(db: &TestDatabase, server: &TestServer, device: Uuid, rows: usize) {
    let owner = db.owner_client().await.unwrap();
    let name = format!("Klinik Terbaru {}", Uuid::now_v7());
    let business = admin::create_business(server.pool(), &name, "Main", None)
        .await
        .unwrap();
    owner
        .batch_execute(&format!(
            "INSERT INTO devices (tenant_id, device_id, branch_id, name, token_hash)
             VALUES ('{tenant}', '{device}', '{branch}', 'Newest', decode(repeat('00', 32), 'hex'));
             INSERT INTO patients (tenant_id, patient_id, branch_id, full_name, id_type,
                 id_number, created_at, updated_at, origin_device_id, last_change_seq, stamps,
                 deleted)
             SELECT '{tenant}', gen_random_uuid(), '{branch}', 'Pesakit ' || n, 'mykad',
                 lpad(n::text, 12, '0'), now(), now(), '{device}', n, '\\x010000', false
             FROM generate_series(1, {rows}) AS n;",
            tenant = business.tenant_id.as_uuid(),
            branch = business.branch_id.as_uuid(),
        ))
        .await
        .unwrap();
}

/// One batch of the raw upsert, in the columns push stores: ids, names, document numbers,
/// phones, births, the desks' recorded times, change numbers, the stamps' stored bytes.
type RawBatch = (
    Vec<Uuid>,
    Vec<String>,
    Vec<String>,
    Vec<Option<String>>,
    Vec<Option<NaiveDate>>,
    Vec<chrono::DateTime<Utc>>,
    Vec<i64>,
    Vec<Vec<u8>>,
);

/// The rows of `entries` (`records` are their values) exactly as push stores them, in batches
/// of [`PUSH_BATCH`]: made before any clock starts.
fn raw_batches(entries: &[OutboxEntry], records: &[PatientRecord]) -> Vec<RawBatch> {
    entries
        .chunks(PUSH_BATCH)
        .zip(records.chunks(PUSH_BATCH))
        .map(|(entries, records)| {
            let stamps: Vec<Vec<u8>> = entries
                .iter()
                .map(|entry| {
                    let stamps: kaunter_protocol::http::Stamps = entry
                        .change
                        .fields
                        .keys()
                        .map(|name| (name.clone(), entry.change.stamp))
                        .collect();
                    kaunter_sync_server::stamps::encode(&stamps).unwrap()
                })
                .collect();
            (
                records.iter().map(|r| r.id).collect(),
                records.iter().map(|r| r.full_name.clone()).collect(),
                records.iter().map(|r| r.id_number.clone()).collect(),
                records.iter().map(|r| r.phone.clone()).collect(),
                records.iter().map(|r| r.date_of_birth).collect(),
                entries.iter().map(|e| e.change.recorded_at).collect(),
                entries.iter().map(|e| e.seq).collect(),
                stamps,
            )
        })
        .collect()
}

/// A business of its own that a baseline upserts the rows into, as the owner (no row-level
/// security).
struct RawTarget {
    owner: tokio_postgres::Client,
    tenant: Uuid,
    branch: Uuid,
    device: Uuid,
}

impl RawTarget {
    async fn new(
        db: &TestDatabase,
        server: &TestServer,
        writer: &kaunter_protocol::http::EnrolResponse,
        baseline: Baseline,
    ) -> RawTarget {
        let name = format!("Klinik Garis Dasar ({baseline:?})");
        let business = admin::create_business(server.pool(), &name, "Main", None)
            .await
            .unwrap();
        let owner = db.owner_client().await.unwrap();
        owner
            .execute(
                "INSERT INTO devices (tenant_id, device_id, branch_id, name, token_hash)
                 VALUES ($1, $2, $3, 'Baseline', decode(repeat('00', 32), 'hex'))",
                &[
                    &business.tenant_id.as_uuid(),
                    &writer.device_id,
                    &business.branch_id.as_uuid(),
                ],
            )
            .await
            .unwrap();
        if baseline == Baseline::AmongOthers {
            newer_business(db, server, writer.device_id, 2000).await;
        }
        RawTarget {
            owner,
            tenant: business.tenant_id.as_uuid(),
            branch: business.branch_id.as_uuid(),
            device: writer.device_id,
        }
    }

    /// Upserts `batches`, one statement each; how long that took.
    async fn upsert(&self, batches: &[RawBatch]) -> Duration {
        let started = Instant::now();
        for (ids, names, numbers, phones, births, times, seqs, stamps) in batches {
            self.owner
                .execute(
                    "INSERT INTO patients (tenant_id, patient_id, branch_id, full_name, id_type,
                         id_number, phone, date_of_birth, sex, created_at, updated_at,
                         origin_device_id, last_change_seq, stamps, deleted)
                     SELECT $1, u.id, $2, u.name, 'mykad', u.number, u.phone, u.born, 'male',
                            u.at, u.at, $3, u.seq, u.stamps, false
                     FROM unnest($4::uuid[], $5::text[], $6::text[], $7::text[], $8::date[],
                                 $9::timestamptz[], $10::bigint[], $11::bytea[])
                          AS u(id, name, number, phone, born, at, seq, stamps)
                     ON CONFLICT (tenant_id, patient_id) DO UPDATE SET
                         full_name = EXCLUDED.full_name, phone = EXCLUDED.phone",
                    &[
                        &self.tenant,
                        &self.branch,
                        &self.device,
                        ids,
                        names,
                        numbers,
                        phones,
                        births,
                        times,
                        seqs,
                        stamps,
                    ],
                )
                .await
                .unwrap();
        }
        started.elapsed()
    }
}

/// A desk of `business`'s first branch, enrolled over HTTP.
async fn enrol_desk(
    server: &TestServer,
    business: admin::CreatedBusiness,
    name: &str,
) -> kaunter_protocol::http::EnrolResponse {
    let code = admin::create_enrolment_code(
        server.pool(),
        business.tenant_id,
        business.branch_id,
        admin::DEFAULT_ENROLMENT_CODE_TTL,
    )
    .await
    .unwrap();
    SyncClient::enrol(&server.base_url, &code, name)
        .await
        .unwrap()
}

/// Rounds the ingest comparison is measured in: each round pushes a share of the rows and
/// upserts the same share into each baseline, so a drift in the machine's speed during the
/// run (this VM's timings vary by ±20 % from one run to the next) falls on both alike.
const ROUNDS: usize = 5;

async fn server_side(rows: usize) {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let business = admin::create_business(server.pool(), "Klinik Penanda Aras", "Main", None)
        .await
        .unwrap();
    let enrol = |name: &'static str| enrol_desk(&server, business, name);
    let writer = enrol("Writer").await;
    let client = SyncClient::new(&server.base_url, &writer.device_token).unwrap();
    let branch = writer.branch_id;
    let base_hlc = Hlc::new(u64::try_from(Utc::now().timestamp_millis()).unwrap(), 0)
        .unwrap()
        .as_u64();
    let records: Vec<PatientRecord> = (0..rows).map(|i| record(i, branch)).collect();
    let entries: Vec<OutboxEntry> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            registration(
                i as i64 + 1,
                r,
                writer.device_id,
                base_hlc + i as u64,
                Utc::now(),
            )
        })
        .collect();

    // Baselines: the same rows as a raw multi-row upsert, as the owner (no row-level security),
    // in batches of the same size, each into a business of its own (same table, same indexes).
    // The ratio's baseline writes into a business that is not the newest, as push does here
    // (the writer's business is made first); the newest business's rows go into each index's
    // last page with no search, which the earlier baseline had (still printed, so figures stay
    // comparable with earlier runs).
    let among_others = RawTarget::new(&db, &server, &writer, Baseline::AmongOthers).await;
    let newest = RawTarget::new(&db, &server, &writer, Baseline::Newest).await;
    let batches = raw_batches(&entries, &records);

    // Round by round, in a rotating order: the raw upserts, and the desk's own push loop (two
    // requests in flight) over the entries in memory (what is timed is the server's side, not
    // the reading of a desk's outbox).
    let per_round = batches.len().div_ceil(ROUNDS);
    let (mut raw, mut earlier, mut ingest) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut round_ratios = Vec::new();
    let mut acked = 0;
    for (round, round_batches) in batches.chunks(per_round).enumerate() {
        let first_row = round * per_round * PUSH_BATCH;
        let end_row = (first_row + per_round * PUSH_BATCH).min(rows);
        let (mut round_raw, mut round_push) = (Duration::ZERO, Duration::ZERO);
        for step in 0..3 {
            match (round + step) % 3 {
                0 => round_raw = among_others.upsert(round_batches).await,
                1 => earlier += newest.upsert(round_batches).await,
                _ => {
                    let started = Instant::now();
                    push_waiting(
                        &client,
                        PUSH_BATCH,
                        // What the rounds before acknowledged is no longer waiting.
                        |after, max| {
                            let from = usize::try_from(after).unwrap().max(first_row);
                            Ok(entries[from.min(end_row)..(from + max).min(end_row)].to_vec())
                        },
                        |acked_seq, _, rejected| {
                            assert!(rejected.is_empty(), "{rejected:?}");
                            acked = acked_seq;
                            Ok(())
                        },
                    )
                    .await
                    .unwrap();
                    round_push = started.elapsed();
                }
            }
        }
        assert_eq!(acked, end_row as i64);
        raw += round_raw;
        ingest += round_push;
        round_ratios.push(round_raw.as_secs_f64() / round_push.as_secs_f64());
    }
    assert_eq!(acked, rows as i64);
    let raw_rate = rows as f64 / raw.as_secs_f64();
    let ingest_rate = rows as f64 / ingest.as_secs_f64();
    println!(
        "## 2. Server ingest ({rows} new patients, batches of {PUSH_BATCH}, in {ROUNDS} rounds)"
    );
    println!("| | seconds | rows/s |");
    println!("|---|---|---|");
    println!(
        "| raw multi-row upsert of the rows as stored, into a business among others (baseline) | {:.2} | {:.0} |",
        raw.as_secs_f64(),
        raw_rate
    );
    println!(
        "| earlier baseline: the same upsert into the newest business | {:.2} | {:.0} |",
        earlier.as_secs_f64(),
        rows as f64 / earlier.as_secs_f64()
    );
    println!(
        "| push over HTTP (merge + change log + high-water) | {:.2} | {:.0} |",
        ingest.as_secs_f64(),
        ingest_rate
    );
    round_ratios.sort_by(f64::total_cmp);
    println!(
        "ratio ours/baseline: {:.2} (rounds {:.2}-{:.2}; against the earlier baseline: {:.2}); goals >= 50000 rows/s: {}, >= 0.7 of raw: {}",
        ingest_rate / raw_rate,
        round_ratios.first().unwrap(),
        round_ratios.last().unwrap(),
        ingest_rate * earlier.as_secs_f64() / rows as f64,
        if ingest_rate >= 50_000.0 {
            "met"
        } else {
            "NOT met"
        },
        if ingest_rate >= 0.7 * raw_rate {
            "met"
        } else {
            "NOT met"
        }
    );
    println!();
    if ingest_only() {
        drop(server);
        db.drop_db().await.unwrap();
        return;
    }

    // Initial sync of the branch to a fresh desk.
    let reader = enrol("Fresh desk").await;
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(
        dir.path().join("fresh.db"),
        Arc::new(MemorySecretStore::new()),
    )
    .unwrap();
    store
        .enrol(
            identity(
                reader.tenant_id,
                reader.branch_id,
                reader.device_id,
                &server.base_url,
            ),
            &reader.device_token,
        )
        .unwrap();
    let store = Mutex::new(store);
    let reader_client = SyncClient::new(&server.base_url, &reader.device_token).unwrap();
    let started = Instant::now();
    let report = sync_once(&store, &reader_client).await.unwrap();
    let initial = started.elapsed();
    assert_eq!(report.applied, rows);
    println!("## 3. Initial sync of {rows} rows to a fresh desk over loopback");
    println!(
        "{:.2} s, {:.0} rows/s (goal: 1,000,000 rows in under 60 s, i.e. >= 16,667 rows/s: {})",
        initial.as_secs_f64(),
        rows as f64 / initial.as_secs_f64(),
        if rows as f64 / initial.as_secs_f64() >= 16_667.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!();

    wire_bytes(&server).await;
    drop(server);
    db.drop_db().await.unwrap();
}

/// Section 4: the bytes per row of a push and of a pull page of a front desk's registrations
/// ([`front_desk_sample`]), as JSON and as sent, against the row's own size. The sample is
/// pushed by a desk of a business of its own and pulled by another desk of it.
async fn wire_bytes(server: &TestServer) {
    const SAMPLE: usize = 2000;
    let business = admin::create_business(server.pool(), "Klinik Sampel", "Main", None)
        .await
        .unwrap();
    let writer = enrol_desk(server, business, "Sample writer").await;
    let reader = enrol_desk(server, business, "Sample reader").await;
    let entries = front_desk_sample(SAMPLE, writer.branch_id, writer.device_id);
    // What a push carries, as JSON and as the desk sends it once the server has said it reads
    // zstd (every push after its first).
    let (mut push_json, mut push_wire) = (0, 0);
    let client = SyncClient::new(&server.base_url, &writer.device_token).unwrap();
    for batch in entries.chunks(PUSH_BATCH) {
        let request = PushRequest {
            schema_version: SCHEMA_VERSION,
            entries: batch.to_vec(),
        };
        push_json += PushBody::new(&request, false).unwrap().body.len();
        push_wire += PushBody::new(&request, true).unwrap().body.len();
        let answer = client.push_entries(batch.to_vec()).await.unwrap();
        assert!(answer.rejected.is_empty(), "{:?}", answer.rejected);
    }
    assert!(client.compresses_pushes());
    // One page of the desk's size, as the server sends it to a caller that takes it plain and
    // to a desk (zstd), seen by a client that does not decompress.
    let raw = reqwest::Client::builder().no_zstd().build().unwrap();
    let url = format!(
        "{}/v1/sync/pull?cursor=0&limit={SAMPLE}&schema_version={SCHEMA_VERSION}",
        server.base_url
    );
    let mut pull = [0; 2];
    for (size, accept) in pull.iter_mut().zip(["identity", "zstd"]) {
        let response = raw
            .get(&url)
            .bearer_auth(&reader.device_token)
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        let coding = response.headers().get("content-encoding").cloned();
        assert_eq!(
            coding.as_ref().and_then(|value| value.to_str().ok()),
            (accept == "zstd").then_some("zstd")
        );
        *size = response.bytes().await.unwrap().len();
    }
    let row_bytes: usize = entries
        .iter()
        .map(|entry| {
            let text = |name: &str| entry.change.fields[name].as_str().map_or(0, str::len);
            text("full_name")
                + text("id_number")
                + text("phone")
                + 10 // date of birth
                + 16 * 2 // ids
                + 6 // id type
        })
        .sum::<usize>()
        / SAMPLE;
    let per_row = |bytes: usize| {
        let per_row = bytes as f64 / SAMPLE as f64;
        format!("{per_row:.0} B ({:.2}x)", per_row / row_bytes as f64)
    };
    println!("## 4. Bytes on the wire per row ({SAMPLE} front-desk registrations)");
    println!("row's own size (values, binary ids): {row_bytes} B (baseline)");
    println!("| per row | JSON | as sent (zstd) |");
    println!("|---|---|---|");
    println!(
        "| push (batches of {PUSH_BATCH}) | {} | {} |",
        per_row(push_json),
        per_row(push_wire)
    );
    println!(
        "| pull (a page of {SAMPLE}) | {} | {} |",
        per_row(pull[0]),
        per_row(pull[1])
    );
}

/// `KAUNTER_BENCH_ONLY=ingest`: only the server ingest (2), e.g. under a profiler.
fn ingest_only() -> bool {
    std::env::var("KAUNTER_BENCH_ONLY").is_ok_and(|only| only == "ingest")
}

fn main() {
    // `cargo bench` passes --bench; anything else here is ignored.
    let rows: usize = std::env::var("KAUNTER_BENCH_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    println!(
        "# Kaunter sync benchmarks ({} cores)\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if !ingest_only() {
        write_path();
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(server_side(rows));
}
