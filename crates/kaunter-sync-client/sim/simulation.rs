//! The deterministic sync simulation: a seed drives 2-5 desks of one business (real encrypted
//! SQLite stores, the real sync client) and the real server (real HTTP, real PostgreSQL) through
//! random patient registrations, edits and deletes, bookings (made, moved, cancelled, deleted;
//! a few practitioners, so desks double-book each other offline), cash ledger entries, on
//! simulated wall clocks up to a day off; random syncs, network partitions, lost requests and
//! responses, duplicated and replayed (reordered) batches, desk restarts from disk, and server
//! purges of old tombstones (so desks behind the horizon must resync). Then the network heals,
//! every desk syncs until quiet, and the run checks that
//!
//! * the server's rows equal a reference model: the per-field LWW merge of every write any desk
//!   reported committed (nothing acknowledged is lost), less the rows the server purged;
//! * every desk's decrypted rows of every entity (values and stamps, tombstones included) equal
//!   the server's, and every desk's drawer balance is the server's;
//! * every two live bookings of one practitioner that overlap have a conflict on record;
//! * the server logged each device's writes exactly once, numbered 1..=last without a gap,
//!   and no outbox holds anything but changes to purged rows, refused as such;
//! * no sync round ever found a desk's digest differing from the server's checkpoint.
//!
//! Included by `tests/simulation.rs` (CI: 500 seeds) and `examples/simulate.rs` (any number,
//! with a summary). A failing seed is printed with the command that replays it alone.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use kaunter_core::lww::LwwRecord;
use kaunter_core::{IdType, NewPatient, PatientId, RegistrationForm, SeededRng};
use kaunter_protocol::http::{
    DELETED_FIELD, Entity, Fields, OutboxEntry, PatientRecord, PullResponse, PushResponse, Stamps,
    error_code,
};
use kaunter_protocol::merge::{apply_change, record_from_parts, record_into_parts};
use kaunter_protocol::records::{
    AppointmentRecord, AppointmentStatus, CashKind, CashMovementRecord, CatalogueItemRecord,
    CatalogueKind, EntityRecord, TaxCode, ringgit,
};
use kaunter_store::{
    DeskIdentity, MemorySecretStore, NewBooking, NewCashMovement, NewCatalogueItem, SecretStore,
    Store, StoreError,
};
use kaunter_sync_client::{SyncClient, SyncError, Transport, sync_once_at};
use kaunter_sync_server::admin;
use kaunter_sync_server::test_support::{TestDatabase, TestServer};
use serde_json::{Value, json};
use uuid::Uuid;

/// How many random steps one seed takes before healing.
pub const STEPS: u64 = 60;

/// What one seed did, for the summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub desks: usize,
    pub writes: usize,
    pub syncs: usize,
    pub failed_syncs: usize,
    pub restarts: usize,
    pub replays: usize,
    pub lost_requests: usize,
    pub lost_responses: usize,
    pub duplicated: usize,
    pub rows: usize,
    pub bookings: usize,
    pub cash_entries: usize,
    pub catalogue_changes: usize,
    pub purges: usize,
    pub purged_rows: usize,
    pub resyncs: usize,
    pub overlap_conflicts: usize,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.desks += other.desks;
        self.writes += other.writes;
        self.syncs += other.syncs;
        self.failed_syncs += other.failed_syncs;
        self.restarts += other.restarts;
        self.replays += other.replays;
        self.lost_requests += other.lost_requests;
        self.lost_responses += other.lost_responses;
        self.duplicated += other.duplicated;
        self.rows += other.rows;
        self.bookings += other.bookings;
        self.cash_entries += other.cash_entries;
        self.catalogue_changes += other.catalogue_changes;
        self.purges += other.purges;
        self.purged_rows += other.purged_rows;
        self.resyncs += other.resyncs;
        self.overlap_conflicts += other.overlap_conflicts;
    }
}

/// One server (and database) shared by many seeds; each seed is a business of its own.
pub struct World {
    pub db: TestDatabase,
    pub server: TestServer,
    scratch: PathBuf,
}

impl World {
    pub async fn start() -> World {
        let db = TestDatabase::create().await.expect("a test database");
        let server = db.spawn_server().await.expect("the server starts");
        // Desk files on tmpfs when there is one: the simulation is about order, not disks.
        let shm = PathBuf::from("/dev/shm");
        let scratch = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        World {
            db,
            server,
            scratch,
        }
    }

    pub async fn stop(self) {
        drop(self.server);
        self.db.drop_db().await.expect("drop the test database");
    }
}

/// Faults the transport of one desk injects, drawn from its own seeded generator.
struct Faults {
    rng: SeededRng,
    partitioned: bool,
    healed: bool,
    lost_requests: usize,
    lost_responses: usize,
    duplicated: usize,
}

enum Fate {
    Deliver,
    LoseRequest,
    LoseResponse,
    Duplicate,
}

