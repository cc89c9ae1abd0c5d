//! The swarm pipeline end to end: a planted bug is found by the swarm, its
//! artifact replays with the same trace hash, and the shrinker brings it to
//! a small scenario that fails the same way; partitions split a swarm
//! without overlap or gap; a panicking or runaway simulation is reported
//! with its seed and the swarm goes on.

use std::path::{Path, PathBuf};

use bootsim::Outcome;
use bootsim::replay;
use bootsim::shrink;
use bootsim::{Budget, Entry, Partition, SeedResult, SwarmConfig, Verdict, run_parallel, swarm};
use bootsim::{Expect, Scenario};

/// A replacement whose copy meets the planted world bug
/// `empty_first_fact_raw_data_stream` (a copied column silently emptied),
/// plus steps that have nothing to do with it.
const PLANTED: &str = r#"
name = "planted"
duration = "1h30m"
swarm = true
defects = ["empty_first_fact_raw_data_stream"]

[cluster]
nodes = 3
spare_nodes = 1
replicas = 2
shards = 2
start_time = "23h20m"

[[table]]
name = "trips"
kind = "fact"
retention_days = 3
preloading_days = 1

[[table]]
name = "cities"
kind = "dimension"

[[step]]
at = "5m"
do = "retry"
node = "n2"

[[step]]
at = "20m"
do = "retry"
node = "n3"

[[step]]
at = "1h5m"
do = "replace_node"
old = "n1"
new = "n4"

[[step]]
at = "1h10m"
do = "retry"
node = "n2"
"#;

/// A small fault-free cluster: cheap runs for the partition tests.
const SMALL: &str = r#"
name = "small"
duration = "10m"
[cluster]
nodes = 2
replicas = 2
shards = 1
[[table]]
name = "trips"
kind = "fact"
"#;

fn entry(name: &str, text: &str) -> Entry {
    let path = PathBuf::from(format!("{name}.toml"));
    let scenario = Scenario::parse(&path, text).unwrap_or_else(|e| panic!("{e}"));
    Entry { path, scenario }
}

fn config(mix: Vec<Entry>, seeds: u64, jobs: usize, partition: Partition) -> SwarmConfig {
    SwarmConfig {
        mix,
        budget: Budget::Seeds(seeds),
        first_seed: 1,
        jobs,
        partition,
        randomise: true,
        failures: None,
        stop_on_failure: false,
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_planted_bug_is_found_replayed_exactly_and_shrunk_to_a_small_scenario() {
    let dir = scratch("swarm-pipeline");
    let cfg = SwarmConfig {
        failures: Some(dir.clone()),
        ..config(vec![entry("planted", PLANTED)], 3, 2, Partition::WHOLE)
    };
    let run = swarm(&cfg, |_, _| {});
    let failed: Vec<&SeedResult> = run.failures().collect();
    assert!(!failed.is_empty(), "the swarm missed the planted bug");
    assert_eq!(run.worst(), Verdict::Safety);
    let found = failed[0];
    assert_eq!(found.outcome, "violation: data-loss", "{found:?}");

    // The artifact is a scenario file that replays to the very same run.
    let artifact = found.artifact.as_ref().expect("an artifact was written");
    assert_eq!(
        artifact,
        &dir.join(format!("planted-seed-{}.toml", found.seed))
    );
    let text = std::fs::read_to_string(artifact).unwrap();
    assert!(text.starts_with("# bootsim failure artifact"), "{text}");
    let scenario = Scenario::load(artifact).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scenario.expect, Expect::Violation("data-loss".into()));
    let replayed = replay(&scenario, 30);
    assert_eq!(
        Some(replayed.report.trace.hash()),
        found.trace_hash,
        "the replay is not the swarm's run"
    );
    assert!(replayed.hash_matches() && replayed.outcome_matches(&scenario));
    assert!(!replayed.before.is_empty() && replayed.before.len() <= 30);

    // Shrinking keeps the violation and drops what does not matter.
    let shrunk = shrink(&scenario, 80, |_| {}).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(shrunk.violation.kind.name(), "data-loss");
    assert!(shrunk.after.steps <= 10, "{}", shrunk.after);
    assert!(shrunk.after.steps < shrunk.before.steps, "{}", shrunk.after);
    assert!(
        shrunk.after.tables < shrunk.before.tables,
        "{}",
        shrunk.after
    );
    let again = replay(&shrunk.scenario, 0);
    assert!(
        matches!(&again.report.outcome, Outcome::Violation(v) if v.kind.name() == "data-loss"),
        "{}",
        again.report.outcome
    );
    assert!(again.hash_matches());
}

#[test]
fn partitions_one_and_two_of_two_together_are_exactly_the_unpartitioned_swarm() {
    let mix = || vec![entry("small", SMALL)];
    let whole = swarm(&config(mix(), 12, 2, Partition::WHOLE), |_, _| {});
    let one = swarm(&config(mix(), 12, 1, Partition { k: 1, n: 2 }), |_, _| {});
    let two = swarm(&config(mix(), 12, 2, Partition { k: 2, n: 2 }), |_, _| {});
    let seeds = |r: &bootsim::SwarmRun| r.results.iter().map(|r| r.seed).collect::<Vec<_>>();
    let (a, b) = (seeds(&one), seeds(&two));
    assert!(a.iter().all(|s| !b.contains(s)), "overlap: {a:?} {b:?}");
    let mut union: Vec<u64> = a.iter().chain(&b).copied().collect();
    union.sort();
    assert_eq!(union, seeds(&whole));
    assert_eq!(union, (1..=12).collect::<Vec<_>>());
    // A seed's run is the same whatever the partition and worker count.
    for r in one.results.iter().chain(&two.results) {
        let w = whole.results.iter().find(|w| w.seed == r.seed).unwrap();
        assert_eq!(
            (&r.trace_hash, &r.options),
            (&w.trace_hash, &w.options),
            "seed {}",
            r.seed
        );
    }
    assert_eq!(whole.summary.failed, 0, "{}", whole.summary);
}

#[test]
fn a_panicking_job_is_reported_with_its_seed_and_the_others_still_run() {
    let mut results = Vec::new();
    run_parallel(
        Box::new(1..=6u64),
        2,
        None,
        |seed| {
            if seed == 3 {
                panic!("boom in seed {seed}");
            }
            SeedResult {
                verdict: Verdict::Ok,
                outcome: "ok".into(),
                ..SeedResult::harness_panic(seed, String::new())
            }
        },
        |r| results.push(r),
    );
    results.sort_by_key(|r| r.seed);
    assert_eq!(results.len(), 6);
    let bad: Vec<_> = results.iter().filter(|r| r.verdict.failed()).collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].seed, 3);
    assert_eq!(bad[0].verdict, Verdict::Panic);
    assert!(bad[0].detail.as_deref().unwrap().contains("boom in seed 3"));
}

