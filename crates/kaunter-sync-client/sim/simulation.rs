//! The deterministic sync simulation: a seed drives 2-5 desks of one business (real encrypted
//! SQLite stores, the real sync client) and the real server (real HTTP, real PostgreSQL) through
//! random registrations, edits and deletes on simulated wall clocks up to a day off, random
//! syncs, network partitions, lost requests and responses, duplicated and replayed (reordered)
//! batches, and desk restarts from disk. Then the network heals, every desk syncs until quiet,
//! and the run checks that
//!
//! * the server's rows equal a reference model: the per-field LWW merge of every write any desk
//!   reported committed (nothing acknowledged is lost);
//! * every desk's decrypted rows (values and stamps, tombstones included) equal the server's;
//! * the server logged each device's writes exactly once, numbered 1..=last without a gap,
//!   and no outbox holds anything;
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
    DELETED_FIELD, Fields, OutboxEntry, PatientRecord, PullResponse, PushResponse, Stamps,
};
use kaunter_protocol::merge::{apply_change, record_from_parts, record_into_parts};
use kaunter_store::{DeskIdentity, MemorySecretStore, SecretStore, Store};
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
    model: BTreeMap<Uuid, LwwRecord<Value>>,
    next_ic: u32,
    /// Rounds whose checkpoint disagreed with the desk: each is a bug somewhere.
    repairs: usize,
    tally: Tally,
    _scratch: tempfile::TempDir,
}

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
    run.heal().await.map_err(fail)?;
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
            0..=24 => self.register(desk)?,
            25..=44 => self.edit(desk)?,
            45..=51 => self.delete(desk)?,
            52..=79 => self.sync(desk).await,
            80..=87 => {
                let mut faults = self.desks[desk].transport.faults.lock().expect("faults");
                faults.partitioned = !faults.partitioned;
            }
            88..=93 => self.restart(desk)?,
            _ => self.replay_old_batch(desk).await?,
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
            self.model.entry(entry.change.row_id).or_default(),
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

    async fn sync(&mut self, desk: usize) {
        let now = self.desk_now(desk);
        let d = &self.desks[desk];
        self.tally.syncs += 1;
        match sync_once_at(&d.store, &d.transport, || now, &|_| {}).await {
            Ok(report) if report.repaired => self.repairs += 1,
            Ok(_) => {}
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
                if report.repaired {
                    self.repairs += 1;
                }
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
        let server = server_rows(world, tenant).await?;
        let model: BTreeMap<Uuid, (Fields, Stamps)> = self
            .model
            .iter()
            .map(|(id, record)| (*id, record_into_parts(record)))
            .collect();
        self.tally.rows = model.len();
        if server != model {
            return Err(first_difference("server", &server, "model", &model));
        }
        for (number, desk) in self.desks.iter().enumerate() {
            let (local, state, integrity) = {
                let store = desk.store();
                let local: BTreeMap<Uuid, (Fields, Stamps)> = store
                    .patient_states()
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|(id, _, fields, stamps)| (id, (fields, stamps)))
                    .collect();
                let state = store.sync_state().map_err(|e| e.to_string())?;
                let integrity = store.integrity_check().map_err(|e| e.to_string())?;
                (local, state, integrity)
            };
            if local != server {
                return Err(first_difference(
                    &format!("desk {number}"),
                    &local,
                    "server",
                    &server,
                ));
            }
            if state.pending != 0 || state.rejected != 0 {
                return Err(format!(
                    "desk {number} still has {} pending and {} refused entries",
                    state.pending, state.rejected
                ));
            }
            if integrity != "ok" {
                return Err(format!("desk {number} fails PRAGMA integrity_check"));
            }
            let logged = logged_seqs(world, tenant, desk.device_id).await?;
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

    fn tenant(&self) -> Result<Uuid, String> {
        let store = self.desks[0].store();
        Ok(store
            .identity()
            .ok_or("desk 0 is not enrolled")?
            .tenant_id
            .as_uuid())
    }
}

/// The server's patient rows of `tenant`, read as the owner (no row-level security in the way),
/// in the same (fields, stamps) shape the desks and the model use.
async fn server_rows(
    world: &World,
    tenant: Uuid,
) -> Result<BTreeMap<Uuid, (Fields, Stamps)>, String> {
    let client = world.db.owner_client().await.map_err(|e| e.to_string())?;
    let rows = client
        .query(
            "SELECT patient_id, branch_id, full_name, id_type, id_number, phone,
                    date_of_birth, sex, deleted, stamps
             FROM patients WHERE tenant_id = $1",
            &[&tenant],
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for row in rows {
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
        .map_err(|e| format!("server row {id}: {e}"))?;
        let stamps: Stamps =
            serde_json::from_value(row.get(9)).map_err(|e| format!("stamps of {id}: {e}"))?;
        let mut fields = record.fields();
        if stamps.contains_key(DELETED_FIELD) {
            fields.insert(DELETED_FIELD.to_owned(), Value::Bool(row.get(8)));
        }
        out.insert(id, record_into_parts(&record_from_parts(&fields, &stamps)));
    }
    Ok(out)
}

async fn logged_seqs(world: &World, tenant: Uuid, device: Uuid) -> Result<Vec<i64>, String> {
    let client = world.db.owner_client().await.map_err(|e| e.to_string())?;
    let rows = client
        .query(
            "SELECT device_seq FROM changes WHERE tenant_id = $1 AND device_id = $2
             UNION ALL
             SELECT device_seq FROM rejected_changes WHERE tenant_id = $1 AND device_id = $2
             ORDER BY 1",
            &[&tenant, &device],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

fn first_difference(
    left_name: &str,
    left: &BTreeMap<Uuid, (Fields, Stamps)>,
    right_name: &str,
    right: &BTreeMap<Uuid, (Fields, Stamps)>,
) -> String {
    for (id, value) in left {
        match right.get(id) {
            None => return format!("row {id} is on the {left_name} but not the {right_name}"),
            Some(other) if other != value => {
                return format!(
                    "row {id} differs: {left_name} has {value:?}, {right_name} has {other:?}"
                );
            }
            Some(_) => {}
        }
    }
    for id in right.keys() {
        if !left.contains_key(id) {
            return format!("row {id} is on the {right_name} but not the {left_name}");
        }
    }
    format!("{left_name} and {right_name} differ")
}
