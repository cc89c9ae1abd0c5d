//! The simulated world the code under test runs in: hosts and the
//! implementation of `shardboot`'s seams ([`state::SimEnv`]), their disks,
//! the network, clocks, the placement service, the upstream log and its
//! workload, the processes' lifecycle (crash, pause, restart), BUGGIFY, and
//! the fault *state* every part consults ([`faults`]: what is broken right
//! now). What to break, and when, is decided a layer up, in
//! [`crate::faults`].
//!
//! May import: [`crate::engine`].

pub mod buggify;
pub mod clock;
pub mod defect;
pub mod disk;
pub mod faults;
pub mod lifecycle;
pub mod listings;
pub mod net;
pub mod node_name;
pub mod state;
pub mod topology;
pub mod upstream;
pub mod watch;
