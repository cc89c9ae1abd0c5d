//! The fault atlas: which *random* faults a run may take and still recover.
//! A random fault the atlas refuses is not injected; the refusal is traced
//! (`fault_refused` with the reason) so a run shows what it skipped and why.
//! Scripted fault steps bypass the atlas: a scenario may ask for any fault,
//! and then states what it expects.
//!
//! The rules, each a function below:
//! - [`copies_keep_a_source`]: partitions and unhealthy peers never cut an
//!   `Initializing` replica off from every replica that holds its shard's
//!   data, so a copy can always make progress somewhere.
//! - [`partition_allowed`], [`hold_allowed`]: at most `max_partitions`
//!   random partitions and `max_holds` held links at once.
//! - [`corruption_allowed`]: a file is corrupted only where it can be
//!   repaired: on a `Leaving` replica (it leaves the placement, the
//!   corruption with it), only when disks keep checksums (so a copy from it
//!   fails and falls over instead of spreading the damage), and only while
//!   another intact replica holds the shard's data.
//! - [`clock_jump_allowed`]: a jump never takes a clock further than
//!   `max_offset` from true time.
//! - [`disk_loss_allowed`]: a host loses its disk (`restart_empty`,
//!   `restart_with_disk_of`) only while every fact table shard whose data
//!   it holds as an `Available` or `Leaving` replica is held by another
//!   such replica too: losing every copy at once is beyond any bootstrap.
//!
//! What the atlas does not promise: recovery *during* faults (a copy may
//! still fail many times); it only keeps a way open, and
//! [`crate::world::faults::Faults::heal_all`] ends everything for the liveness check.
//! It judges by the placement at the time of the fault; a later transition
//! may still meet a partition until it ends.

use std::collections::BTreeSet;
use std::time::Duration;

use shardboot::placement::ClusterView;
use shardboot::placement::Placement;
use shardboot::types::{NodeId, ShardId, ShardState, TableShardId};
use thiserror::Error;

use crate::engine::duration;
use crate::world::faults::Partition;
use crate::world::topology::served_table_shards;

/// Why the atlas refused a random fault.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("{active} partitions already (at most {max})")]
    TooManyPartitions { active: usize, max: u32 },
    #[error("{active} held links already (at most {max})")]
    TooManyHolds { active: usize, max: u32 },
    #[error("shard {shard}: the Initializing replica on {node} would reach no healthy source")]
    CopyCutOff { shard: ShardId, node: NodeId },
    #[error("checksums are off: a corrupted source would be copied silently")]
    NoChecksums,
    #[error("{node}'s replica of shard {shard} is {state}: it would never be repaired")]
    NotLeaving {
        node: NodeId,
        shard: ShardId,
        state: String,
    },
    #[error("shard {shard} would have no intact replica left")]
    LastIntactReplica { shard: ShardId },
    #[error("{shard}: {node} holds the only serving copy of its data")]
    LastHolder { shard: TableShardId, node: NodeId },
    #[error("no stored data file to corrupt")]
    NothingToCorrupt,
    #[error("{node}'s clock would be {} off true time (at most {})", duration::format(*.offset), duration::format(*.max))]
    ClockTooFar {
        node: NodeId,
        offset: Duration,
        max: Duration,
    },
}

/// Every `Initializing` replica keeps at least one source it can copy
/// from: a replica of the same shard on another host that is `Available`
/// or `Leaving`, healthy, and connected to it both ways across every
/// partition. A shard with no such replica at all (a brand-new placement)
/// has nothing to protect.
pub fn copies_keep_a_source(
    placement: &Placement,
    partitions: &[&Partition],
    unhealthy: &BTreeSet<NodeId>,
) -> Result<(), Refusal> {
    let connected = |a: NodeId, b: NodeId| !partitions.iter().any(|p| p.crosses(a, b));
    for (shard, replicas) in &placement.shards {
        let holders: Vec<NodeId> = replicas
            .iter()
            .filter(|(_, s)| matches!(s, ShardState::Available | ShardState::Leaving))
            .map(|(n, _)| *n)
            .collect();
        for (node, state) in replicas {
            if *state != ShardState::Initializing {
                continue;
            }
            let candidates: Vec<NodeId> = holders.iter().copied().filter(|h| h != node).collect();
            let reachable = candidates
                .iter()
                .any(|h| !unhealthy.contains(h) && connected(*node, *h));
            if !candidates.is_empty() && !reachable {
                return Err(Refusal::CopyCutOff {
                    shard: *shard,
                    node: *node,
                });
            }
        }
    }
    Ok(())
}

/// A new random partition: within the bound, and copies keep a source.
pub fn partition_allowed(
    placement: &Placement,
    active: &[&Partition],
    new: &Partition,
    unhealthy: &BTreeSet<NodeId>,
    max: u32,
) -> Result<(), Refusal> {
    if active.len() >= max as usize {
        return Err(Refusal::TooManyPartitions {
            active: active.len(),
            max,
        });
    }
    let mut all = active.to_vec();
    all.push(new);
    copies_keep_a_source(placement, &all, unhealthy)
}

