//! Shared by the fault tests: a small replace-node scenario (n1 → n4 after
//! midnight, so copies carry archived batches) with a liveness phase, and
//! helpers to run it keeping every trace event and count fault events.

use std::path::Path;

use bootsim::Keep;
use bootsim::Scenario;
use bootsim::{Report, RunOptions, run};

pub const BASE: &str = r#"
name = "faults"
duration = "1h45m"

[cluster]
nodes = 3
spare_nodes = 1
replicas = 2
shards = 2
start_time = "23h20m"

[[table]]
name = "trips"
kind = "fact"
retention_days = 7
preloading_days = 1

[[table]]
name = "cities"
kind = "dimension"
columns = 2

[liveness]
heal_at = "1h25m"
within = "20m"

[[step]]
at = "1h5m"
do = "replace_node"
old = "n1"
new = "n4"
"#;

/// [`BASE`] followed by `extra` (fault sections, more steps).
pub fn scenario(extra: &str) -> Scenario {
    with_base(BASE, extra)
}

/// `base` followed by `extra`.
pub fn with_base(base: &str, extra: &str) -> Scenario {
    Scenario::parse(Path::new("faults.toml"), &format!("{base}\n{extra}\n"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Run keeping every trace event.
pub fn run_all(s: &Scenario, seed: u64) -> Report {
    run(
        s,
        RunOptions {
            keep: Keep::All,
            ..RunOptions::seed(seed)
        },
    )
}

/// How many `fault_injected` events of `kind` the run traced.
pub fn fired(r: &Report, kind: &str) -> usize {
    r.trace
        .events()
        .filter(|e| e.name() == "fault_injected" && e.field("kind") == Some(kind))
        .count()
}

/// The reasons of the `fault_refused` events of `kind`.
pub fn refused<'a>(r: &'a Report, kind: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    r.trace
        .events()
        .filter(move |e| e.name() == "fault_refused" && e.field("kind") == Some(kind))
        .filter_map(|e| e.field("reason"))
}