impl Faults {
    fn fate(&mut self, can_duplicate: bool) -> Result<Fate, SyncError> {
        if self.partitioned {
            return Err(SyncError::Offline("simulated partition".to_owned()));
        }
        if self.healed {
            return Ok(Fate::Deliver);
        }
        Ok(match self.rng.below(100) {
            0..=4 => {
                self.lost_requests += 1;
                Fate::LoseRequest
            }
            5..=14 => {
                self.lost_responses += 1;
                Fate::LoseResponse
            }
            15..=19 if can_duplicate => {
                self.duplicated += 1;
                Fate::Duplicate
            }
            _ => Fate::Deliver,
        })
    }
}

/// The real client behind a faulty network.
struct FaultyTransport {
    inner: SyncClient,
    faults: Mutex<Faults>,
    /// Every push body sent, for replaying old batches out of order later.
    sent: Mutex<Vec<Vec<OutboxEntry>>>,
}

fn lost() -> SyncError {
    SyncError::Offline("simulated lost message".to_owned())
}

impl Transport for FaultyTransport {
    async fn push(&self, entries: Vec<OutboxEntry>) -> kaunter_sync_client::Result<PushResponse> {
        {
            let fate = self.faults.lock().expect("faults").fate(true)?;
            self.sent.lock().expect("sent").push(entries.clone());
            match fate {
                Fate::LoseRequest => Err(lost()),
                Fate::LoseResponse => {
                    let _ = self.inner.push_entries(entries).await;
                    Err(lost())
                }
                Fate::Duplicate => {
                    let _ = self.inner.push_entries(entries.clone()).await;
                    self.inner.push_entries(entries).await
                }
                Fate::Deliver => self.inner.push_entries(entries).await,
            }
        }
    }

    async fn pull(
        &self,
        cursor: i64,
        limit: u32,
        count: bool,
    ) -> kaunter_sync_client::Result<PullResponse> {
        {
            let fate = self.faults.lock().expect("faults").fate(false)?;
            match fate {
                Fate::LoseRequest => Err(lost()),
                Fate::LoseResponse => {
                    let _ = self.inner.pull_page(cursor, limit, count).await;
                    Err(lost())
                }
                Fate::Duplicate | Fate::Deliver => self.inner.pull_page(cursor, limit, count).await,
            }
        }
    }
}

struct SimDesk {
    path: PathBuf,
    secrets: Arc<MemorySecretStore>,
    store: Mutex<Store>,
    transport: FaultyTransport,
    device_id: Uuid,
    /// This desk's wall clock is off by this much (up to a day either way).
    clock_offset: Duration,
}

impl SimDesk {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().expect("store lock")
    }
}

/// Everything one seed needs, and what it has seen.
struct Run {
    seed: u64,
    rng: SeededRng,
    desks: Vec<SimDesk>,
    /// Simulated "true" time: every step moves it on a little.
    now: DateTime<Utc>,
    /// The merge of every write a desk reported committed.
    model: BTreeMap<Key, LwwRecord<Value>>,
    tenant: kaunter_sync_server::ids::TenantId,
    pool: kaunter_sync_server::Pool,
    /// Practitioners the desks book (few, so offline desks double-book them).
    practitioners: Vec<Uuid>,
    /// Every (device, seq) the server's change log has held: a purge deletes some.
    logged: std::collections::BTreeSet<(Uuid, i64)>,
    next_ic: u32,
    /// Rounds whose checkpoint disagreed with the desk: each is a bug somewhere.
    repairs: usize,
    tally: Tally,
    _scratch: tempfile::TempDir,
}

type Key = (Entity, Uuid);

/// Why a seed failed: said in words, with the seed to replay.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub reason: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} failed: {}\nreplay it alone: KAUNTER_SIM_SEED={} cargo nextest run -p kaunter-sync-client --test simulation",
            self.seed, self.reason, self.seed
        )
    }
}

/// Runs one seed to the end and checks it.
pub async fn run_seed(world: &World, seed: u64) -> Result<Tally, Failure> {
    let fail = |reason: String| Failure { seed, reason };
    let mut run = Run::new(world, seed).await.map_err(fail)?;
    for _ in 0..STEPS {
        run.step().await.map_err(fail)?;
    }
    if let Err(reason) = run.heal().await {
        // Say how the desks differ from the server, which is what a failing seed needs.
        return Err(fail(format!("{reason}\n{}", run.differences(world).await)));
    }
    run.check(world).await.map_err(fail)?;
    Ok(run.tally)
}