/// A new random hold: within the bound (holds lose nothing and end by
/// themselves, so their number is all that is bounded).
pub fn hold_allowed(active: usize, max: u32) -> Result<(), Refusal> {
    if active >= max as usize {
        return Err(Refusal::TooManyHolds { active, max });
    }
    Ok(())
}

/// A random corruption of `node`'s replica of `shard`: only with checksums,
/// only on a `Leaving` replica, and only while another replica (not yet
/// corrupted) holds the shard's data.
pub fn corruption_allowed(
    placement: &Placement,
    corrupted: &BTreeSet<(NodeId, ShardId)>,
    checksums: bool,
    node: NodeId,
    shard: ShardId,
) -> Result<(), Refusal> {
    if !checksums {
        return Err(Refusal::NoChecksums);
    }
    match placement.state(shard, node) {
        Some(ShardState::Leaving) => {}
        other => {
            return Err(Refusal::NotLeaving {
                node,
                shard,
                state: other.map_or("not in the placement".into(), |s| s.to_string()),
            });
        }
    }
    let intact_elsewhere = placement.shards.get(&shard).is_some_and(|r| {
        r.iter().any(|(n, s)| {
            *n != node
                && matches!(s, ShardState::Available | ShardState::Leaving)
                && !corrupted.contains(&(*n, shard))
        })
    });
    if !intact_elsewhere {
        return Err(Refusal::LastIntactReplica { shard });
    }
    Ok(())
}

/// A random loss of `node`'s disk (erased, or replaced by another host's
/// image): refused while `node` is the only `Available` or `Leaving`
/// replica that holds some table shard's data (a fact table's shard, or a
/// dimension table through shard 0, [`served_table_shards`]). `holds(n,
/// id)` says whether host `n`'s disk holds data of `id` (the oracle's own
/// test: a durable commit offset past zero). Two hosts that lose their
/// disks one after the other are judged each at its own time, so the
/// second is refused while the first has not recovered its data.
pub fn disk_loss_allowed(
    view: &ClusterView,
    node: NodeId,
    holds: impl Fn(NodeId, &TableShardId) -> bool,
) -> Result<(), Refusal> {
    let serving = |s: &ShardState| matches!(s, ShardState::Available | ShardState::Leaving);
    for (shard, replicas) in &view.placement.shards {
        if !replicas.get(&node).is_some_and(serving) {
            continue;
        }
        for id in served_table_shards(view, *shard) {
            if !holds(node, &id) {
                continue;
            }
            let elsewhere = replicas
                .iter()
                .any(|(n, s)| *n != node && serving(s) && holds(*n, &id));
            if !elsewhere {
                return Err(Refusal::LastHolder { shard: id, node });
            }
        }
    }
    Ok(())
}

