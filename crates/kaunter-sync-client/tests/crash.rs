//! The crash test: a real desk process (src/bin/crash-desk.rs) registering patients and syncing
//! with the real server is killed with SIGKILL at random moments, and started again each time.
//! After every restart its SQLite file passes integrity_check; at the end, after one last
//! process drains the outbox, every write a process reported committed is on the server exactly
//! once, and the server's log of the device has exactly the writes the desk made, no more.
//!
//! CI kills it 50 times; `KAUNTER_CRASH_RUNS=1000` runs the long version.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../sim/file_secrets.rs"]
mod file_secrets;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use kaunter_core::SeededRng;
use kaunter_store::{DeskIdentity, Store};
use kaunter_sync_client::SyncClient;
use kaunter_sync_server::admin;
use kaunter_sync_server::test_support::TestDatabase;
use uuid::Uuid;

const DESK: &str = env!("CARGO_BIN_EXE_crash-desk");

/// Starts a desk process, lets it work for `millis`, kills it (SIGKILL) and returns its stdout.
fn run_and_kill(args: &[String], millis: u64) -> Vec<String> {
    let mut child = Command::new(DESK)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start crash-desk");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    std::thread::sleep(Duration::from_millis(millis));
    // Child::kill is SIGKILL on Unix: no destructor, no flush, no goodbye.
    let _ = child.kill();
    let _ = child.wait();
    reader.join().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk_killed_at_random_moments_loses_and_doubles_nothing() {
    let runs: u64 = std::env::var("KAUNTER_CRASH_RUNS")
        .map(|n| n.parse().expect("KAUNTER_CRASH_RUNS is a number"))
        .unwrap_or(50);
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let business = admin::create_business(server.pool(), "Klinik Rempuh", "Main", None)
        .await
        .unwrap();
    let code = admin::create_enrolment_code(
        server.pool(),
        business.tenant_id,
        business.branch_id,
        admin::DEFAULT_ENROLMENT_CODE_TTL,
    )
    .await
    .unwrap();
    let enrolled = SyncClient::enrol(&server.base_url, &code, "Crash desk")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("desk.db");
    let secrets_path = dir.path().join("secrets.json");
    {
        let secrets = Arc::new(file_secrets::FileSecretStore::new(&secrets_path));
        let mut store = Store::open(&db_path, secrets).unwrap();
        store
            .enrol(
                DeskIdentity::from_enrolment(&enrolled, "Crash desk", &server.base_url),
                &enrolled.device_token,
            )
            .unwrap();
    }
    let args = |run: u64, extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            db_path.display().to_string(),
            secrets_path.display().to_string(),
            run.to_string(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };

    let mut rng = SeededRng::new(0x5eed);
    let mut reported: Vec<Uuid> = Vec::new();
    for run in 0..runs {
        // From "killed while opening" to "killed after a few syncs".
        let millis = 5 + rng.below(400);
        let run_args = args(run, &[]);
        let lines = tokio::task::spawn_blocking(move || run_and_kill(&run_args, millis))
            .await
            .unwrap();
        if let Some(first) = lines.first() {
            assert_eq!(first, "integrity ok", "run {run} after a kill");
        }
        reported.extend(
            lines
                .iter()
                .filter_map(|line| line.strip_prefix("committed "))
                .map(|id| id.parse::<Uuid>().unwrap()),
        );
    }
    assert!(
        reported.len() as u64 > runs,
        "the desk got some work done: {}",
        reported.len()
    );

    // One last process, left to finish: it drains the outbox.
    let drain = Command::new(DESK)
        .args(args(runs, &["--drain"]))
        .output()
        .expect("run the drain");
    let stdout = String::from_utf8_lossy(&drain.stdout);
    assert!(drain.status.success(), "drain failed: {stdout}");
    assert!(
        stdout.lines().any(|line| line == "integrity ok"),
        "{stdout}"
    );
    assert!(stdout.lines().any(|line| line == "drained"), "{stdout}");

    let client = db.owner_client().await.unwrap();
    for id in &reported {
        let logged: i64 = client
            .query_one(
                "SELECT count(*) FROM changes WHERE tenant_id = $1 AND row_id = $2",
                &[&enrolled.tenant_id, id],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(logged, 1, "patient {id} was logged {logged} times");
    }
    let rows: i64 = client
        .query_one(
            "SELECT count(*) FROM patients WHERE tenant_id = $1 AND patient_id = ANY($2)",
            &[&enrolled.tenant_id, &reported],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        rows,
        reported.len() as i64,
        "every reported patient is on the server"
    );

    // Exactly once for the writes nobody saw reported too (killed between commit and print).
    let secrets = Arc::new(file_secrets::FileSecretStore::new(&secrets_path));
    let store = Store::open(&db_path, secrets).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let made = store.sync_state().unwrap().last_seq;
    let seqs: Vec<i64> = client
        .query(
            "SELECT device_seq FROM changes WHERE tenant_id = $1 AND device_id = $2 ORDER BY 1",
            &[&enrolled.tenant_id, &enrolled.device_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(seqs, (1..=made).collect::<Vec<_>>());
    println!(
        "{runs} kills: {} writes reported, {made} made, all on the server once",
        reported.len()
    );
    drop(server);
    db.drop_db().await.unwrap();
}