fn base_time() -> DateTime<Utc> {
    // A fixed day keeps runs reproducible; the server only refuses stamps far in its future.
    Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

impl Run {
    async fn new(world: &World, seed: u64) -> Result<Run, String> {
        let mut rng = SeededRng::new(seed);
        let business = admin::create_business(
            world.server.pool(),
            &format!("Klinik Simulasi {seed}"),
            "Main",
            None,
        )
        .await
        .map_err(|e| format!("create business: {e}"))?;
        let scratch = tempfile::tempdir_in(&world.scratch).map_err(|e| e.to_string())?;
        let count = 2 + rng.index(4);
        let practitioners = (0..3)
            .map(|_| Uuid::from_u64_pair(rng.next_u64(), seed))
            .collect();
        let mut desks = Vec::with_capacity(count);
        for number in 0..count {
            let code = admin::create_enrolment_code(
                world.server.pool(),
                business.tenant_id,
                business.branch_id,
                admin::DEFAULT_ENROLMENT_CODE_TTL,
            )
            .await
            .map_err(|e| format!("enrolment code: {e}"))?;
            let name = format!("Desk {number}");
            let enrolled = SyncClient::enrol(&world.server.base_url, &code, &name)
                .await
                .map_err(|e| format!("enrol: {e}"))?;
            let path = scratch.path().join(format!("desk-{number}.db"));
            let secrets = Arc::new(MemorySecretStore::new());
            let mut store = Store::open(&path, secrets.clone() as Arc<dyn SecretStore>)
                .map_err(|e| format!("open store: {e}"))?;
            store
                .enrol(
                    DeskIdentity::from_enrolment(&enrolled, &name, &world.server.base_url),
                    &enrolled.device_token,
                )
                .map_err(|e| format!("enrol store: {e}"))?;
            let inner = SyncClient::new(&world.server.base_url, &enrolled.device_token)
                .map_err(|e| e.to_string())?;
            let offset_minutes = i64::try_from(rng.below(2 * 24 * 60)).unwrap_or(0) - 24 * 60;
            desks.push(SimDesk {
                path,
                secrets,
                store: Mutex::new(store),
                transport: FaultyTransport {
                    inner,
                    faults: Mutex::new(Faults {
                        rng: SeededRng::new(rng.next_u64()),
                        partitioned: false,
                        healed: false,
                        lost_requests: 0,
                        lost_responses: 0,
                        duplicated: 0,
                    }),
                    sent: Mutex::new(Vec::new()),
                },
                device_id: enrolled.device_id,
                clock_offset: Duration::minutes(offset_minutes),
            });
        }
        Ok(Run {
            seed,
            rng,
            tally: Tally {
                desks: count,
                ..Tally::default()
            },
            desks,
            now: base_time(),
            model: BTreeMap::new(),
            tenant: business.tenant_id,
            pool: world.server.pool().clone(),
            practitioners,
            logged: std::collections::BTreeSet::new(),
            next_ic: 0,
            repairs: 0,
            _scratch: scratch,
        })
    }

    /// One random step.
    async fn step(&mut self) -> Result<(), String> {
        self.now += Duration::milliseconds(i64::try_from(1 + self.rng.below(3000)).unwrap_or(1));
        let desk = self.rng.index(self.desks.len());
        match self.rng.below(100) {
            0..=15 => self.register(desk)?,
            16..=27 => self.edit(desk)?,
            28..=32 => self.delete(desk)?,
            33..=40 => self.book(desk)?,
            41..=46 => self.change_booking(desk)?,
            47..=51 => self.record_cash(desk)?,
            52..=54 => self.change_catalogue(desk)?,
            55..=77 => self.sync(desk).await,
            78..=84 => {
                let mut faults = self.desks[desk].transport.faults.lock().expect("faults");
                faults.partitioned = !faults.partitioned;
            }
            85..=90 => self.restart(desk)?,
            91..=96 => self.replay_old_batch(desk).await?,
            _ => self.purge().await?,
        }
        Ok(())
    }

    fn desk_now(&self, desk: usize) -> DateTime<Utc> {
        self.now + self.desks[desk].clock_offset
    }

    /// Records in the model the write the desk just committed (its newest outbox entry).
    fn remember_last_write(&mut self, desk: usize) -> Result<(), String> {
        let store = self.desks[desk].store();
        let last_seq = store.sync_state().map_err(|e| e.to_string())?.last_seq;
        let entry = store
            .outbox_entry(last_seq)
            .map_err(|e| e.to_string())?
            .ok_or("a committed write is missing from the outbox")?;
        drop(store);
        apply_change(
            self.model
                .entry((entry.change.entity, entry.change.row_id))
                .or_default(),
            &entry.change,
        );
        self.tally.writes += 1;
        Ok(())
    }

    fn register(&mut self, desk: usize) -> Result<(), String> {
        self.next_ic += 1;
        // A valid MyKad: born 1 Jan 1990, Kuala Lumpur (14), a serial unique in this run.
        let ic = format!("900101-14-{:04}", self.next_ic);
        let phone = format!(
            "012-{:03} {:04}",
            self.rng.below(1000),
            self.rng.below(10_000)
        );
        let name = format!("Pesakit {} {}", self.seed, self.next_ic);
        let form = RegistrationForm {
            full_name: &name,
            id_type: IdType::MyKad,
            id_number: &ic,
            phone: &phone,
            date_of_birth: None,
            sex: None,
        };
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).ok_or("date")?;
        let patient = NewPatient::validate(&form, today).map_err(|e| format!("{e:?}"))?;
        let now = self.desk_now(desk);
        self.desks[desk]
            .store()
            .register_patient(&patient, now)
            .map_err(|e| format!("register on desk {desk}: {e}"))?;
        self.remember_last_write(desk)
    }

    /// A live patient this desk knows, if any.
    fn pick_patient(&mut self, desk: usize) -> Result<Option<Uuid>, String> {
        let states = self.desks[desk]
            .store()
            .patient_states()
            .map_err(|e| e.to_string())?;
        let live: Vec<Uuid> = states
            .into_iter()
            .filter(|(_, _, fields, _)| fields.get(DELETED_FIELD) != Some(&Value::Bool(true)))
            .map(|(id, _, _, _)| id)
            .collect();
        Ok(self.rng.pick(&live).copied())
    }

    fn edit(&mut self, desk: usize) -> Result<(), String> {
        let Some(id) = self.pick_patient(desk)? else {
            return Ok(());
        };
        let n = self.rng.below(1_000_000);
        let fields: Fields = match self.rng.below(3) {
            0 => [("full_name".to_owned(), json!(format!("Nama {n}")))].into(),
            1 => [("phone".to_owned(), json!(format!("+6012{:07}", n)))].into(),
            _ => [
                ("full_name".to_owned(), json!(format!("Nama {n}"))),
                ("phone".to_owned(), Value::Null),
            ]
            .into(),
        };
        self.write(desk, id, fields)
    }

    fn delete(&mut self, desk: usize) -> Result<(), String> {
        let Some(id) = self.pick_patient(desk)? else {
            return Ok(());
        };
        self.write(desk, id, [(DELETED_FIELD.to_owned(), json!(true))].into())
    }

    fn write(&mut self, desk: usize, id: Uuid, fields: Fields) -> Result<(), String> {
        let now = self.desk_now(desk);
        self.desks[desk]
            .store()
            .edit_patient(PatientId::from_uuid(id), fields, now)
            .map_err(|e| format!("edit on desk {desk}: {e}"))?;
        self.remember_last_write(desk)
    }

    /// A live row of `entity` this desk knows, if any.
    fn pick_live(&mut self, desk: usize, entity: Entity) -> Result<Option<(Uuid, Fields)>, String> {
        let states = self.desks[desk]
            .store()
            .row_states(entity)
            .map_err(|e| e.to_string())?;
        let live: Vec<(Uuid, Fields)> = states
            .into_iter()
            .filter(|(_, _, fields, _)| fields.get(DELETED_FIELD) != Some(&Value::Bool(true)))
            .map(|(id, _, fields, _)| (id, fields))
            .collect();
        Ok(self.rng.pick(&live).cloned())
    }

    /// A random half-hour-aligned slot on the simulated day, 30 or 60 minutes long.
    fn slot(&mut self) -> (DateTime<Utc>, DateTime<Utc>) {
        let day = base_time() + Duration::hours(1);
        let start = day + Duration::minutes(30 * i64::try_from(self.rng.below(16)).unwrap_or(0));
        let length = Duration::minutes(30 * (1 + i64::try_from(self.rng.below(2)).unwrap_or(0)));
        (start, start + length)
    }

    fn book(&mut self, desk: usize) -> Result<(), String> {
        let Some(patient) = self.pick_patient(desk)? else {
            return Ok(());
        };
        let (starts_at, ends_at) = self.slot();
        let booking = NewBooking {
            patient_id: patient,
            practitioner_id: *self
                .rng
                .pick(&self.practitioners)
                .ok_or("no practitioner")?,
            starts_at,
            ends_at,
            note: (self.rng.below(2) == 0).then(|| format!("Demam {}", self.rng.below(100))),
        };
        let now = self.desk_now(desk);
        match self.desks[desk].store().book_appointment(&booking, now) {
            Ok(_) => {}
            // The practitioner is busy as far as this desk knows: nothing written.
            Err(StoreError::InvalidRecord(errors))
                if errors.iter().all(|e| e.code == "practitioner_busy") =>
            {
                return Ok(());
            }
            Err(other) => return Err(format!("book on desk {desk}: {other}")),
        }
        self.tally.bookings += 1;
        self.remember_last_write(desk)
    }

    /// Moves, cancels, marks, re-notes or deletes a booking this desk knows.
    fn change_booking(&mut self, desk: usize) -> Result<(), String> {
        let Some((id, _)) = self.pick_live(desk, Entity::Appointment)? else {
            return Ok(());
        };
        let fields: Fields = match self.rng.below(5) {
            0 => {
                let (starts_at, ends_at) = self.slot();
                [
                    ("starts_at".to_owned(), json!(starts_at)),
                    ("ends_at".to_owned(), json!(ends_at)),
                ]
                .into()
            }
            1 => [("status".to_owned(), json!("cancelled"))].into(),
            2 => [("status".to_owned(), json!("arrived"))].into(),
            3 => [(
                "note".to_owned(),
                json!(format!("Batuk {}", self.rng.below(100))),
            )]
            .into(),
            _ => [(DELETED_FIELD.to_owned(), json!(true))].into(),
        };
        let now = self.desk_now(desk);
        match self.desks[desk]
            .store()
            .edit_row(Entity::Appointment, id, fields, now)
        {
            Ok(()) => {}
            Err(StoreError::InvalidRecord(errors))
                if errors.iter().all(|e| e.code == "practitioner_busy") =>
            {
                return Ok(());
            }
            Err(other) => return Err(format!("change booking on desk {desk}: {other}")),
        }
        self.remember_last_write(desk)
    }

    fn record_cash(&mut self, desk: usize) -> Result<(), String> {
        let kind = *self.rng.pick(&CashKind::ALL).ok_or("no kind")?;
        let sen = i64::try_from(1 + self.rng.below(50_000)).unwrap_or(1);
        let patient = if kind == CashKind::Payment {
            self.pick_patient(desk)?
        } else {
            None
        };
        let movement = NewCashMovement {
            kind,
            amount: ringgit::from_sen(sen),
            patient_id: patient,
            note: None,
        };
        let now = self.desk_now(desk);
        self.desks[desk]
            .store()
            .record_cash(&movement, now)
            .map_err(|e| format!("cash on desk {desk}: {e}"))?;
        self.tally.cash_entries += 1;
        self.remember_last_write(desk)
    }

    /// Adds an item to the tenant-wide catalogue, or changes or deletes one this desk knows.
    fn change_catalogue(&mut self, desk: usize) -> Result<(), String> {
        let now = self.desk_now(desk);
        let n = self.rng.below(10_000);
        let existing = if self.rng.below(2) == 0 {
            self.pick_live(desk, Entity::CatalogueItem)?
        } else {
            None
        };
        let Some((id, fields)) = existing else {
            let service = self.rng.below(2) == 0;
            let item = NewCatalogueItem {
                kind: if service {
                    CatalogueKind::Service
                } else {
                    CatalogueKind::Product
                },
                code: format!("C{}-{n}", self.seed),
                name: format!("Barang {n}"),
                price: ringgit::from_sen(i64::try_from(self.rng.below(100_000)).unwrap_or(0)),
                tax: *self.rng.pick(&TaxCode::ALL).ok_or("no tax code")?,
                duration_minutes: service.then(|| 15 * (1 + self.rng.below(8) as u32)),
                active: self.rng.below(5) != 0,
            };
            self.desks[desk]
                .store()
                .add_catalogue_item(&item, now)
                .map_err(|e| format!("catalogue item on desk {desk}: {e}"))?;
            self.tally.catalogue_changes += 1;
            return self.remember_last_write(desk);
        };
        let change: Fields = match self.rng.below(4) {
            0 => [("name".to_owned(), json!(format!("Barang {n}")))].into(),
            1 => [(
                "price".to_owned(),
                json!(ringgit::format(ringgit::from_sen(
                    i64::try_from(self.rng.below(100_000)).unwrap_or(0)
                ))),
            )]
            .into(),
            2 => [(
                "active".to_owned(),
                json!(fields.get("active") != Some(&Value::Bool(true))),
            )]
            .into(),
            _ => [(DELETED_FIELD.to_owned(), json!(true))].into(),
        };
        self.desks[desk]
            .store()
            .edit_row(Entity::CatalogueItem, id, change, now)
            .map_err(|e| format!("change catalogue item on desk {desk}: {e}"))?;
        self.tally.catalogue_changes += 1;
        self.remember_last_write(desk)
    }

    /// The server purges tombstones up to a random change seq (a horizon some way back).
    async fn purge(&mut self) -> Result<(), String> {
        let pool = self.pool.clone();
        self.note_logged(&pool).await?;
        let mut client = pool.get().await.map_err(|e| e.to_string())?;
        let tx = kaunter_sync_server::db::TenantTx::begin(&mut client, self.tenant)
            .await
            .map_err(|e| e.to_string())?;
        let row = tx
            .query_one(
                "SELECT change_seq, purged_seq FROM tenants WHERE tenant_id = $1",
                &[&self.tenant],
            )
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        drop(client);
        let (last, purged): (i64, i64) = (row.get(0), row.get(1));
        if last <= purged {
            return Ok(());
        }
        let span = u64::try_from(last - purged).unwrap_or(0);
        let through = purged + i64::try_from(self.rng.below(span) + 1).unwrap_or(0);
        let report = kaunter_sync_server::purge::purge_through(&pool, self.tenant, through)
            .await
            .map_err(|e| format!("purge through {through}: {e}"))?;
        self.tally.purges += 1;
        self.tally.purged_rows += usize::try_from(report.rows).unwrap_or(0);
        Ok(())
    }

    /// Adds what the change log holds now to what it has ever held.
    async fn note_logged(&mut self, pool: &kaunter_sync_server::Pool) -> Result<(), String> {
        let mut client = pool.get().await.map_err(|e| e.to_string())?;
        let tx = kaunter_sync_server::db::TenantTx::begin(&mut client, self.tenant)
            .await
            .map_err(|e| e.to_string())?;
        let rows = tx
            .query(
                "SELECT device_id, device_seq FROM changes WHERE tenant_id = $1",
                &[&self.tenant],
            )
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        self.logged.extend(
            rows.iter()
                .map(|row| (row.get::<_, Uuid>(0), row.get::<_, i64>(1))),
        );
        Ok(())
    }

    async fn sync(&mut self, desk: usize) {
        let now = self.desk_now(desk);
        let d = &self.desks[desk];
        self.tally.syncs += 1;
        match sync_once_at(&d.store, &d.transport, || now, &|_| {}).await {
            Ok(report) => {
                self.repairs += usize::from(report.repaired);
                self.tally.resyncs += usize::from(report.resynced);
            }
            Err(_) => self.tally.failed_syncs += 1,
        }
    }

    /// Closes the desk's store and opens the file again, as a restart (or a crash after the
    /// last commit) would.
    fn restart(&mut self, desk: usize) -> Result<(), String> {
        let d = &mut self.desks[desk];
        let reopened = Store::open(&d.path, d.secrets.clone() as Arc<dyn SecretStore>)
            .map_err(|e| format!("reopen desk {desk}: {e}"))?;
        *d.store.get_mut().map_err(|e| e.to_string())? = reopened;
        self.tally.restarts += 1;
        Ok(())
    }

    /// Sends an old batch of this desk again, out of order, straight to the server: it must
    /// change nothing.
    async fn replay_old_batch(&mut self, desk: usize) -> Result<(), String> {
        let d = &self.desks[desk];
        let old = {
            let sent = d.transport.sent.lock().map_err(|e| e.to_string())?;
            if sent.is_empty() {
                return Ok(());
            }
            sent[self.rng.index(sent.len())].clone()
        };
        if d.transport
            .faults
            .lock()
            .map_err(|e| e.to_string())?
            .partitioned
        {
            return Ok(());
        }
        match d.transport.inner.push_entries(old).await {
            // A replay is either wholly old (answered with the high-water mark) or, when the
            // desk never got the first answer, applied now exactly once: both are fine.
            Ok(_) => {}
            // Entries beyond the high-water mark that skip some: refused, nothing stored.
            Err(SyncError::Refused { code, .. }) if code == "sequence_gap" => {}
            Err(other) => return Err(format!("replaying an old batch of desk {desk}: {other}")),
        }
        self.tally.replays += 1;
        Ok(())
    }

    /// Heals the network and syncs every desk until a full round moves nothing.
    async fn heal(&mut self) -> Result<(), String> {
        for desk in &self.desks {
            let mut faults = desk.transport.faults.lock().map_err(|e| e.to_string())?;
            faults.partitioned = false;
            faults.healed = true;
        }
        for round in 0.. {
            let mut moved = 0;
            for desk in 0..self.desks.len() {
                let now = self.desk_now(desk);
                let d = &self.desks[desk];
                let report = sync_once_at(&d.store, &d.transport, || now, &|_| {})
                    .await
                    .map_err(|e| format!("healed sync of desk {desk} failed: {e}"))?;
                moved += report.pushed + report.applied;
                self.repairs += usize::from(report.repaired);
                self.tally.resyncs += usize::from(report.resynced);
            }
            if moved == 0 {
                break;
            }
            if round > 10 {
                return Err("sync did not settle after 10 healed rounds".to_owned());
            }
        }
        for desk in &self.desks {
            let faults = desk.transport.faults.lock().map_err(|e| e.to_string())?;
            self.tally.lost_requests += faults.lost_requests;
            self.tally.lost_responses += faults.lost_responses;
            self.tally.duplicated += faults.duplicated;
        }
        Ok(())
    }

    async fn check(&mut self, world: &World) -> Result<(), String> {
        if self.repairs > 0 {
            return Err(format!(
                "{} sync rounds found a desk's rows differing from the server's checkpoint",
                self.repairs
            ));
        }
        let tenant = self.tenant()?;
        let purged = purged_rows(world, tenant).await?;
        let model: Rows = self
            .model
            .iter()
            .filter(|(key, _)| !purged.contains(key))
            .map(|(key, record)| (*key, record_into_parts(record)))
            .collect();
        let server = server_rows(world, tenant).await?;
        self.tally.rows = model.len();
        if server != model {
            return Err(first_difference("server", &server, "model", &model));
        }
        let server_balance: i64 = model
            .iter()
            .filter(|((entity, _), _)| *entity == Entity::CashMovement)
            .map(|((_, id), (fields, _))| {
                CashMovementRecord::from_fields(*id, Uuid::nil(), fields)
                    .map(|movement| movement.signed_sen())
                    .map_err(|e| format!("cash movement {id}: {e}"))
            })
            .sum::<Result<i64, String>>()?;
        self.tally.overlap_conflicts = check_overlaps_recorded(world, tenant, &server).await?;
        self.note_logged(&self.pool.clone()).await?;
        for (number, desk) in self.desks.iter().enumerate() {
            let (local, state, integrity, refused, balance) = {
                let store = desk.store();
                let mut local = Rows::new();
                for entity in Entity::ALL {
                    for (id, _, fields, stamps) in
                        store.row_states(entity).map_err(|e| e.to_string())?
                    {
                        local.insert((entity, id), (fields, stamps));
                    }
                }
                let state = store.sync_state().map_err(|e| e.to_string())?;
                let integrity = store.integrity_check().map_err(|e| e.to_string())?;
                let refused = store.refused_changes().map_err(|e| e.to_string())?;
                let balance = store.cash_balance_sen().map_err(|e| e.to_string())?;
                (local, state, integrity, refused, balance)
            };
            if local != server {
                return Err(first_difference(
                    &format!("desk {number}"),
                    &local,
                    "server",
                    &server,
                ));
            }
            if balance != server_balance {
                return Err(format!(
                    "desk {number}'s drawer holds {balance} sen, the server's {server_balance}"
                ));
            }
            if state.pending != 0 {
                return Err(format!(
                    "desk {number} still has {} pending entries",
                    state.pending
                ));
            }
            if let Some(other) = refused.iter().find(|r| r.code != error_code::ROW_PURGED) {
                return Err(format!(
                    "desk {number} has a refused entry other than a purged row's: {other:?}"
                ));
            }
            if integrity != "ok" {
                return Err(format!("desk {number} fails PRAGMA integrity_check"));
            }
            let mut logged: Vec<i64> = self
                .logged
                .iter()
                .filter(|(device, _)| *device == desk.device_id)
                .map(|(_, seq)| *seq)
                .collect();
            logged.extend(rejected_seqs(world, tenant, desk.device_id).await?);
            logged.sort_unstable();
            let expected: Vec<i64> = (1..=state.last_seq).collect();
            if logged != expected {
                return Err(format!(
                    "desk {number} wrote {} changes but the server logged seqs {:?}",
                    state.last_seq, logged
                ));
            }
        }
        Ok(())
    }

    /// Each desk's first difference from the server, as text.
    async fn differences(&self, world: &World) -> String {
        let Ok(tenant) = self.tenant() else {
            return String::new();
        };
        let server = match server_rows(world, tenant).await {
            Ok(rows) => rows,
            Err(error) => return error,
        };
        let mut out = Vec::new();
        for (number, desk) in self.desks.iter().enumerate() {
            let store = desk.store();
            let mut local = Rows::new();
            for entity in Entity::ALL {
                for (id, _, fields, stamps) in store.row_states(entity).unwrap_or_default() {
                    local.insert((entity, id), (fields, stamps));
                }
            }
            if local != server {
                let extra: Vec<String> = local
                    .iter()
                    .filter(|(key, value)| server.get(*key) != Some(*value))
                    .map(|(key, (fields, stamps))| {
                        format!(
                            "{key:?} deleted={:?} stamps={:?}",
                            fields.get(DELETED_FIELD),
                            stamps.get(DELETED_FIELD)
                        )
                    })
                    .collect();
                out.push(format!(
                    "desk {number} ({:?}): {}\n  {}",
                    store
                        .sync_state()
                        .map(|s| (s.pending, s.rejected, s.pull_cursor)),
                    first_difference("desk", &local, "server", &server),
                    extra.join("\n  ")
                ));
            }
        }
        out.join("\n")
    }

    fn tenant(&self) -> Result<Uuid, String> {
        let store = self.desks[0].store();
        Ok(store
            .identity()
            .ok_or("desk 0 is not enrolled")?
            .tenant_id
            .as_uuid())
    }
}

