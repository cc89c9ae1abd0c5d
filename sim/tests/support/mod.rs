//! Shared by the fault tests: a small replace-node scenario and trace
//! counting.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::path::Path;

use bootsim::Scenario;
use bootsim::{Keep, TraceEvent};
use bootsim::{Outcome, Report, RunOptions, run};

/// A replace-node cluster, all quirks off: it starts at 23:30, archives the
/// day after midnight, and at 55 m n1 is replaced by the spare n4, which
/// copies archive batches over a slow network (20 KB/s: a copy takes some
/// 15 s, a window for faults). `head` goes before the tables (top-level
/// keys), `extra` after the replace step (more steps, `[faults]`,
/// `[liveness]`, ...). The run lasts `duration`.
pub fn replace_node(duration: &str, head: &str, extra: &str) -> Scenario {
    let text = format!(
        r#"
name = "replace-node-with-faults"
duration = "{duration}"
{head}

[cluster]
nodes = 3
spare_nodes = 1
replicas = 2
shards = 4
start_time = "23h30m"

[network]
bandwidth = 20000

[[table]]
name = "trips"
kind = "fact"
retention_days = 7
preloading_days = 1
columns = 3

[[table]]
name = "cities"
kind = "dimension"
columns = 2

[[step]]
at = "55m"
do = "replace_node"
old = "n1"
new = "n4"
{extra}
"#
    );
    Scenario::parse(Path::new("test.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

/// Run with the whole trace kept.
pub fn run_all(scenario: &Scenario, seed: u64) -> Report {
    run(
        scenario,
        RunOptions {
            keep: Keep::All,
            ..RunOptions::seed(seed)
        },
    )
}

/// Events named `name` with field `key` equal to `value`.
pub fn count(report: &Report, name: &str, key: &str, value: &str) -> usize {
    report
        .trace
        .events()
        .filter(|e| e.name() == name && e.field(key) == Some(value))
        .count()
}

/// Fault events of `kind` (`sim::fault`, `fault_injected`).
pub fn faults<'a>(report: &'a Report, kind: &str) -> Vec<&'a TraceEvent> {
    report
        .trace
        .events()
        .filter(|e| e.target == "sim::fault" && e.name() == "fault_injected")
        .filter(|e| e.field("kind") == Some(kind))
        .collect()
}

/// Panic with the tail of the trace unless the run passed.
pub fn assert_pass(report: &Report) {
    if report.outcome != Outcome::Pass {
        let events: Vec<String> = report.trace.events().map(|e| e.to_string()).collect();
        let tail = &events[events.len().saturating_sub(60)..];
        panic!(
            "seed {}: {}\nlast events:\n{}",
            report.seed,
            report.outcome,
            tail.join("\n")
        );
    }
}
