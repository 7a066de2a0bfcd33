//! Runs the sync simulation over many seeds and prints a summary:
//!
//! ```sh
//! cargo run --release -p kaunter-sync-client --example simulate -- 10000 [first-seed]
//! ```
//!
//! Needs PostgreSQL as for the tests (KAUNTER_TEST_PG_URL, default 127.0.0.1:5432). Failing
//! seeds are printed with the command that replays each; the exit status is non-zero if any
//! failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../sim/simulation.rs"]
mod simulation;

use std::time::Instant;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let count: u64 = args
        .next()
        .map_or(10_000, |n| n.parse().expect("seed count"));
    let first: u64 = args.next().map_or(0, |n| n.parse().expect("first seed"));
    let world = simulation::World::start().await;
    let started = Instant::now();
    let mut total = simulation::Tally::default();
    let mut failures = 0u64;
    for seed in first..first + count {
        match simulation::run_seed(&world, seed).await {
            Ok(tally) => total.add(&tally),
            Err(failure) => {
                failures += 1;
                eprintln!("{failure}");
            }
        }
        let done = seed - first + 1;
        if done.is_multiple_of(500) {
            eprintln!(
                "{done}/{count} seeds, {failures} failed, {:.0?}",
                started.elapsed()
            );
        }
    }
    world.stop().await;
    println!(
        "{count} seeds (from {first}) in {:.1?}: {} failed\n\
         desks {}, writes {}, rows {}, syncs {} ({} failed mid-way), restarts {}, \
         old batches replayed {}, lost requests {}, lost responses {}, duplicated pushes {}\n\
         bookings {}, cash entries {}, catalogue changes {}, overlap conflicts {}, \
         purges {} ({} rows purged), \
         full resyncs {}",
        started.elapsed(),
        failures,
        total.desks,
        total.writes,
        total.rows,
        total.syncs,
        total.failed_syncs,
        total.restarts,
        total.replays,
        total.lost_requests,
        total.lost_responses,
        total.duplicated,
        total.bookings,
        total.cash_entries,
        total.catalogue_changes,
        total.overlap_conflicts,
        total.purges,
        total.purged_rows,
        total.resyncs,
    );
    if failures == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
