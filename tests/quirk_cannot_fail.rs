//! Quirks that cannot cause a violation in the model (docs/MODEL.md §6: "or show why
//! it cannot"). Each has a regression file with the quirk on that expects
//! `pass` and says why in its header; here the swarm runs that file with
//! randomised options over 2,000 seeds and must find nothing.

mod common;

use bootsim::{Budget, Entry, Partition, SwarmConfig, swarm};
use shardboot::quirks::Quirk;

/// Seeds 1..=2,000 of a swarm over `scenarios/<file>` alone must all pass;
/// else the test fails with one line per failing seed.
fn assert_swarm_finds_nothing(file: &str, quirk: Quirk) {
    let scenario = common::scenario(file);
    assert!(scenario.quirk_set().on(quirk), "{file}: {quirk} is not on");
    let config = SwarmConfig {
        mix: vec![Entry {
            path: common::scenario_path(file),
            scenario,
        }],
        budget: Budget::Seeds(2_000),
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
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(run.results.len(), 2_000, "every seed ran");
}

#[test]
fn q12_no_source_cannot_arise_in_2000_swarm_seeds() {
    assert_swarm_finds_nothing("regressions/q12-no-source-cannot-arise.toml", Quirk::Q12);
}

#[test]
fn q1_clock_seeded_shuffle_fails_nothing_in_2000_swarm_seeds() {
    assert_swarm_finds_nothing(
        "regressions/q1-clock-seeded-shuffle-cannot-fail.toml",
        Quirk::Q1,
    );
}

#[test]
fn q3_copy_going_on_after_keep_alive_loss_fails_nothing_in_2000_swarm_seeds() {
    assert_swarm_finds_nothing(
        "regressions/q3-copy-goes-on-after-keep-alive-loss-cannot-fail.toml",
        Quirk::Q3,
    );
}

#[test]
fn q6_split_session_check_fails_nothing_in_2000_swarm_seeds() {
    assert_swarm_finds_nothing(
        "regressions/q6-split-session-check-cannot-fail.toml",
        Quirk::Q6,
    );
}

#[test]
fn q8_mixed_metadata_reads_cannot_fail_in_2000_swarm_seeds() {
    assert_swarm_finds_nothing(
        "regressions/q8-mixed-metadata-reads-cannot-fail.toml",
        Quirk::Q8,
    );
}

#[test]
fn q9_token_reserves_nothing_cannot_fail_in_2000_swarm_seeds() {
    assert_swarm_finds_nothing(
        "regressions/q9-token-reserves-nothing-cannot-fail.toml",
        Quirk::Q9,
    );
}
