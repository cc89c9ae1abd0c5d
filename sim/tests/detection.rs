//! `bench detection` end to end, on a defect the swarm finds within a few
//! seeds (the planted world bug of
//! scenarios/regressions/planted-empty-copied-column.toml, its scenario
//! expecting a pass): each start stops at its first failing seed, which is
//! the first failure an unstopped swarm over the same seeds finds, whatever
//! the number of workers; the failure is shrunk to the same violation.

use std::path::PathBuf;

use bootsim::{DetectionConfig, Shrunk, detect, markdown_table};
use bootsim::{Entry, SwarmConfig, SwarmRun, swarm};
use bootsim::{Expect, Scenario};
use shardboot::quirks::Quirk;

fn planted() -> Entry {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/regressions/planted-empty-copied-column.toml"
    ));
    let mut scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    scenario.expect = Expect::Pass;
    scenario.replay = None;
    Entry { path, scenario }
}

fn config(starts: u64, max_seeds: u64, jobs: usize, shrink_runs: usize) -> DetectionConfig {
    DetectionConfig {
        mix: vec![planted()],
        starts,
        max_seeds,
        first_seed: 1,
        jobs,
        shrink_runs,
        failures: None,
    }
}

fn seeds(run: &SwarmRun) -> Vec<u64> {
    run.results.iter().map(|r| r.seed).collect()
}

#[test]
fn each_start_stops_at_its_first_failure_and_the_first_one_is_shrunk() {
    let cfg = config(3, 2, 2, 4);
    let r = detect(&cfg, Quirk::Q14, |_| {});
    assert_eq!(r.starts.len(), 3);
    for (i, start) in r.starts.iter().enumerate() {
        assert_eq!(start.first_seed, 1 + 2 * i as u64, "disjoint seed ranges");
        // The same seeds without stopping: the stopped run's failure is the
        // first one there.
        let unstopped = swarm(
            &SwarmConfig {
                stop_on_failure: false,
                ..cfg.start(Quirk::Q14, i as u64)
            },
            |_, _| {},
        );
        assert_eq!(
            start.failure.as_ref().map(|f| f.seed),
            unstopped.failures().next().map(|f| f.seed),
            "start {i}"
        );
        assert!(
            start
                .seeds_to_failure()
                .is_none_or(|n| (1..=2).contains(&n))
        );
    }
    assert!(
        r.outcomes().contains("violation: data-loss"),
        "the planted defect was not found in seeds 1..=6: {:?}",
        r.outcomes()
    );
    match &r.shrunk {
        Some(Shrunk::Done {
            violation,
            before,
            after,
            runs,
        }) => {
            assert_eq!(violation, "data-loss");
            assert!(after.duration <= before.duration, "{before} -> {after}");
            assert!(*runs <= 4);
        }
        other => panic!("not shrunk: {other:?}"),
    }
    let table = markdown_table(std::slice::from_ref(&r), 2);
    assert!(
        table.contains("| Q14 |") && table.contains("| data-loss: "),
        "{table}"
    );
}

#[test]
fn a_stopped_swarm_ends_at_the_lowest_failing_seed_whatever_the_workers() {
    let cfg = config(1, 6, 1, 0);
    let one = swarm(&cfg.start(Quirk::Q14, 0), |_, _| {});
    let two = swarm(
        &SwarmConfig {
            jobs: 2,
            ..cfg.start(Quirk::Q14, 0)
        },
        |_, _| {},
    );
    assert_eq!(seeds(&one), seeds(&two));
    assert_eq!(one.failures().count(), 1);
    let last = one.results.last().expect("a seed ran");
    assert!(
        last.verdict.failed(),
        "the run ends at its failure: {last:?}"
    );
    assert!(seeds(&one).len() < 6, "it stopped early: {:?}", seeds(&one));
}
