//! Coverage probes through the user's API: a scripted scenario reaches the
//! probes of the states its steps force (and not those of faults it never
//! injects), every seed of a swarm over it is counted per probe, and the
//! probe catalogue is documented.

use std::path::PathBuf;

use bootsim::Coverage;
use bootsim::Scenario;
use bootsim::{Budget, Entry, Partition, SwarmConfig, swarm};
use bootsim::{Outcome, RunOptions, run};
use shardboot::probe::Probe;

mod support;

/// The support module's replacement of n1 by n4 (55m), while
/// `mark_available` fails for two minutes (n4's first calls fail, a later
/// one succeeds); then a source crashes and restarts on its own disk (its
/// recovery replays its redo log), and the replaced host restarts on a copy
/// of another host's disk. No random fault, so no copy ever fails.
const STEPS: &str = r#"
[[step]]
at = "55m"
do = "mark_available_fails"
for = "2m"

[[step]]
at = "1h"
do = "crash"
node = "n2"
restart_after = "10s"

[[step]]
at = "1h5m"
do = "restart_with_disk_of"
node = "n1"
from = "n3"
"#;

const FORCED: [Probe; 3] = [
    Probe::MarkAvailableRetried,
    Probe::RecoveryReplayedRedoLog,
    Probe::RestartedOnAnotherHostsDisk,
];

fn pinned() -> Scenario {
    support::replace_node("1h10m", "", STEPS)
}

#[test]
fn scripted_steps_reach_their_probes_and_no_fault_probe_fires_without_faults() {
    let report = run(&pinned(), RunOptions::seed(3));
    assert_eq!(report.outcome, Outcome::Pass, "{}", report.outcome);
    let probes = report.trace.probes();
    for p in FORCED {
        assert!(probes.reached(p), "{p} not reached: {probes}");
    }
    for p in [
        Probe::CopyFellOver,
        Probe::KeepAliveLost,
        Probe::SessionExpired,
        Probe::SourceCrashedMidCopy,
    ] {
        assert!(!probes.reached(p), "{p} reached without a fault: {probes}");
    }
}

#[test]
fn a_swarm_counts_the_seeds_reaching_each_probe_and_lists_the_others_as_unreached() {
    let cfg = SwarmConfig {
        mix: vec![Entry {
            path: PathBuf::from("replace-node-with-faults.toml"),
            scenario: pinned(),
        }],
        budget: Budget::Seeds(2),
        first_seed: 1,
        jobs: 2,
        partition: Partition::WHOLE,
        randomise: false,
        failures: None,
        stop_on_failure: false,
    };
    let run = swarm(&cfg, |_, _| {});
    let coverage: &Coverage = &run.summary.coverage;
    assert_eq!(coverage.seeds, 2);
    for p in FORCED {
        let row = coverage.probes.iter().find(|c| c.probe == p.name());
        assert_eq!(row.map(|c| c.seeds), Some(2), "{p}");
        assert!(run.results.iter().all(|r| r.probes.reached(p)));
    }
    assert!(!coverage.complete());
    assert!(coverage.unreached.contains(&Probe::CopyFellOver.name()));
    assert!(
        !coverage
            .unreached
            .contains(&Probe::MarkAvailableRetried.name())
    );
    let text = run.summary.to_string();
    assert!(
        text.contains("reached by no seed: ") && text.contains("copy_fell_over"),
        "{text}"
    );
}

#[test]
fn every_probe_is_documented() {
    let doc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/COVERAGE.md");
    let text = std::fs::read_to_string(&doc).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
    let missing: Vec<&str> = Probe::ALL
        .iter()
        .map(|p| p.name())
        .filter(|name| !text.contains(&format!("`{name}`")))
        .collect();
    assert!(missing.is_empty(), "{} lacks {missing:?}", doc.display());
}
