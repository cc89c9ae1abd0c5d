//! One run: [`sim::Sim`] (a simulated cluster built from a scenario and a
//! seed), the run loop that plays a scenario against the oracle, failure
//! artifacts and their replay, stable trace summaries for snapshots, and
//! the determinism self-check.
//!
//! May import: every layer below ([`crate::engine`] .. [`crate::check`]).

pub mod artifact;
pub mod builder;
pub mod determinism;
mod operator;
pub mod run;
pub mod sim;
pub mod summary;
mod watch;
