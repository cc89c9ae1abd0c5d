//! A simulation from code and one from a file: the same cluster, the same
//! checks. `Sim::builder()` goes through the very parser files do, so what
//! a test builds can be saved as a scenario file and replayed by the CLI.

use std::path::Path;
use std::time::Duration;

use bootsim::shardboot::types::NodeId;
use bootsim::{Outcome, RunOptions, Scenario, Sim, run};

fn two_tables() -> bootsim::SimBuilder {
    Sim::builder()
        .name("two-tables")
        .duration(Duration::from_secs(30 * 60))
        .nodes(3)
        .spare_nodes(1)
        .replicas(2)
        .shards(4)
        .fact_table("trips")
        .dimension_table("cities")
        .add_node(Duration::from_secs(10 * 60), 4)
}

#[test]
fn a_scenario_built_in_code_passes_every_check() {
    let scenario = two_tables().scenario().expect("a valid scenario");
    let report = run(&scenario, RunOptions::seed(11));
    assert_eq!(report.outcome, Outcome::Pass, "{}", report.outcome.label());
}

#[test]
fn the_builder_and_the_file_describe_the_same_run() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/two-tables.toml");
    let from_file = Scenario::load(&file).expect("a valid file");
    let built = two_tables().scenario().expect("a valid scenario");
    let a = run(&from_file, RunOptions::seed(5));
    let b = run(&built, RunOptions::seed(5));
    assert_eq!(a.outcome, Outcome::Pass, "{}", a.outcome.label());
    assert_eq!(
        a.trace.hash(),
        b.trace.hash(),
        "same scenario, same seed, same run"
    );
}

#[test]
fn a_built_sim_runs_user_code_in_virtual_time() {
    let mut sim = two_tables().seed(3).build().expect("a valid scenario");
    sim.start_all_nodes();
    let end = sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.now().as_nanos(), 60_000_000_000, "{end:?}");
    assert!(sim.node(NodeId(1)).is_some(), "n1 runs a data node");
}

#[test]
fn a_bad_value_names_the_builder_and_the_field() {
    let err = Sim::builder()
        .nodes(1)
        .replicas(2)
        .fact_table("t")
        .scenario();
    let message = err.expect_err("two replicas on one host").to_string();
    assert!(
        message.contains("Sim::builder") && message.contains("replicas"),
        "{message}"
    );
}
