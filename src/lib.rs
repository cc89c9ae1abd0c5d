//! `shardboot`: the shard bootstrap of a replicated, sharded columnar store
//! (after Uber AresDB's data node), written against the seams in [`env`](mod@env) so
//! that it runs unchanged on the deterministic simulator `bootsim`.
//!
//! Module map (see `docs/MODEL.md` for the behaviour):
//! - [`types`], [`model`], [`placement`], [`protocol`]: plain data;
//! - [`env`](mod@env): the seams (clock, spawn, RNG, disk, metastore, peers, cluster);
//!   [`buggify`]: the named points where simulation makes bad luck common;
//!   [`probe`]: the named interesting states a swarm should reach;
//! - [`quirks`], [`options`]: upstream behaviours as switches, tunables;
//! - [`store`]: one table shard's data on one host and its background jobs;
//! - [`table_shard`]: the table shard bootstrap and its peer copy;
//! - [`memstore`]: a host's table shards, their node-wide bootstrap and
//!   shard readiness; [`manager`]: one node-wide bootstrap at a time;
//! - [`datanode`]: placement watch, shard-set assignment, availability and
//!   readiness checks, retries, ingestion and jobs of one host.

pub mod buggify;
pub mod datanode;
pub mod details;
pub mod env;
#[cfg(test)]
pub(crate) mod fake;
pub mod manager;
pub mod memstore;
pub mod model;
pub mod options;
pub mod peer_server;
pub mod peer_source;
pub mod placement;
pub mod probe;
pub mod protocol;
pub mod quirks;
pub mod store;
pub mod table_shard;
#[cfg(test)]
pub(crate) mod trace_capture;
pub mod types;
