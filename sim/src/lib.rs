//! `bootsim`: a deterministic simulation testbed for the shard bootstrap in
//! [`shardboot`]. One thread, virtual time, one seeded RNG with named
//! sub-streams: the same seed gives the same run, byte for byte.
//!
//! # Using it from your own tests
//!
//! Build a scenario from code ([`Sim::builder`]) or load a scenario file
//! ([`Scenario::load`]), then [`run`] it against the oracle with a seed:
//!
//! ```
//! use bootsim::{RunOptions, Scenario, run};
//!
//! let scenario = Scenario::parse(
//!     "inline.toml".as_ref(),
//!     r#"
//!         name = "inline"
//!         duration = "20m"
//!         [cluster]
//!         nodes = 3
//!         replicas = 2
//!         shards = 2
//!         [[table]]
//!         name = "trips"
//!         kind = "fact"
//!     "#,
//! )?;
//! let report = run(&scenario, RunOptions::seed(42));
//! assert!(report.outcome.matches(&scenario.expect), "{}", report.outcome.label());
//! # Ok::<(), bootsim::ScenarioError>(())
//! ```
//!
//! [`swarm`] runs many seeds over a mix of scenarios, [`shrink`] minimises a
//! failing run, [`replay`] re-runs a failure artifact; with the `proptest`
//! feature, `strategies` draws valid scenarios. Code that runs *inside* a
//! simulation (tasks spawned with [`Sim::spawn`], [`Sim::block_on`]) uses
//! [`executor`] for virtual time, sleeping and spawning.
//!
//! # Layout
//!
//! The crate is layered (docs/ARCHITECTURE.md; `sim/tests/layering.rs`
//! keeps it so): `engine` (executor, scheduler, virtual time, RNG, trace) ←
//! `world` (hosts, disks, network, clock, placement, upstream log, fault
//! state) ← `faults` (what to break and when) ← `scenario` (the TOML format)
//! ← `check` (the oracle) ← `harness` (one run) ← `tools` (many runs). Only
//! what this page lists is public.

#![warn(missing_docs)]

mod check;
mod engine;
mod faults;
mod harness;
mod scenario;
mod tools;
mod world;

/// The code under test, for its types (`shardboot::types::NodeId`, ...).
pub use shardboot;

// One run.
pub use harness::artifact::{artifact_text, replay, to_toml, write_artifact};
pub use harness::builder::SimBuilder;
pub use harness::determinism;
pub use harness::run::{Outcome, Report, RunOptions, run};
pub use harness::sim::Sim;
pub use harness::summary::TraceSummary;

// Scenarios.
pub use scenario::format::{
    Action, ClusterSpec, Expect, KindSpec, Scenario, ScenarioError, Step, TableSpec,
};
pub use scenario::randomise::{Choices, fault_ratios};
#[cfg(feature = "proptest")]
pub use scenario::strategies;
pub use world::faults::FaultConfig;
pub use world::net::NetConfig;
pub use world::upstream::Workload;

// What the checker reports.
pub use check::coverage::Coverage;
pub use check::oracle::ViolationKind;

// Many runs.
pub use tools::demo::Demo;
pub use tools::detection::{DetectionConfig, Shrunk, detect, markdown_table};
pub use tools::report::{ProgressPrinter, junit_xml, write_json};
pub use tools::shrink::{explicit_faults, failing_seeds, shrink};
pub use tools::swarm::{
    Budget, Entry, Partition, SeedResult, SwarmConfig, SwarmRun, Verdict, default_mix,
    run_parallel, swarm,
};

// Inside a simulation: virtual time, tasks, the trace, the world's seams.
pub use engine::duration;
pub use engine::executor;
pub use engine::executor::{RunEnd, Scheduler};
pub use engine::rng::{Ratio, SimRng};
pub use engine::schedule::Schedule;
pub use engine::sync;
pub use engine::time::VirtualTime;
pub use engine::trace::{Keep, TraceEvent};
pub use world::disk::NodeDisk;
pub use world::net::SimPeer;
pub use world::state::{Defect, SimEnv, World};
