//! Checking: the oracle (what must always hold, read from the hosts' state
//! and the upstream log) and coverage of the port's probes.
//!
//! May import: [`crate::engine`], [`crate::world`], [`crate::faults`],
//! [`crate::scenario`].

pub mod coverage;
pub mod oracle;
