//! `bootsim`: a deterministic simulation testbed for the shard bootstrap in
//! [`shardboot`]. One thread, virtual time, one seeded RNG with named
//! sub-streams: the same seed gives the same run, byte for byte.

pub mod demo;
pub mod executor;
pub mod rng;
pub mod sync;
pub mod time;
pub mod timers;
pub mod trace;
