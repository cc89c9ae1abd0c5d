//! A node name as written in scenario files and fault steps: `n1`, `n2`, ...

use serde::{Deserialize, Serialize};
use shardboot::types::NodeId;

/// A node name as written in a scenario: `n1`, `n2`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeName(pub NodeId);

impl Serialize for NodeName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NodeName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.strip_prefix('n')
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| *n > 0)
            .map(|n| NodeName(NodeId(n)))
            .ok_or_else(|| {
                serde::de::Error::custom(format!("`{s}` is not a node name (expected n1, n2, ...)"))
            })
    }
}
