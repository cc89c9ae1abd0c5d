//! The trace events the oracle follows, parsed: per table shard its
//! bootstrap stage and the peer copy in progress.

use std::collections::BTreeSet;

use shardboot::types::{NodeId, ShardId, TableShardId};

use crate::engine::trace::TraceEvent;

/// Bootstrap state of one table shard as the oracle tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tracked {
    NotStarted,
    Bootstrapping,
    Bootstrapped,
}

/// What the oracle knows of the peer copy in progress on one table shard.
#[derive(Clone, Debug, Default)]
pub(super) struct CopyProgress {
    /// Vector parties the copy's plan lists (from `peer_metadata_fetched`).
    pub(super) planned: usize,
    /// Distinct (batch, column) written and synced since the plan.
    pub(super) done: BTreeSet<(String, String)>,
}

/// The events of one table shard the oracle checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ShardEvent {
    BootstrapStarted,
    BootstrapFinished,
    BootstrapFailed,
    TableShardRemoved,
    CopySourcesChosen,
    PeerMetadataFetched,
    VectorPartyCopied,
    PeerCopyFlagCleared,
}

impl ShardEvent {
    pub(super) fn from_name(name: &str) -> Option<ShardEvent> {
        Some(match name {
            "bootstrap_started" => ShardEvent::BootstrapStarted,
            "bootstrap_finished" => ShardEvent::BootstrapFinished,
            "bootstrap_failed" => ShardEvent::BootstrapFailed,
            "table_shard_removed" => ShardEvent::TableShardRemoved,
            "copy_sources_chosen" => ShardEvent::CopySourcesChosen,
            "peer_metadata_fetched" => ShardEvent::PeerMetadataFetched,
            "vector_party_copied" => ShardEvent::VectorPartyCopied,
            "peer_copy_flag_cleared" => ShardEvent::PeerCopyFlagCleared,
            _ => return None,
        })
    }
}

pub(super) fn event_shard(ev: &TraceEvent) -> Option<TableShardId> {
    let table = ev.field("table")?;
    let shard = ev.field("shard")?.parse().ok()?;
    Some(TableShardId::new(table, ShardId(shard)))
}

/// Parse `n3`.
pub(super) fn parse_node(s: &str) -> Option<NodeId> {
    s.strip_prefix('n')?.parse().ok().map(NodeId)
}

/// Every number in `s`: `[NodeId(2), NodeId(3)]` → 2, 3; `s14` → 14.
pub(super) fn parse_numbers(s: &str) -> Vec<u32> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// Parse `[NodeId(2), NodeId(3)]`-style or `[n2, n3]`-style host lists.
pub(super) fn parse_hosts(s: &str) -> Vec<NodeId> {
    parse_numbers(s).into_iter().map(NodeId).collect()
}