type Rows = BTreeMap<Key, (Fields, Stamps)>;

/// The server's rows of every entity of `tenant`, read as the owner (no row-level security in
/// the way), in the same (fields, stamps) shape the desks and the model use.
async fn server_rows(world: &World, tenant: Uuid) -> Result<Rows, String> {
    let client = world.db.owner_client().await.map_err(|e| e.to_string())?;
    let mut out = Rows::new();
    let mut put = |entity: Entity, id: Uuid, mut fields: Fields, deleted: bool, stamps: Vec<u8>| {
        let stamps: Stamps = kaunter_sync_server::stamps::decode(&stamps)
            .map_err(|e| format!("stamps of {id}: {e}"))?;
        if stamps.contains_key(DELETED_FIELD) {
            fields.insert(DELETED_FIELD.to_owned(), Value::Bool(deleted));
        }
        out.insert(
            (entity, id),
            record_into_parts(&record_from_parts(&fields, &stamps)),
        );
        Ok::<(), String>(())
    };
    let query = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query(sql, &[&tenant])
                .await
                .map_err(|e| e.to_string())
        }
    };
    for row in query(
        "SELECT patient_id, branch_id, full_name, id_type, id_number, phone,
                date_of_birth, sex, deleted, stamps
         FROM patients WHERE tenant_id = $1",
    )
    .await?
    {
        let id: Uuid = row.get(0);
        let record: PatientRecord = serde_json::from_value(json!({
            "id": id,
            "branch_id": row.get::<_, Uuid>(1),
            "full_name": row.get::<_, String>(2),
            "id_type": row.get::<_, String>(3),
            "id_number": row.get::<_, String>(4),
            "phone": row.get::<_, Option<String>>(5),
            "date_of_birth": row.get::<_, Option<NaiveDate>>(6),
            "sex": row.get::<_, Option<String>>(7),
        }))
        .map_err(|e| format!("server patient {id}: {e}"))?;
        put(Entity::Patient, id, record.fields(), row.get(8), row.get(9))?;
    }
    for row in query(
        "SELECT appointment_id, branch_id, patient_id, practitioner_id, starts_at, ends_at,
                status, note, deleted, stamps
         FROM appointments WHERE tenant_id = $1",
    )
    .await?
    {
        let id: Uuid = row.get(0);
        let status: String = row.get(6);
        let record = AppointmentRecord {
            id,
            branch_id: row.get(1),
            patient_id: row.get(2),
            practitioner_id: row.get(3),
            starts_at: row.get(4),
            ends_at: row.get(5),
            status: AppointmentStatus::parse(&status).ok_or("bad status")?,
            note: row.get(7),
        };
        put(
            Entity::Appointment,
            id,
            record.fields(),
            row.get(8),
            row.get(9),
        )?;
    }
    for row in query(
        "SELECT movement_id, branch_id, kind, amount_sen, patient_id, note, stamps
         FROM cash_movements WHERE tenant_id = $1",
    )
    .await?
    {
        let id: Uuid = row.get(0);
        let kind: String = row.get(2);
        let record = CashMovementRecord {
            id,
            branch_id: row.get(1),
            kind: CashKind::parse(&kind).ok_or("bad kind")?,
            amount: ringgit::from_sen(row.get(3)),
            patient_id: row.get(4),
            note: row.get(5),
        };
        put(Entity::CashMovement, id, record.fields(), false, row.get(6))?;
    }
    for row in query(
        "SELECT item_id, branch_id, kind, code, name, price_sen, tax_code, duration_minutes,
                active, deleted, stamps
         FROM catalogue_items WHERE tenant_id = $1",
    )
    .await?
    {
        let id: Uuid = row.get(0);
        let kind: String = row.get(2);
        let tax: String = row.get(6);
        let duration: Option<i32> = row.get(7);
        let record = CatalogueItemRecord {
            id,
            branch_id: row.get(1),
            kind: CatalogueKind::parse(&kind).ok_or("bad catalogue kind")?,
            code: row.get(3),
            name: row.get(4),
            price: ringgit::from_sen(row.get(5)),
            tax: TaxCode::parse(&tax).ok_or("bad tax code")?,
            duration_minutes: duration.map(|m| m as u32),
            active: row.get(8),
        };
        put(
            Entity::CatalogueItem,
            id,
            record.fields(),
            row.get(9),
            row.get(10),
        )?;
    }
    Ok(out)
}