#[test]
fn a_runaway_run_ends_at_its_step_bound_as_a_liveness_failure() {
    let text = format!("max_polls = 2000\n{SMALL}");
    let run = swarm(
        &config(vec![entry("runaway", &text)], 2, 2, Partition::WHOLE),
        |_, _| {},
    );
    assert_eq!(run.results.len(), 2);
    for r in &run.results {
        assert_eq!(r.verdict, Verdict::Liveness, "{r:?}");
        assert!(r.detail.as_deref().unwrap().contains("step bound"), "{r:?}");
    }
}

#[test]
fn random_fault_episodes_that_fired_become_explicit_fault_steps() {
    let text = r#"
name = "episodes"
duration = "20m"
[cluster]
nodes = 3
replicas = 2
shards = 2
[[table]]
name = "trips"
kind = "fact"
[faults.net]
partition = { num = 1, den = 60 }
partition_max = "20s"
hold = { num = 1, den = 60 }
unhealthy = { num = 1, den = 60 }
[faults.clock]
jump = { num = 1, den = 120 }
jump_max = "30s"
"#;
    let s = entry("episodes", text).scenario;
    let explicit = bootsim::explicit_faults(&s, 3, bootsim::executor::Scheduler::Random)
        .expect("episodes only: convertible");
    let mut left = explicit.faults.clone();
    assert!(
        bootsim::fault_ratios(&mut left)
            .iter()
            .all(|(_, r)| r.num == 0),
        "{:?}",
        explicit.faults
    );
    let names: Vec<String> = explicit
        .steps
        .iter()
        .map(|st| format!("{:?}", st.get_ref().action))
        .collect();
    for kind in ["Partition", "Heal", "HoldLink", "Unhealthy", "ClockJump"] {
        assert!(
            names.iter().any(|n| n.contains(kind)),
            "no {kind} step in {names:?}"
        );
    }
    // A kind without a scripted equivalent keeps the faults random.
    let mut with_drops = s.clone();
    with_drops.faults.net.drop = bootsim::Ratio::new(1, 100);
    assert!(
        bootsim::explicit_faults(&with_drops, 3, bootsim::executor::Scheduler::Random).is_none()
    );
}
