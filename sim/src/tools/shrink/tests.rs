//! Unit tests of [`super`] (`shrink`).

use shardboot::types::NodeId;

use super::reductions::{cut_duration, default_options, smaller};
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

#[test]
fn a_liveness_failure_with_a_liveness_phase_is_tried_healed_earlier_with_as_long_to_converge() {
    let path = std::path::Path::new("../scenarios/faulty-replace.toml");
    let s = Scenario::load(path).unwrap();
    let heal = s.liveness.unwrap();
    let last = s.steps.iter().map(|st| st.get_ref().at).max().unwrap();
    let seen = Violation {
        kind: crate::check::oracle::ViolationKind::Liveness,
        node: None,
        shard: None,
        at: Default::default(),
        trace_index: None,
        detail: String::new(),
    };
    let tried = cut_duration(&s, &seen);
    assert_eq!(tried.len(), 1);
    let c = &tried[0];
    let new_heal = c.liveness.as_ref().unwrap().heal_at;
    assert!(new_heal >= last && new_heal < heal.heal_at, "{new_heal:?}");
    assert_eq!(c.duration - new_heal, s.duration - heal.heal_at);
    assert_eq!(c.steps, s.steps);
    // Without a liveness phase a liveness failure keeps its length.
    let mut plain = s.clone();
    plain.liveness = None;
    assert!(cut_duration(&plain, &seen).is_empty());
}
