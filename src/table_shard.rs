//! One table shard on one host and its bootstrap (docs/MODEL.md §2, upstream
//! `memstore/bootstrap.go`, `TableShard.Bootstrap`).
//!
//! Layout, each file using only those listed before it:
//! - `shard.rs`: [`TableShard`] (identity, schema, [`BootstrapState`],
//!   progress details, data);
//! - `keep_alive.rs`: the client side of a copy session's keep-alive;
//! - `workers.rs`: the vector-party copy workers;
//! - `copy.rs`: the peer copy from one host
//!   ([`TableShard::fetch_data_from_peer`]: session, metadata, workers);
//! - `bootstrap.rs`: [`TableShard::bootstrap`], the eight steps of
//!   docs/MODEL.md §2, choosing the copy sources and falling over between
//!   them.
//!
//! Upstream quirks reproduced behind switches: Q1, Q2 and Q12 in the
//! bootstrap, and on the client side of the copy Q3, Q4, Q5, Q7 and Q10.

mod bootstrap;
mod copy;
mod keep_alive;
mod shard;
mod workers;

#[cfg(test)]
mod tests;

pub use bootstrap::BootstrapError;
pub use copy::CopyError;
pub use keep_alive::KeepAliveFailure;
pub use shard::{BootstrapState, TableShard};
pub use workers::{VectorPartyError, VectorPartyFailure};
