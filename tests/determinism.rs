//! Determinism is the product: the same scenario and seed give the same
//! trace, in one process, across processes (see sim/tests/cli.rs) and across
//! threads running side by side; and the self-check catches a run that is not.

use bootsim::Defect;
use bootsim::determinism;
use bootsim::{RunOptions, run};

mod common;
use common::scenario;

#[test]
fn same_seed_gives_the_same_trace_hash_and_different_seeds_differ() {
    let s = scenario("replace-node.toml");
    let a = run(&s, RunOptions::seed(11)).trace.hash();
    assert_eq!(a, run(&s, RunOptions::seed(11)).trace.hash());
    assert_ne!(a, run(&s, RunOptions::seed(12)).trace.hash());
}

#[test]
fn determinism_check_passes_on_a_clean_world() {
    let s = scenario("add-node.toml");
    for seed in 1..=3 {
        if let Err(d) = determinism::check(&s, RunOptions::seed(seed)) {
            panic!("{d}");
        }
    }
}

#[test]
fn determinism_check_reports_where_a_stray_global_makes_runs_diverge() {
    let s = scenario("replace-node.toml");
    let opts = RunOptions {
        defect: Some(Defect::ProcessGlobalLatency),
        ..RunOptions::seed(5)
    };
    let Err(d) = determinism::check(&s, opts) else {
        panic!("a process-global counter must be caught");
    };
    assert_eq!(d.seed, 5);
    assert!(d.first.is_some() && d.first != d.second, "{d}");
    assert!(d.to_string().contains(&format!("trace #{}", d.index)));
}

#[test]
fn runs_on_parallel_threads_give_the_same_hashes_as_alone() {
    // The swarm runs one simulation per thread; trace capture is per thread
    // and must lose nothing when several run at once.
    let s = scenario("replace-node.toml");
    let alone: Vec<String> = (1..=4)
        .map(|seed| run(&s, RunOptions::seed(seed)).trace.hash())
        .collect();
    for _ in 0..3 {
        let parallel: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (1..=4)
                .map(|seed| {
                    let s = &s;
                    scope.spawn(move || run(s, RunOptions::seed(seed)).trace.hash())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("run thread"))
                .collect()
        });
        assert_eq!(parallel, alone);
    }
}
