//! The data node (docs/MODEL.md §5): one host's peer-data server, peer
//! source, memstore and bootstrap manager, and the loops that drive them.
//!
//! [`DataNode::start`] spawns, on the host's executor:
//! - the **placement watch**: on every new cluster view, under the node
//!   lock, assign the shard set (`datanode/assign.rs`) and request a
//!   bootstrap in the background;
//! - the **availability check** (every 5 s): `Initializing` shards whose
//!   table shards are ready are marked `Available` (`datanode/loops.rs`);
//! - the **readiness check** (every 10 s, until it passes once): only a
//!   ready node serves peer copies and runs its background jobs.
//!
//! Every table shard also gets its own loops once it is added: ingestion,
//! and the store's background jobs (archiving, backfill, purge for fact
//! tables; snapshot for dimension tables), each on its period from
//! [`Options`](crate::options::Options) (`datanode/shard_loops.rs`).
//!
//! A failed bootstrap is retried with capped exponential backoff, unless
//! quirk Q14 reproduces upstream, which never retries by itself (a failed
//! table shard then waits for the next view or a manual [`DataNode::retry`])
//! (`datanode/bootstrap.rs`). The node's parts and state are in
//! `datanode/node.rs`, which every other file builds on.
//!
//! On restart the host builds a fresh `DataNode`: nothing in memory
//! survives, so needs-peer-copy is derived again from the placement and
//! every table shard starts `NotStarted`. What is not modelled: dropping a
//! table from the schema, and schema changes of an existing table.

mod assign;
mod bootstrap;
mod loops;
mod node;
mod shard_loops;

#[cfg(test)]
mod tests;

pub use node::{DataNode, TableShardInfo};
