//! The fault-free scenarios in `scenarios/` converge for every seed tried:
//! each replica ends `Available` with exactly the upstream rows, and no
//! safety check fires on the way.

use bootsim::{Outcome, RunOptions, run};

mod common;

const SEEDS: std::ops::RangeInclusive<u64> = 1..=50;

fn passes_for_every_seed(file: &str) {
    let scenario = common::scenario(file);
    for seed in SEEDS {
        let report = run(&scenario, RunOptions::seed(seed));
        assert_eq!(
            report.outcome,
            Outcome::Pass,
            "{file} seed {seed}: {}\nlast events:\n{}",
            report.outcome,
            report
                .trace
                .events()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

macro_rules! scenario_tests {
    ($($name:ident => $file:literal,)*) => {$(
        #[test]
        fn $name() {
            passes_for_every_seed($file);
        }
    )*};
}

scenario_tests! {
    new_placement_skips_the_copy_and_converges => "new-placement.toml",
    add_node_converges => "add-node.toml",
    remove_node_converges => "remove-node.toml",
    replace_node_converges => "replace-node.toml",
    raise_replicas_converges => "raise-replicas.toml",
    dimension_only_new_node_converges => "dimension-only-new-node.toml",
    day_rollover_during_copy_converges => "day-rollover-during-copy.toml",
    second_bootstrap_of_a_running_table_shard_is_refused_and_changes_nothing => "concurrent-bootstrap-requests.toml",
}
