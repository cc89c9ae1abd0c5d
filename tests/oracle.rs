//! The oracle is not a check that cannot fail: defects planted in the world
//! are reported under the right name.

use std::path::Path;

use bootsim::oracle::ViolationKind;
use bootsim::run::{Outcome, RunOptions, run};
use bootsim::scenario::Scenario;
use bootsim::world::Defect;

fn scenario(file: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(file);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_silently_emptied_copied_vector_party_is_reported_as_data_loss() {
    let scenario = scenario("replace-node.toml");
    for seed in 1..=5 {
        let clean = run(&scenario, RunOptions::seed(seed));
        assert_eq!(
            clean.outcome,
            Outcome::Pass,
            "seed {seed}: {}",
            clean.outcome
        );
        let planted = run(
            &scenario,
            RunOptions {
                defect: Some(Defect::EmptyFirstFactRawDataStream),
                ..RunOptions::seed(seed)
            },
        );
        match &planted.outcome {
            Outcome::Violation(v) => {
                assert_eq!(v.kind, ViolationKind::DataLoss, "seed {seed}: {v}");
                assert_eq!(v.node, Some(bootsim_node(4)), "seed {seed}: {v}");
            }
            other => panic!("seed {seed}: the planted defect went unnoticed: {other}"),
        }
    }
}

fn bootsim_node(n: u32) -> shardboot::types::NodeId {
    shardboot::types::NodeId(n)
}

#[test]
fn copy_sources_are_checked_against_the_bootstrap_snapshot() {
    // The trace carries the placement version each bootstrap used, so the
    // oracle can hold the sources against exactly that snapshot.
    let report = run(
        &scenario("replace-node.toml"),
        RunOptions {
            keep: bootsim::trace::Keep::All,
            ..RunOptions::seed(2)
        },
    );
    let chosen: Vec<_> = report
        .trace
        .events()
        .filter(|e| e.name == "copy_sources_chosen")
        .collect();
    assert!(!chosen.is_empty());
    assert!(chosen.iter().all(|e| e.field("view").is_some()), "{:?}", chosen[0]);
}

#[test]
fn a_copied_value_the_upstream_never_had_is_reported_as_phantom_data() {
    let scenario = scenario("replace-node.toml");
    for seed in 1..=3 {
        let planted = run(
            &scenario,
            RunOptions {
                defect: Some(Defect::AlteredFirstFactRawDataStream),
                ..RunOptions::seed(seed)
            },
        );
        match &planted.outcome {
            Outcome::Violation(v) => {
                assert_eq!(v.kind, ViolationKind::PhantomData, "seed {seed}: {v}");
                assert!(v.detail.contains("WrongValue"), "seed {seed}: {v}");
            }
            other => panic!("seed {seed}: the altered value went unnoticed: {other}"),
        }
    }
}