/// A random clock jump that leaves `node`'s clock `offset_after_ms` off
/// true time.
pub fn clock_jump_allowed(
    node: NodeId,
    offset_after_ms: i64,
    max: Duration,
) -> Result<(), Refusal> {
    let offset = Duration::from_millis(offset_after_ms.unsigned_abs());
    if offset > max {
        return Err(Refusal::ClockTooFar { node, offset, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use shardboot::types::TableKind;

    use super::*;

    const N1: NodeId = NodeId(1);
    const N2: NodeId = NodeId(2);
    const N3: NodeId = NodeId(3);
    const N4: NodeId = NodeId(4);

    /// Shard 0 on n1 (Leaving), n2 (Available), n4 (Initializing).
    fn replacing() -> Placement {
        let mut p = Placement::default();
        let r = p.shards.entry(ShardId(0)).or_default();
        r.insert(N1, ShardState::Leaving);
        r.insert(N2, ShardState::Available);
        r.insert(N4, ShardState::Initializing);
        p
    }

    fn cut(nodes: &[NodeId], other: &[NodeId]) -> Partition {
        Partition {
            nodes: nodes.iter().copied().collect(),
            other: other.iter().copied().collect(),
            oneway: false,
        }
    }

    #[test]
    fn a_partition_may_cut_one_source_but_not_every_source_of_a_copy() {
        let p = replacing();
        let none = BTreeSet::new();
        let one = cut(&[N1], &[N2, N3, N4]);
        assert_eq!(partition_allowed(&p, &[], &one, &none, 2), Ok(()));
        let both = cut(&[N4], &[N1, N2, N3]);
        assert_eq!(
            partition_allowed(&p, &[], &both, &none, 2),
            Err(Refusal::CopyCutOff {
                shard: ShardId(0),
                node: N4
            })
        );
        let second = cut(&[N2], &[N1, N3, N4]);
        assert!(partition_allowed(&p, &[&one], &second, &none, 2).is_err());
        assert_eq!(
            partition_allowed(&p, &[&one], &second, &none, 1),
            Err(Refusal::TooManyPartitions { active: 1, max: 1 })
        );
    }

    #[test]
    fn an_unhealthy_peer_counts_as_no_source() {
        let p = replacing();
        let n2_sick: BTreeSet<NodeId> = [N2].into();
        let one = cut(&[N1], &[N2, N3, N4]);
        assert!(partition_allowed(&p, &[], &one, &n2_sick, 2).is_err());
        assert_eq!(copies_keep_a_source(&p, &[], &n2_sick), Ok(()));
        let both: BTreeSet<NodeId> = [N1, N2].into();
        assert!(copies_keep_a_source(&p, &[], &both).is_err());
    }

    #[test]
    fn a_new_placement_has_no_source_to_protect() {
        let mut p = Placement::default();
        p.shards
            .entry(ShardId(0))
            .or_default()
            .insert(N1, ShardState::Initializing);
        let all = cut(&[N1], &[N2, N3]);
        assert_eq!(copies_keep_a_source(&p, &[&all], &[N2].into()), Ok(()));
    }

    #[test]
    fn corruption_only_on_a_leaving_replica_with_checksums_and_an_intact_peer() {
        let p = replacing();
        let none = BTreeSet::new();
        assert_eq!(corruption_allowed(&p, &none, true, N1, ShardId(0)), Ok(()));
        assert_eq!(
            corruption_allowed(&p, &none, false, N1, ShardId(0)),
            Err(Refusal::NoChecksums)
        );
        assert!(matches!(
            corruption_allowed(&p, &none, true, N2, ShardId(0)),
            Err(Refusal::NotLeaving { .. })
        ));
        let n2_bad: BTreeSet<(NodeId, ShardId)> = [(N2, ShardId(0))].into();
        assert_eq!(
            corruption_allowed(&p, &n2_bad, true, N1, ShardId(0)),
            Err(Refusal::LastIntactReplica { shard: ShardId(0) })
        );
    }

    #[test]
    fn clock_jumps_stay_within_the_offset_bound() {
        let max = Duration::from_secs(3600);
        assert_eq!(clock_jump_allowed(N1, -3_600_000, max), Ok(()));
        assert_eq!(
            clock_jump_allowed(N1, -3_600_001, max),
            Err(Refusal::ClockTooFar {
                node: N1,
                offset: Duration::from_millis(3_600_001),
                max
            })
        );
    }

    #[test]
    fn a_disk_is_lost_only_while_another_serving_replica_holds_its_data() {
        let table = |name: &str, kind| shardboot::model::TableSchema {
            name: name.into(),
            kind,
            retention_days: 0,
            columns: Vec::new(),
        };
        let view = ClusterView {
            version: 1,
            placement: replacing(),
            tables: [
                table("trips", TableKind::Fact),
                table("cities", TableKind::Dimension),
            ]
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect(),
        };
        let trips = TableShardId::new("trips", ShardId(0));
        // n1 (Leaving) and n2 (Available) both hold trips/0.
        let both = |n: NodeId, id: &TableShardId| id == &trips && (n == N1 || n == N2);
        assert_eq!(disk_loss_allowed(&view, N1, both), Ok(()));
        assert_eq!(disk_loss_allowed(&view, N2, both), Ok(()));
        // Once n1's disk is gone, n2 holds the only serving copy; n4 is
        // Initializing and n3 holds no replica, so they may lose theirs.
        let n2_only = |n: NodeId, id: &TableShardId| id == &trips && n == N2;
        assert_eq!(
            disk_loss_allowed(&view, N2, n2_only),
            Err(Refusal::LastHolder {
                shard: trips.clone(),
                node: N2
            })
        );
        assert_eq!(disk_loss_allowed(&view, N1, n2_only), Ok(()));
        let all = |_: NodeId, _: &TableShardId| true;
        assert_eq!(disk_loss_allowed(&view, N4, n2_only), Ok(()));
        assert_eq!(disk_loss_allowed(&view, N3, all), Ok(()));
        // A copy of the data on an Initializing replica does not count.
        let n2_n4 = |n: NodeId, id: &TableShardId| id == &trips && (n == N2 || n == N4);
        assert!(disk_loss_allowed(&view, N2, n2_n4).is_err());
        // A dimension table counts through shard 0, which it is copied from.
        let cities = TableShardId::new("cities", ShardId(0));
        let n2_cities = |n: NodeId, id: &TableShardId| id == &cities && n == N2;
        assert_eq!(
            disk_loss_allowed(&view, N2, n2_cities),
            Err(Refusal::LastHolder {
                shard: cities,
                node: N2
            })
        );
    }

    #[test]
    fn holds_are_bounded() {
        assert_eq!(hold_allowed(0, 1), Ok(()));
        assert_eq!(
            hold_allowed(1, 1),
            Err(Refusal::TooManyHolds { active: 1, max: 1 })
        );
    }
}
