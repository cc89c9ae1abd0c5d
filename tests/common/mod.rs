//! Shared by the integration tests: load a scenario file of `scenarios/`.

// Each test binary compiles its own copy and uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bootsim::Scenario;

/// The path of `scenarios/<file>`.
pub fn scenario_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(file)
}

/// Load `scenarios/<file>`, failing the test with the scenario error.
pub fn scenario(file: &str) -> Scenario {
    Scenario::load(&scenario_path(file)).unwrap_or_else(|e| panic!("{e}"))
}

/// Seeds 1..=`seeds` of a swarm over `scenarios/<file>` alone, options drawn
/// per seed, stopping at the first failure: one line per failing seed
/// (none when every seed passed).
pub fn swarm_failures(file: &str, seeds: u64) -> Vec<String> {
    use bootsim::{Budget, Entry, Partition, SwarmConfig, swarm};
    let config = SwarmConfig {
        mix: vec![Entry {
            path: scenario_path(file),
            scenario: scenario(file),
        }],
        budget: Budget::Seeds(seeds),
        first_seed: 1,
        jobs: 2,
        partition: Partition::WHOLE,
        randomise: true,
        failures: None,
        stop_on_failure: true,
    };
    let run = swarm(&config, |_, _| {});
    let failures: Vec<String> = run
        .failures()
        .map(|r| {
            format!(
                "seed {}: {}",
                r.seed,
                r.detail.as_deref().unwrap_or(&r.outcome)
            )
        })
        .collect();
    if failures.is_empty() {
        assert_eq!(run.results.len() as u64, seeds, "every seed ran");
    }
    failures
}
