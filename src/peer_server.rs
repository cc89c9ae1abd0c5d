//! The peer-data server: the source side of a peer copy (docs/MODEL.md §4).
//!
//! A bootstrapping host opens a **session** for one table shard, keeps it
//! alive over a keep-alive stream, asks for the table shard's metadata and
//! streams the raw vector-party files. Background jobs of this host
//! (archiving, backfill, purge, snapshot) ask for a **token** before deleting
//! files, and are refused while a session for that table shard is open.
//!
//! The upstream races are reproduced behind switches: Q3 (a swept session's
//! bound stream is never ended), Q6 (uniqueness check and insert in two
//! critical sections), Q7 (broken sessions linger until `acquire_token`
//! reaps them), Q8 (metadata from separate reads), Q9 (tokens reserve
//! nothing).
//!
//! Deliberately not modelled: transport (the caller — the simulated network
//! or a test fake — turns these async calls into RPCs and streams), table
//! incarnations, and ownership checks of the requested shard (upstream has a
//! TODO there and accepts any shard of a known table).
//!
//! Layout, each file using only those listed before it: `server.rs` (the
//! state and the checks every request shares), `sessions.rs` (start,
//! validate, remove and sweep sessions), then one file per kind of request:
//! `keep_alive.rs`, `metadata.rs`, `raw_data.rs`, `tokens.rs`.

mod keep_alive;
mod metadata;
mod raw_data;
mod server;
mod sessions;
mod tokens;

#[cfg(test)]
mod tests;

pub use server::{PeerServer, SessionInfo};
