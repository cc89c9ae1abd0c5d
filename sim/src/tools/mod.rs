//! Many runs: the swarm, the shrinker, the detection benchmark, the
//! swarm's reports (progress, JSON, JUnit) and the built-in executor demo.
//! The CLI that drives them is the binary's own (`src/cli/`).
//!
//! May import: every layer below ([`crate::engine`] .. [`crate::harness`]).

pub mod demo;
pub mod detection;
pub mod report;
pub mod shrink;
pub mod swarm;
