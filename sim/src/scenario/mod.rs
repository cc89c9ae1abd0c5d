//! Scenarios: the TOML format users write (a cluster, tables, workload,
//! timeline of steps, faults, quirks, what the run should give), the
//! swarm's per-seed option randomiser, and proptest strategies that draw
//! valid scenarios (feature `proptest`).
//!
//! May import: [`crate::engine`], [`crate::world`], [`crate::faults`].

pub mod format;
pub mod randomise;
#[cfg(feature = "proptest")]
pub mod strategies;
