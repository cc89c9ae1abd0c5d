//! Scripted fault steps: the faults a scenario's timeline names
//! (`do = "partition"`, `"clock_jump"`, ...), and how a run carries them
//! out. They bypass the [`super::atlas`]: a scenario may ask for any
//! fault, and states what it expects. Each is traced like a random fault,
//! with `source = "step"`.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shardboot::model::FileKey;
use shardboot::types::{NodeId, ShardId, TableShardId};

use super::atlas;
use crate::engine::duration;
use crate::engine::executor;
use crate::world::faults::{FaultKind, Partition};
use crate::world::node_name::NodeName;
use crate::world::state::WorldRef;

/// A fault step of a scenario (a kind of [`crate::scenario::format::Action`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultAction {
    /// Lose every message between `nodes` and `from` (default: every other
    /// host); `oneway`: only messages *to* `nodes`. Streams across it are
    /// cut. Lasts until `heal`.
    Partition {
        nodes: Vec<NodeName>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        from: Vec<NodeName>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        oneway: bool,
    },
    /// End every partition. (Unit variants would accept unknown fields:
    /// empty struct variants reject them.)
    Heal {},
    /// Break every open stream (keep-alive, raw data) to or from `node`.
    CutStreams { node: NodeName },
    /// Hold messages from `from` to `to` (none is lost) until
    /// `release_link`.
    HoldLink { from: NodeName, to: NodeName },
    /// Deliver what a `hold_link` held, and let messages flow again.
    ReleaseLink { from: NodeName, to: NodeName },
    /// `node`'s health check answers "not serving" for a while.
    Unhealthy {
        node: NodeName,
        #[serde(rename = "for", with = "duration")]
        lasting: Duration,
    },
    /// Flip a byte of one stored data file of `table`/`shard` on `node`.
    CorruptFile {
        node: NodeName,
        table: String,
        shard: u32,
    },
    /// The next sync of redo-log file `file` (named by the upstream offset
    /// of its first record) of `table`/`shard` on `node` fails: what was
    /// written to it stays in the page cache, not durable.
    FailRedoSync {
        node: NodeName,
        table: String,
        shard: u32,
        file: u64,
    },
    /// Move `node`'s clock by `by` (`"-2h"` goes back).
    ClockJump { node: NodeName, by: ClockShift },
    /// Every `mark_available` call fails for a while.
    MarkAvailableFails {
        #[serde(rename = "for", with = "duration")]
        lasting: Duration,
    },
    /// Stop random faults and end every fault, as the runner does before
    /// its liveness check ([`crate::world::faults::Faults::heal_all`]).
    HealAll {},
}

impl FaultAction {
    /// The `do = "..."` names of fault steps.
    pub const NAMES: [&'static str; 11] = [
        "partition",
        "heal",
        "cut_streams",
        "hold_link",
        "release_link",
        "unhealthy",
        "corrupt_file",
        "fail_redo_sync",
        "clock_jump",
        "mark_available_fails",
        "heal_all",
    ];

