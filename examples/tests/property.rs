//! A property over generated scenarios, as a user writes one: bootsim's
//! strategies draw valid scenarios (clusters, tables, placement changes,
//! faults with a liveness phase) and the oracle must find nothing unsafe.
//! Fixed proptest seed: every run tries the same cases.

use bootsim::strategies::scenario;
use bootsim::{Outcome, RunOptions, run};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 8,
        rng_seed: RngSeed::Fixed(0xe8a3_91e5),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_generated_scenario_breaks_a_safety_invariant(s in scenario(), seed in 0u64..1_000_000) {
        let report = run(&s, RunOptions::seed(seed));
        let safe = match &report.outcome {
            Outcome::Pass => true,
            Outcome::Violation(v) => !v.kind.is_safety(),
            Outcome::Panicked { .. } | Outcome::ReplayFailed(_) => false,
        };
        prop_assert!(safe, "seed {seed}: {}", report.outcome.label());
    }
}
