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

#[tokio::test]
async fn record_payment_activates_a_business_once_per_reference() {
    let db = TestDatabase::create().await.unwrap();
    let created = stdout(&sync_server(
        &db,
        &[
            "admin",
            "create-business",
            "--name",
            "Klinik Bank",
            "--branch",
            "Main",
        ],
    ));
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    let tenant = created["tenant_id"].as_str().unwrap().to_owned();
    let record = |extra: &[&str]| {
        let mut args = vec!["admin", "record-payment", "--tenant", &tenant];
        args.extend_from_slice(extra);
        sync_server(&db, &args)
    };

    // A bank transfer for a year of PRO, paid during the trial.
    let paid = stdout(&record(&[
        "--plan",
        "PRO",
        "--cycle",
        "YEARLY",
        "--reference",
        "MBB-20250401-77",
    ]));
    assert_eq!(paid.lines().count(), 1, "{paid}");
    let paid: serde_json::Value = serde_json::from_str(&paid).unwrap();
    assert_eq!(paid["state"], "ACTIVE");
    assert_eq!(paid["amount_sen"], 249_000);
    let owner = db.owner_client().await.unwrap();
    let row = owner
        .query_one(
            "SELECT s.trial_ends_at + interval '365 days', s.period_ends_at, s.plan, s.cycle,
                    p.kind, p.status, p.provider, p.external_id, p.amount_sen
             FROM subscriptions s JOIN payments p USING (tenant_id)",
            &[],
        )
        .await
        .unwrap();
    let (expected_end, end): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        (row.get(0), row.get(1));
    assert_eq!(end, expected_end);
    assert_eq!(
        paid["period_ends_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap(),
        end
    );
    assert_eq!(
        (
            row.get::<_, String>(2),
            row.get::<_, String>(3),
            row.get::<_, String>(4),
            row.get::<_, String>(5),
            row.get::<_, String>(6),
            row.get::<_, String>(7),
            row.get::<_, i64>(8),
        ),
        (
            "PRO".to_owned(),
            "YEARLY".to_owned(),
            "CREDIT".to_owned(),
            "COMPLETED".to_owned(),
            "operator".to_owned(),
            "MBB-20250401-77".to_owned(),
            249_000
        )
    );

    // The same transfer twice is refused, and changes nothing.
    let again = record(&[
        "--plan",
        "PRO",
        "--cycle",
        "YEARLY",
        "--reference",
        "MBB-20250401-77",
    ]);
    assert!(!again.status.success());
    assert!(again.stdout.is_empty());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already recorded"));
    let payments: i64 = owner
        .query_one("SELECT count(*) FROM payments", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(payments, 1);

    // A plan that does not exist, a pricing the cycle does not go with, another business.
    let gold = record(&["--plan", "GOLD", "--cycle", "YEARLY"]);
    assert!(!gold.status.success());
    let mismatch = record(&[
        "--plan",
        "PRO",
        "--cycle",
        "YEARLY",
        "--pricing",
        "PERPETUAL",
    ]);
    assert!(!mismatch.status.success());
    assert!(String::from_utf8_lossy(&mismatch.stderr).contains("perpetual licence"));
    let unknown = sync_server(
        &db,
        &[
            "admin",
            "record-payment",
            "--tenant",
            &uuid::Uuid::now_v7().to_string(),
            "--plan",
            "PRO",
            "--cycle",
            "MONTHLY",
        ],
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no business"));

    // A demo licence for nothing: perpetual, no end; then a subscription adds nothing.
    let demo = stdout(&record(&[
        "--plan",
        "ENTERPRISE",
        "--cycle",
        "ONE_TIME",
        "--amount-sen",
        "0",
    ]));
    let demo: serde_json::Value = serde_json::from_str(&demo).unwrap();
    assert_eq!(demo["state"], "ACTIVE");
    assert_eq!(demo["amount_sen"], 0);
    assert!(demo["period_ends_at"].is_null());
    let refused = record(&["--plan", "ENTERPRISE", "--cycle", "MONTHLY"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("perpetual licence"));
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn adjust_subscription_and_refund_payment_print_their_result() {
    let db = TestDatabase::create().await.unwrap();
    let created = stdout(&sync_server(
        &db,
        &[
            "admin",
            "create-business",
            "--name",
            "Klinik Laras",
            "--branch",
            "Main",
        ],
    ));
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    let tenant = created["tenant_id"].as_str().unwrap().to_owned();
    let admin = |command: &str, extra: &[&str]| {
        let mut args = vec!["admin", command, "--tenant", &tenant];
        args.extend_from_slice(extra);
        sync_server(&db, &args)
    };
    let owner = db.owner_client().await.unwrap();
    let period_end = || async {
        owner
            .query_one("SELECT period_ends_at FROM subscriptions", &[])
            .await
            .unwrap()
            .get::<_, chrono::DateTime<chrono::Utc>>(0)
    };
    let parse = |text: &str| text.parse::<chrono::DateTime<chrono::Utc>>().unwrap();

    // Days taken away (a negative number on the command line) and given.
    let trial_end = period_end().await;
    let minus = stdout(&admin(
        "adjust-subscription",
        &["--days", "-2", "--reason", "trial started late"],
    ));
    assert_eq!(minus.lines().count(), 1, "{minus}");
    let minus: serde_json::Value = serde_json::from_str(&minus).unwrap();
    assert_eq!(minus["days"], -2);
    assert_eq!(minus["state"], "TRIAL");
    assert_eq!(
        parse(minus["previous_period_ends_at"].as_str().unwrap()),
        trial_end
    );
    let shortened = trial_end - chrono::TimeDelta::days(2);
    assert_eq!(parse(minus["period_ends_at"].as_str().unwrap()), shortened);
    assert_eq!(period_end().await, shortened);
    let plus: serde_json::Value = serde_json::from_str(&stdout(&admin(
        "adjust-subscription",
        &[
            "--days",
            "10",
            "--reason",
            "outage",
            "--reference",
            "adj-outage",
        ],
    )))
    .unwrap();
    let extended = shortened + chrono::TimeDelta::days(10);
    assert_eq!(parse(plus["period_ends_at"].as_str().unwrap()), extended);
    let row = owner
        .query_one(
            "SELECT kind, status, adjust_days, reason, provider FROM payments
             WHERE external_id = 'adj-outage'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, i32>(2),
            row.get::<_, String>(3),
            row.get::<_, String>(4)
        ),
        (
            "ADJUSTMENT".to_owned(),
            "COMPLETED".to_owned(),
            10,
            "outage".to_owned(),
            "operator".to_owned()
        )
    );

    // No reason (clap refuses the command), an empty one, zero days: refused, nothing moves.
    for extra in [
        &["--days", "3"][..],
        &["--days", "3", "--reason", ""],
        &["--days", "0", "--reason", "nothing"],
    ] {
        let refused = admin("adjust-subscription", extra);
        assert!(!refused.status.success(), "{extra:?}");
        assert!(refused.stdout.is_empty());
    }
    let stderr = String::from_utf8_lossy(&admin("adjust-subscription", &["--days", "3"]).stderr)
        .into_owned();
    assert!(stderr.contains("--reason"), "{stderr}");
    assert_eq!(period_end().await, extended);

    // A bank transfer, refunded in two parts: the second takes the month back.
    stdout(&admin(
        "record-payment",
        &[
            "--plan",
            "STARTER",
            "--cycle",
            "MONTHLY",
            "--reference",
            "MBB-1",
        ],
    ));
    assert_eq!(period_end().await, extended + chrono::TimeDelta::days(30));
    let part: serde_json::Value = serde_json::from_str(&stdout(&admin(
        "refund-payment",
        &[
            "--reference",
            "MBB-1",
            "--amount-sen",
            "900",
            "--reason",
            "discount",
        ],
    )))
    .unwrap();
    assert_eq!(part["amount_sen"], 900);
    assert_eq!(part["refunded_in_full"], false);
    let rest: serde_json::Value =
        serde_json::from_str(&stdout(&admin("refund-payment", &["--reference", "MBB-1"]))).unwrap();
    assert_eq!(rest["amount_sen"], 4_000);
    assert_eq!(rest["refunded_in_full"], true);
    assert_eq!(period_end().await, extended);
    // Refused: nothing named, a payment nobody made, more than is left.
    let nothing = admin("refund-payment", &[]);
    assert!(!nothing.status.success());
    let unknown = admin("refund-payment", &["--reference", "MBB-404"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown_payment"));
    stdout(&admin(
        "record-payment",
        &[
            "--plan",
            "STARTER",
            "--cycle",
            "MONTHLY",
            "--reference",
            "MBB-2",
        ],
    ));
    let over = admin(
        "refund-payment",
        &["--reference", "MBB-2", "--amount-sen", "4901"],
    );
    assert!(!over.status.success());
    assert!(String::from_utf8_lossy(&over.stderr).contains("refund_exceeds_payment"));
    let refunds: i64 = owner
        .query_one("SELECT count(*) FROM payments WHERE kind = 'REFUND'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(refunds, 2);
    db.drop_db().await.unwrap();
}