    /// The first field that does not fit a scenario with hosts `nodes`,
    /// tables `has_table` and `shards` shards: its name and what is wrong.
    pub fn check(
        &self,
        nodes: &[NodeId],
        has_table: impl Fn(&str) -> bool,
        shards: u32,
    ) -> Result<(), (&'static str, String)> {
        let known = |n: &NodeName, field: &'static str| {
            if nodes.contains(&n.0) {
                Ok(())
            } else {
                Err((
                    field,
                    format!(
                        "{} is not a node of this scenario (n1..n{})",
                        n.0,
                        nodes.len()
                    ),
                ))
            }
        };
        match self {
            FaultAction::Partition {
                nodes: side, from, ..
            } => {
                if side.is_empty() {
                    return Err(("nodes", "a partition needs at least one node".into()));
                }
                side.iter().try_for_each(|n| known(n, "nodes"))?;
                from.iter().try_for_each(|n| known(n, "from"))?;
                if let Some(n) = from.iter().find(|n| side.contains(n)) {
                    return Err(("from", format!("{} is on both sides", n.0)));
                }
                Ok(())
            }
            FaultAction::CutStreams { node }
            | FaultAction::Unhealthy { node, .. }
            | FaultAction::ClockJump { node, .. } => known(node, "node"),
            FaultAction::HoldLink { from, to } | FaultAction::ReleaseLink { from, to } => {
                known(from, "from")?;
                known(to, "to")?;
                if from == to {
                    return Err(("to", "a link joins two different nodes".into()));
                }
                Ok(())
            }
            FaultAction::CorruptFile { node, table, shard }
            | FaultAction::FailRedoSync {
                node, table, shard, ..
            } => {
                known(node, "node")?;
                if !has_table(table) {
                    return Err(("table", format!("no table `{table}` in this scenario")));
                }
                if *shard >= shards {
                    return Err((
                        "shard",
                        format!("shard {shard} is out of range (0..{shards})"),
                    ));
                }
                Ok(())
            }
            FaultAction::Heal {}
            | FaultAction::MarkAvailableFails { .. }
            | FaultAction::HealAll {} => Ok(()),
        }
    }

    /// The step with node ids renamed by `f` (`None`: a node it needs is
    /// gone, and so is the step). A partition keeps the nodes that remain.
    pub fn map_nodes(&self, f: &impl Fn(NodeId) -> Option<NodeId>) -> Option<FaultAction> {
        let m = |n: &NodeName| f(n.0).map(NodeName);
        let all = |ns: &[NodeName]| ns.iter().filter_map(m).collect::<Vec<_>>();
        Some(match self {
            FaultAction::Partition {
                nodes,
                from,
                oneway,
            } => {
                let nodes = all(nodes);
                if nodes.is_empty() {
                    return None;
                }
                FaultAction::Partition {
                    nodes,
                    from: all(from),
                    oneway: *oneway,
                }
            }
            FaultAction::CutStreams { node } => FaultAction::CutStreams { node: m(node)? },
            FaultAction::HoldLink { from, to } => FaultAction::HoldLink {
                from: m(from)?,
                to: m(to)?,
            },
            FaultAction::ReleaseLink { from, to } => FaultAction::ReleaseLink {
                from: m(from)?,
                to: m(to)?,
            },
            FaultAction::Unhealthy { node, lasting } => FaultAction::Unhealthy {
                node: m(node)?,
                lasting: *lasting,
            },
            FaultAction::CorruptFile { node, table, shard } => FaultAction::CorruptFile {
                node: m(node)?,
                table: table.clone(),
                shard: *shard,
            },
            FaultAction::FailRedoSync {
                node,
                table,
                shard,
                file,
            } => FaultAction::FailRedoSync {
                node: m(node)?,
                table: table.clone(),
                shard: *shard,
                file: *file,
            },
            FaultAction::ClockJump { node, by } => FaultAction::ClockJump {
                node: m(node)?,
                by: *by,
            },
            FaultAction::Heal {}
            | FaultAction::MarkAvailableFails { .. }
            | FaultAction::HealAll {} => self.clone(),
        })
    }
}

/// A signed clock change: `"2h"` (or `"+2h"`) forward, `"-2h"` back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockShift {
    pub forward: bool,
    pub by: Duration,
}

impl fmt::Display for ClockShift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.forward { "" } else { "-" };
        write!(f, "{sign}{}", duration::format(self.by))
    }
}

impl Serialize for ClockShift {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClockShift {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let t = s.trim();
        let (forward, rest) = match t.strip_prefix('-') {
            Some(rest) => (false, rest),
            None => (true, t.strip_prefix('+').unwrap_or(t)),
        };
        let by = duration::parse(rest).map_err(serde::de::Error::custom)?;
        Ok(ClockShift { forward, by })
    }
}

