//! Fault injection: what to break and when. The atlas (which random faults
//! a run may take and still recover), the random fault drivers, and the
//! scripted fault steps of a scenario's timeline. They act on the world's
//! fault state ([`crate::world::faults`]) and its hosts.
//!
//! May import: [`crate::engine`], [`crate::world`].

pub mod atlas;
pub mod nodes;
pub mod random;
pub mod steps;
