//! Steps of a scenario's timeline: an operator or fault [`Action`] at a
//! virtual time, and their TOML form (`at` next to the action's fields).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shardboot::types::NodeId;

use crate::engine::duration;
use crate::faults::steps::FaultAction;
use crate::world::node_name::NodeName;

/// An operator action at a virtual time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// When, from the start of the run.
    pub at: Duration,
    /// What happens then.
    pub action: Action,
}

/// By hand, as the action's fields next to `at` (a fault step's own).
impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut table = match &self.action {
            Action::Fault(f) => toml::Table::try_from(f),
            other => toml::Table::try_from(other),
        }
        .map_err(S::Error::custom)?;
        table.insert("at".into(), duration::format(self.at).into());
        table.serialize(s)
    }
}

/// By hand: serde's `flatten` cannot reject unknown fields, so `at` is taken
/// out first and the rest must be exactly one [`Action`] (a fault step is
/// told apart by its `do`).
impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let at = table
            .remove("at")
            .ok_or_else(|| D::Error::missing_field("at"))?;
        let at = at
            .as_str()
            .ok_or_else(|| D::Error::custom("`at` must be a duration such as \"10m\""))
            .and_then(|s| duration::parse(s).map_err(D::Error::custom))?;
        let fault = table
            .get("do")
            .and_then(toml::Value::as_str)
            .is_some_and(|d| FaultAction::NAMES.contains(&d));
        let value = toml::Value::Table(table);
        let action = if fault {
            FaultAction::deserialize(value).map(Action::Fault)
        } else {
            Action::deserialize(value)
        }
        .map_err(|e| D::Error::custom(e.message()))?;
        Ok(Step { at, action })
    }
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Add a host (a spare) to the placement.
    AddNode {
        /// The spare host that joins.
        node: NodeName,
    },
    /// Take a host out of the placement.
    RemoveNode {
        /// The host that leaves.
        node: NodeName,
    },
    /// Move every replica of `old` to the spare `new`.
    ReplaceNode {
        /// The host whose replicas move.
        old: NodeName,
        /// The spare that takes them.
        new: NodeName,
    },
    /// Raise the replication factor.
    RaiseReplicas {
        /// The new replication factor.
        replicas: usize,
    },
    /// Ask a node for a manual bootstrap retry.
    Retry {
        /// The node asked to retry.
        node: NodeName,
    },
    /// Start a second bootstrap of a table shard on `node` as soon as one is
    /// running there, and check that it is refused and changes nothing.
    BootstrapAgain {
        /// The node running the first bootstrap.
        node: NodeName,
        /// The table of the table shard.
        table: String,
        /// The shard of the table shard.
        shard: u32,
    },
    /// A fault step (`partition`, `clock_jump`, ...: see `FaultAction`).
    #[serde(skip)]
    Fault(FaultAction),
    /// Crash a host's process; it restarts on its own disk after
    /// `restart_after` (see `crate::world::lifecycle`).
    Crash {
        /// The host that crashes.
        node: NodeName,
        /// When its process starts again.
        #[serde(with = "duration")]
        restart_after: Duration,
    },
    /// Stall a host's process (a GC pause) `for` this long.
    Pause {
        /// The host that stalls.
        node: NodeName,
        /// How long (`for` in the file).
        #[serde(rename = "for", with = "duration")]
        duration: Duration,
    },
    /// Restart a host's process at once on an erased disk.
    RestartEmpty {
        /// The host that restarts.
        node: NodeName,
    },
    /// Restart a host's process at once on a copy of `from`'s disk.
    RestartWithDiskOf {
        /// The host that restarts.
        node: NodeName,
        /// The host whose disk it gets a copy of.
        from: NodeName,
    },
}

impl Action {
    /// The action with node ids renamed by `f` (`None`: the node is gone, and so
    /// is the step).
    pub fn map_nodes(&self, f: &impl Fn(NodeId) -> Option<NodeId>) -> Option<Action> {
        let m = |n: &NodeName| f(n.0).map(NodeName);
        Some(match self {
            Action::AddNode { node } => Action::AddNode { node: m(node)? },
            Action::RemoveNode { node } => Action::RemoveNode { node: m(node)? },
            Action::Retry { node } => Action::Retry { node: m(node)? },
            Action::ReplaceNode { old, new } => Action::ReplaceNode {
                old: m(old)?,
                new: m(new)?,
            },
            Action::BootstrapAgain { node, table, shard } => Action::BootstrapAgain {
                node: m(node)?,
                table: table.clone(),
                shard: *shard,
            },
            Action::RaiseReplicas { replicas } => Action::RaiseReplicas {
                replicas: *replicas,
            },
            Action::Fault(step) => Action::Fault(step.map_nodes(f)?),
            Action::Crash {
                node,
                restart_after,
            } => Action::Crash {
                node: m(node)?,
                restart_after: *restart_after,
            },
            Action::Pause { node, duration } => Action::Pause {
                node: m(node)?,
                duration: *duration,
            },
            Action::RestartEmpty { node } => Action::RestartEmpty { node: m(node)? },
            Action::RestartWithDiskOf { node, from } => Action::RestartWithDiskOf {
                node: m(node)?,
                from: m(from)?,
            },
        })
    }
}
