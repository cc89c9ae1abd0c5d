//! The engine: everything a deterministic run needs that knows nothing of
//! databases. The executor and its task table, scheduling strategies and
//! recorded schedules, the timer queue, virtual time, the seeded RNG
//! streams, mailboxes, the trace (and its hash), and the text form of
//! durations.
//!
//! May import: nothing else of the crate (the bottom layer).

pub mod duration;
pub mod executor;
pub mod probe_hits;
pub mod rng;
pub mod schedule;
pub mod scheduler;
pub mod sync;
pub mod time;
pub mod timers;
pub mod trace;
