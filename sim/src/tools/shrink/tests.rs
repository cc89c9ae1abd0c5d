//! Unit tests of [`super`] (`shrink`).

use shardboot::types::NodeId;

use super::reductions::{default_options, smaller};
use super::*;
use crate::scenario::format::Action;
use crate::world::node_name::NodeName;

#[test]
fn smaller_counts_are_distinct_and_in_range() {
    assert_eq!(smaller(8, 1), [1, 4, 7]);
    assert_eq!(smaller(2, 1), [1]);
    assert!(smaller(1, 1).is_empty());
    assert_eq!(smaller(20, 0), [0, 10, 19]);
}

#[test]
fn dropping_a_node_renumbers_the_later_ones_and_drops_its_steps() {
    let rename = |n: NodeId| match n.0.cmp(&2) {
        std::cmp::Ordering::Less => Some(n),
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Greater => Some(NodeId(n.0 - 1)),
    };
    let replace = Action::ReplaceNode {
        old: NodeName(NodeId(1)),
        new: NodeName(NodeId(4)),
    };
    assert_eq!(
        replace.map_nodes(&rename),
        Some(Action::ReplaceNode {
            old: NodeName(NodeId(1)),
            new: NodeName(NodeId(3)),
        })
    );
    let retry = Action::Retry {
        node: NodeName(NodeId(2)),
    };
    assert_eq!(retry.map_nodes(&rename), None);
}

#[test]
fn each_option_set_is_tried_back_at_its_default_one_at_a_time() {
    let path = std::path::Path::new("../scenarios/default.toml");
    let mut s = Scenario::load(path).unwrap();
    s.options.session_ttl = Some(Duration::from_secs(30));
    s.options.ingest_interval = Some(Duration::from_secs(2));
    let seen = Violation {
        kind: crate::check::oracle::ViolationKind::DataLoss,
        node: None,
        shard: None,
        at: Default::default(),
        trace_index: None,
        detail: String::new(),
    };
    let tried = default_options(&s, &seen);
    let set = |c: &Scenario| (c.options.session_ttl, c.options.ingest_interval);
    assert_eq!(
        tried.iter().map(set).collect::<Vec<_>>(),
        [
            (None, Some(Duration::from_secs(2))),
            (Some(Duration::from_secs(30)), None)
        ]
    );
}
