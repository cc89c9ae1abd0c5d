//! The cluster as a host sees it: which host holds which shard in which state
//! (the placement), and the table schemas. A new version of either is a new
//! [`ClusterView`] that hosts watch.

use std::collections::BTreeMap;

use crate::model::TableSchema;
use crate::types::{NodeId, ShardId, ShardState, TableName};

/// Replicas of every shard: host → state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub shards: BTreeMap<ShardId, BTreeMap<NodeId, ShardState>>,
}

impl Placement {
    /// The shards `node` holds, with their state there.
    pub fn shards_of(&self, node: NodeId) -> BTreeMap<ShardId, ShardState> {
        self.shards
            .iter()
            .filter_map(|(shard, replicas)| replicas.get(&node).map(|s| (*shard, *s)))
            .collect()
    }

    /// Every host that holds at least one replica.
    pub fn hosts(&self) -> std::collections::BTreeSet<NodeId> {
        self.shards
            .values()
            .flat_map(|replicas| replicas.keys().copied())
            .collect()
    }

    pub fn contains_host(&self, node: NodeId) -> bool {
        self.shards.values().any(|r| r.contains_key(&node))
    }

    /// The state of `node`'s replica of `shard`, if it has one.
    pub fn state(&self, shard: ShardId, node: NodeId) -> Option<ShardState> {
        self.shards.get(&shard)?.get(&node).copied()
    }
}

/// One version of the cluster's placement and schema.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Increases with every change of placement or schema.
    pub version: u64,
    pub placement: Placement,
    pub tables: BTreeMap<TableName, TableSchema>,
}
