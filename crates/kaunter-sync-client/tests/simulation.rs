//! The deterministic sync simulation (see sim/simulation.rs) over many seeds, against the real
//! server and PostgreSQL. CI runs 500 seeds; `KAUNTER_SIM_SEEDS=N` runs N, and
//! `KAUNTER_SIM_SEED=S` replays seed S alone. `cargo run -p kaunter-sync-client --example
//! simulate -- 10000` runs many more with a summary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../sim/simulation.rs"]
mod simulation;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seed_converges_with_nothing_lost_or_doubled() {
    let seeds: Vec<u64> = match std::env::var("KAUNTER_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("KAUNTER_SIM_SEED is a number")],
        Err(_) => {
            let count = std::env::var("KAUNTER_SIM_SEEDS")
                .map(|n| n.parse().expect("KAUNTER_SIM_SEEDS is a number"))
                .unwrap_or(500);
            (0..count).collect()
        }
    };
    let world = simulation::World::start().await;
    let mut total = simulation::Tally::default();
    let mut failures = Vec::new();
    for seed in &seeds {
        match simulation::run_seed(&world, *seed).await {
            Ok(tally) => total.add(&tally),
            Err(failure) => failures.push(failure.to_string()),
        }
    }
    world.stop().await;
    println!("{} seeds: {total:?}", seeds.len());
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed:\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n")
    );
    // The run exercised what it claims to.
    assert!(total.writes > 0 && total.syncs > 0);
    if seeds.len() >= 50 {
        for (what, count) in [
            ("restarts", total.restarts),
            ("replays", total.replays),
            ("lost requests", total.lost_requests),
            ("lost responses", total.lost_responses),
            ("duplicated pushes", total.duplicated),
            ("failed syncs", total.failed_syncs),
        ] {
            assert!(count > 0, "no {what} happened in {} seeds", seeds.len());
        }
    }
}
