//! `chaos-default`: placement changes under every fault kind at moderate
//! rates, a liveness phase at the end, all quirks off. Every seed must pass
//! (a violation is a bug in the fixed bootstrap or in the world), and every
//! seed must replay identically.

use bootsim::Scenario;
use bootsim::determinism;
use bootsim::{Outcome, RunOptions, run};

mod common;

fn chaos() -> Scenario {
    common::scenario("chaos-default.toml")
}

fn passes(seeds: std::ops::RangeInclusive<u64>) {
    let scenario = chaos();
    for seed in seeds {
        let report = run(&scenario, RunOptions::seed(seed));
        assert_eq!(
            report.outcome,
            Outcome::Pass,
            "chaos-default seed {seed}: {}\nreplay with: bootsim run --scenario scenarios/chaos-default.toml --seed {seed} --last-events 60",
            report.outcome
        );
    }
}

// Four tests of 50 seeds, so that the test harness spreads them over cores.
#[test]
fn chaos_default_passes_seeds_1_to_50() {
    passes(1..=50);
}

#[test]
fn chaos_default_passes_seeds_51_to_100() {
    passes(51..=100);
}

#[test]
fn chaos_default_passes_seeds_101_to_150() {
    passes(101..=150);
}

#[test]
fn chaos_default_passes_seeds_151_to_200() {
    passes(151..=200);
}

#[test]
fn chaos_default_is_deterministic_for_seeds_1_to_50() {
    let scenario = chaos();
    for seed in 1..=50 {
        if let Err(d) = determinism::check(&scenario, RunOptions::seed(seed)) {
            panic!("{d}");
        }
    }
}