async fn purged_rows(
    world: &World,
    tenant: Uuid,
) -> Result<std::collections::BTreeSet<Key>, String> {
    let client = world.db.owner_client().await.map_err(|e| e.to_string())?;
    let rows = client
        .query(
            "SELECT entity, row_id FROM purged_rows WHERE tenant_id = $1",
            &[&tenant],
        )
        .await
        .map_err(|e| e.to_string())?;
    rows.iter()
        .map(|row| {
            let entity: String = row.get(0);
            Entity::parse(&entity)
                .map(|entity| (entity, row.get(1)))
                .ok_or_else(|| format!("purged entity {entity:?}"))
        })
        .collect()
}

/// Every two live bookings that overlap must have a conflict on record (in either order).
/// Returns how many such conflicts there are.
async fn check_overlaps_recorded(
    world: &World,
    tenant: Uuid,
    server: &Rows,
) -> Result<usize, String> {
    let client = world.db.owner_client().await.map_err(|e| e.to_string())?;
    let recorded: std::collections::BTreeSet<(Uuid, Uuid)> = client
        .query(
            "SELECT row_a, row_b FROM conflicts
             WHERE tenant_id = $1 AND kind = 'appointment_overlap'",
            &[&tenant],
        )
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let live: Vec<AppointmentRecord> = server
        .iter()
        .filter(|((entity, _), (fields, _))| {
            *entity == Entity::Appointment && fields.get(DELETED_FIELD) != Some(&Value::Bool(true))
        })
        .map(|((_, id), (fields, _))| {
            AppointmentRecord::from_fields(*id, Uuid::nil(), fields).map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    for (i, a) in live.iter().enumerate() {
        for b in &live[i + 1..] {
            if a.overlaps(b)
                && !recorded.contains(&(a.id, b.id))
                && !recorded.contains(&(b.id, a.id))
            {
                return Err(format!(
                    "bookings {} and {} overlap but no conflict was recorded",
                    a.id, b.id
                ));
            }
        }
    }
    Ok(recorded.len())
}

async fn rejected_seqs(world: &World, tenant: Uuid, device: Uuid) -> Result<Vec<i64>, String> {
    let client = world.db.owner_client().await.map_err(|e| e.to_string())?;
    let rows = client
        .query(
            "SELECT device_seq FROM rejected_changes WHERE tenant_id = $1 AND device_id = $2",
            &[&tenant, &device],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

fn first_difference(left_name: &str, left: &Rows, right_name: &str, right: &Rows) -> String {
    for (id, value) in left {
        match right.get(id) {
            None => return format!("row {id:?} is on the {left_name} but not the {right_name}"),
            Some(other) if other != value => {
                return format!(
                    "row {id:?} differs: {left_name} has {value:?}, {right_name} has {other:?}"
                );
            }
            Some(_) => {}
        }
    }
    for id in right.keys() {
        if !left.contains_key(id) {
            return format!("row {id:?} is on the {right_name} but not the {left_name}");
        }
    }
    format!("{left_name} and {right_name} differ")
}
