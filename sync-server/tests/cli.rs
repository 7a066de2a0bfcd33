//! The `sync-server` binary as scripts use it: migrate, admin commands whose stdout can be
//! captured, and serve.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kaunter_sync_server::enrolment_code::EnrolmentCode;
use kaunter_sync_server::test_support::TestDatabase;

fn sync_server(db: &TestDatabase, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sync-server"))
        .env_clear()
        .env("KAUNTER_DATABASE_URL", &db.owner_url)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}; stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[tokio::test]
async fn migrate_then_admin_commands_print_only_their_result() {
    let db = TestDatabase::create_unmigrated().await.unwrap();
    assert_eq!(stdout(&sync_server(&db, &["migrate"])), "");
    assert_eq!(stdout(&sync_server(&db, &["migrate"])), "");

    let created = stdout(&sync_server(
        &db,
        &[
            "admin",
            "create-business",
            "--name",
            "Klinik Demo",
            "--branch",
            "Main",
            "--branch-code",
            "KL01",
        ],
    ));
    assert_eq!(created.lines().count(), 1, "{created}");
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    let tenant = created["tenant_id"].as_str().unwrap().to_owned();
    let branch = created["branch_id"].as_str().unwrap().to_owned();

    let added = stdout(&sync_server(
        &db,
        &[
            "admin",
            "add-branch",
            "--tenant",
            &tenant,
            "--name",
            "Petaling Jaya",
        ],
    ));
    let added: serde_json::Value = serde_json::from_str(&added).unwrap();
    assert_eq!(added["tenant_id"].as_str(), Some(tenant.as_str()));
    assert!(added["branch_id"].as_str().is_some());

    let code = stdout(&sync_server(
        &db,
        &[
            "admin",
            "enrolment-code",
            "--tenant",
            &tenant,
            "--branch",
            &branch,
            "--ttl-hours",
            "1",
        ],
    ));
    let code = code.strip_suffix('\n').unwrap();
    assert!(!code.contains('\n'));
    assert_eq!(EnrolmentCode::parse(code).unwrap().display(), code);

    // Mistakes say what is wrong, on stderr, with a failing exit status.
    let duplicate = sync_server(
        &db,
        &[
            "admin",
            "add-branch",
            "--tenant",
            &tenant,
            "--name",
            "Again",
            "--code",
            "kl01",
        ],
    );
    assert!(!duplicate.status.success());
    assert!(duplicate.stdout.is_empty());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already has that code"));
    let unknown = sync_server(
        &db,
        &[
            "admin",
            "enrolment-code",
            "--tenant",
            &branch,
            "--branch",
            &branch,
        ],
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no business"));

    // An operator suspends the business, then terminates it; terminated is final.
    for status in ["suspended", "terminated"] {
        let set = sync_server(
            &db,
            &[
                "admin",
                "set-status",
                "--tenant",
                &tenant,
                "--status",
                status,
            ],
        );
        assert!(
            set.status.success(),
            "{}",
            String::from_utf8_lossy(&set.stderr)
        );
    }
    let reactivate = sync_server(
        &db,
        &[
            "admin",
            "set-status",
            "--tenant",
            &tenant,
            "--status",
            "active",
        ],
    );
    assert!(!reactivate.status.success());
    assert!(String::from_utf8_lossy(&reactivate.stderr).contains("cannot be reactivated"));
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn serve_migrates_and_answers() {
    let db = TestDatabase::create_unmigrated().await.unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sync-server"))
        .env_clear()
        .env("KAUNTER_DATABASE_URL", &db.owner_url)
        .env("KAUNTER_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(address) = line.split("address=").nth(1) {
                let _ = sender.send(address.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
    });
    let started = Instant::now();
    let address = loop {
        if let Ok(address) = receiver.try_recv() {
            break address;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the server did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let response = reqwest::get(format!("http://{address}/v1/health"))
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    child.kill().unwrap();
    child.wait().unwrap();
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn serve_refuses_a_role_that_bypasses_rls() {
    let db = TestDatabase::create().await.unwrap();
    // The owner here is a superuser: serving as it would switch row-level security off.
    let output = Command::new(env!("CARGO_BIN_EXE_sync-server"))
        .env_clear()
        .env("KAUNTER_DATABASE_URL", &db.owner_url)
        .env("KAUNTER_APP_DATABASE_URL", &db.owner_url)
        .env("KAUNTER_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refusing to serve"), "{stderr}");
    assert!(
        !stderr.contains(&db.owner_url),
        "a database URL leaked: {stderr}"
    );
    db.drop_db().await.unwrap();
}
