//! The regression suite: every scenario file under `scenarios/` (the
//! fault-free transitions and every file in `scenarios/regressions/`) runs
//! with the seed of its `[replay]` section (default 1) and must give the
//! outcome it expects (and the trace hash it records, if it records one);
//! a stable summary of its trace (per node: stages reached, copy sources
//! chosen, faults fired, final table-shard states; the steps; the coverage
//! probes reached; the outcome) is snapshotted with insta, and any change
//! fails.
//!
//! Accept an intended change with `INSTA_UPDATE=always cargo test --test
//! regressions` (or `cargo insta review`) and commit the snapshot. Under
//! `CI=true` insta never writes a snapshot: a new scenario file without its
//! committed snapshot fails CI.

use bootsim::Keep;
use bootsim::Scenario;
use bootsim::TraceSummary;
use bootsim::executor::Scheduler;
use bootsim::{RunOptions, run};

#[test]
fn scenario() {
    let mut wrong = Vec::new();
    insta::glob!("../scenarios", "**/*.toml", |path| {
        let scenario = Scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
        let (seed, scheduler) = scenario
            .replay
            .as_ref()
            .map_or((1, Scheduler::Random), |r| (r.seed, r.scheduler));
        let report = run(
            &scenario,
            RunOptions {
                keep: Keep::All,
                scheduler,
                ..RunOptions::seed(seed)
            },
        );
        let recorded = scenario.replay.as_ref().and_then(|r| r.trace_hash.as_ref());
        if let Some(recorded) = recorded
            && *recorded != report.trace.hash()
        {
            wrong.push(format!(
                "{}: trace hash {} is not the recorded {recorded} (`bootsim replay` would say DIFFERS)",
                path.display(),
                report.trace.hash()
            ));
        }
        if !report.outcome.matches(&scenario.expect) {
            wrong.push(format!(
                "{}: expected {}, got {}",
                path.display(),
                scenario.expect,
                report.outcome
            ));
        }
        let summary = TraceSummary::of_report(&report);
        insta::assert_yaml_snapshot!(summary);
    });
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
