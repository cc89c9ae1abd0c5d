//! `bootsim`: a deterministic simulation testbed for the shard bootstrap in
//! [`shardboot`]. One thread, virtual time, one seeded RNG with named
//! sub-streams: the same seed gives the same run, byte for byte.
//!
//! Module map: [`executor`] (tasks, virtual time), [`scheduler`] (random,
//! PCT and FIFO scheduling), [`schedule`] (recorded schedules, replayed),
//! [`timers`], [`time`], [`rng`], [`sync`] (mailboxes), [`trace`] (event
//! capture and trace hash), [`coverage`] (which probes runs reached); the
//! world: [`world`] (hosts and the seams),
//! [`disk`], [`net`], [`clock`], [`topology`] (placement service),
//! [`upstream`] (log and workload), [`faults`] (fault injection and its
//! atlas), [`lifecycle`] (crash, pause and restart of hosts' processes),
//! [`buggify`] (BUGGIFY points' odds); [`scenario`] (the TOML format);
//! [`swarm`], [`shrink`], [`detection`] (how fast the swarm finds each
//! quirk); [`demo`] (the built-in demo workload).

pub mod check;
pub mod engine;
pub mod faults;
pub mod harness;
pub mod scenario;
pub mod tools;
pub mod world;
