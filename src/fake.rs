//! A small hand-written fake world for the unit tests in `src/` (the real
//! simulator lives in `sim/`, which depends on this crate: a unit-test build
//! of `shardboot` is another copy of the crate than the one `sim/` links, so
//! its types do not fit).
//!
//! [`FakeWorld`] owns a `futures` `LocalPool` and a shared [`FakeNet`]: one
//! manual clock with timers, the cluster view, the upstream log, and every
//! host's disk, metastore, RNG and (optionally) peer-data server. Each host's
//! [`FakeEnv`] implements [`Env`](crate::env::Env) over those.
//!
//! Choices (test code, but honest to the seams' docs):
//! - **Clock**: one clock for all hosts. `sleep(d)` completes only when the
//!   world fires its timer — even `sleep(ZERO)` yields until then — so a test
//!   can stop a task exactly at an await point. [`FakeWorld::run`] advances
//!   the clock to the next timer whenever everything is stalled (virtual
//!   time, like tokio's paused clock); [`FakeWorld::advance`],
//!   [`FakeWorld::fire_due`] and [`FakeWorld::run_until_stalled`] step by hand.
//! - **Spawn**: tasks run on the pool; dropping a join handle detaches the
//!   task. Tasks do not die with a host (there are no crashes, only
//!   [`FakeDisk::crash`] for the disk).
//! - **Disk / metastore / upstream / dial** complete without yielding; the
//!   disk keeps a durable copy per file, updated at `sync`.
//! - **Peers**: `dial` returns a client that calls straight into the
//!   registered [`PeerServer`](crate::peer_server::PeerServer) of the other
//!   host; keep-alive streams are channel pairs served by a spawned
//!   `serve_keep_alive` task.
//!
//! Layout, each file using only those listed before it: one file per seam
//! with no dependency on the others (`task.rs`, `disk.rs`, `metastore.rs`,
//! `cluster.rs`, `upstream.rs`); `net.rs` (the shared state and each host's
//! [`FakeEnv`] handle); `clock.rs` (timers and `sleep`); `keep_alive.rs`
//! and `peers.rs` (connections to other hosts); `env.rs` (the `Env`
//! implementation); `world.rs` ([`FakeWorld`]).

// Shared by every module's tests: not each of them uses every helper.
#![allow(dead_code)]

mod clock;
mod cluster;
mod disk;
mod env;
mod keep_alive;
mod metastore;
mod net;
mod peers;
mod task;
mod upstream;
mod world;

#[cfg(test)]
mod tests;

// Every fake keeps its path `crate::fake::Fake…`, named by a test or not.
#[allow(unused_imports)]
pub(crate) use cluster::FakeCluster;
#[allow(unused_imports)]
pub(crate) use disk::{FakeDisk, FakeFile};
pub(crate) use keep_alive::{FakeKeepAliveClient, FakeKeepAliveServer};
#[allow(unused_imports)]
pub(crate) use metastore::FakeMetaStore;
#[allow(unused_imports)]
pub(crate) use net::{FakeEnv, FakeNet};
#[allow(unused_imports)]
pub(crate) use peers::{FakeChunks, FakePeer};
pub(crate) use task::FakeJoin;
#[allow(unused_imports)]
pub(crate) use upstream::FakeUpstream;
pub(crate) use world::FakeWorld;
