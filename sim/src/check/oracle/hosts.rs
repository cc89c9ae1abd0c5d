//! The end-state check of each host's own bookkeeping: its peer
//! connections and its bootstrap manager, read from the node's state (not
//! from what it traced).

use std::collections::BTreeSet;

use shardboot::placement::Placement;
use shardboot::types::NodeId;

use crate::engine::time::VirtualTime;

use super::{Violation, ViolationKind};

/// One host's process at the end of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostState {
    pub node: NodeId,
    /// Whether the process has finished assigning the final placement.
    pub assigned: bool,
    /// The hosts its peer source knows (one slot per placed host).
    pub known: BTreeSet<NodeId>,
    /// The known hosts whose connection was closed while they stayed known.
    pub closed: BTreeSet<NodeId>,
    /// Its bootstrap manager: a bootstrap is running now.
    pub running: bool,
    /// Its bootstrap manager: a request waits for a next pass.
    pub pending: bool,
}

/// The first host whose bookkeeping contradicts itself or the placement:
///
/// - a request waiting with no bootstrap running to serve it is lost (the
///   placement change that made it would never be acted upon): liveness;
/// - a host that assigned the final placement must know exactly its hosts
///   and keep none of their connections closed: a closed slot is never
///   dialled again, so the shards only that host holds can never be copied
///   (docs/MODEL.md §7 "Peer connections").
pub(super) fn check_hosts(
    placement: &Placement,
    hosts: &[HostState],
    at: VirtualTime,
) -> Option<Violation> {
    let violation = |kind, node, detail: String| Violation {
        kind,
        node: Some(node),
        shard: None,
        at,
        trace_index: None,
        detail,
    };
    // The oracle's own reading of the placement, not the port's helper.
    let placed: BTreeSet<NodeId> = placement
        .shards
        .values()
        .flat_map(|replicas| replicas.keys().copied())
        .collect();
    hosts.iter().find_map(|h| {
        if h.pending && !h.running {
            return Some(violation(
                ViolationKind::Liveness,
                h.node,
                "a bootstrap request waits, but no bootstrap is running to serve it".into(),
            ));
        }
        if !h.assigned {
            return None;
        }
        if let Some(closed) = h.closed.iter().find(|n| placed.contains(n)) {
            return Some(violation(
                ViolationKind::PeerConnections,
                h.node,
                format!("its connection to {closed}, which the placement still places, is closed for good"),
            ));
        }
        (h.known != placed).then(|| {
            let show = |s: &BTreeSet<NodeId>| {
                s.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
            };
            violation(
                ViolationKind::PeerConnections,
                h.node,
                format!(
                    "its peer source knows hosts [{}], the placement places [{}]",
                    show(&h.known),
                    show(&placed)
                ),
            )
        })
    })
}