/// Carry out a fault step in `world` (inside the simulation).
pub fn apply(world: &WorldRef, action: &FaultAction) {
    let f = &world.faults;
    match action {
        FaultAction::Partition {
            nodes,
            from,
            oneway,
        } => {
            let side: BTreeSet<NodeId> = nodes.iter().map(|n| n.0).collect();
            let other: BTreeSet<NodeId> = if from.is_empty() {
                world
                    .hosts
                    .keys()
                    .copied()
                    .filter(|n| !side.contains(n))
                    .collect()
            } else {
                from.iter().map(|n| n.0).collect()
            };
            let p = Partition {
                nodes: side,
                other,
                oneway: *oneway,
            };
            let (nodes, other) = (p.nodes.clone(), p.other.clone());
            let (_, cut) = f.links.borrow_mut().partition(p);
            tracing::info!(target: "sim::fault", kind = "partition", source = "step",
                nodes = ?nodes, from = ?other, oneway, cut_streams = cut, "fault_injected");
        }
        FaultAction::Heal {} => {
            let healed = std::mem::take(&mut f.links.borrow_mut().partitions).len();
            tracing::info!(target: "sim::fault", kind = "partition", partitions = healed,
                "fault_healed");
        }
        FaultAction::CutStreams { node } => {
            let cut = f.cut_streams_of(node.0);
            tracing::info!(target: "sim::fault", kind = "stream_cut", source = "step",
                node = %node.0, streams = cut, "fault_injected");
        }
        FaultAction::HoldLink { from, to } => {
            f.links.borrow_mut().hold(from.0, to.0);
            tracing::info!(target: "sim::fault", kind = "hold_link", source = "step",
                from = %from.0, to = %to.0, "fault_injected");
        }
        FaultAction::ReleaseLink { from, to } => {
            let held = f.links.borrow_mut().release(from.0, to.0, None);
            tracing::info!(target: "sim::fault", kind = "hold_link", from = %from.0, to = %to.0,
                held, "fault_healed");
        }
        FaultAction::Unhealthy { node, lasting } => {
            f.set_unhealthy(node.0, executor::now() + *lasting);
            tracing::info!(target: "sim::fault", kind = "unhealthy", source = "step",
                node = %node.0, for_ms = lasting.as_millis() as u64, "fault_injected");
        }
        FaultAction::CorruptFile { node, table, shard } => {
            corrupt_table_shard(world, node.0, table, ShardId(*shard));
        }
        FaultAction::FailRedoSync {
            node,
            table,
            shard,
            file,
        } => {
            let key = FileKey::RedoLog {
                shard: TableShardId::new(table.as_str(), ShardId(*shard)),
                file: i64::try_from(*file).unwrap_or(i64::MAX),
            };
            tracing::info!(target: "sim::fault", kind = "disk_sync_fail", source = "step",
                node = %node.0, file = ?key, "fault_armed");
            world.hosts[&node.0].disk.fail_next_sync(key);
        }
        FaultAction::ClockJump { node, by } => {
            f.jump_clock(node.0, by.forward, by.by);
            tracing::info!(target: "sim::fault", kind = "clock_jump", source = "step",
                node = %node.0, by = %by, offset_ms = f.clock_offset_ms(node.0),
                "fault_injected");
        }
        FaultAction::MarkAvailableFails { lasting } => {
            f.placement_outage(*lasting);
            tracing::info!(target: "sim::fault", kind = "mark_available_fail", source = "step",
                for_ms = lasting.as_millis() as u64, "fault_injected");
        }
        FaultAction::HealAll {} => f.heal_all(),
    }
}

/// Corrupt one stored data file (vector party or snapshot) of `table`/`shard`
/// on `node`, picked by the corruption stream.
fn corrupt_table_shard(world: &WorldRef, node: NodeId, table: &str, shard: ShardId) {
    let f = &world.faults;
    let Some(host) = world.hosts.get(&node) else {
        return;
    };
    let files: Vec<FileKey> = host
        .disk
        .file_names()
        .into_iter()
        .filter(|k| {
            matches!(k, FileKey::VectorParty { .. } | FileKey::Snapshot { .. })
                && k.shard().table == table
                && k.shard().shard == shard
                && host.disk.contents(k).is_some_and(|c| !c.is_empty())
        })
        .collect();
    let picked = match files.len() {
        0 => None,
        n => Some(&files[f.draws.rng(FaultKind::Corruption).below(n as u64) as usize]),
    };
    if !picked.is_some_and(|key| f.corrupt(node, &host.disk, key, "step")) {
        tracing::info!(target: "sim::fault", kind = "corruption", source = "step",
            node = %node, reason = %atlas::Refusal::NothingToCorrupt, "fault_refused");
    }
}
