//! Unit tests of [`super`] (`oracle`).

use shardboot::types::{ShardId, TableKind};

use super::*;

fn ev(index: u64, node: u32, name: &str, fields: &[(&'static str, &str)]) -> TraceEvent {
    let mut event = TraceEvent::new(name, &[("table", "trips"), ("shard", "1")]);
    for (k, v) in fields {
        event.push_field(k, v);
    }
    event.index = index;
    event.node = Some(NodeId(node));
    event.target = "shardboot::table_shard";
    event
}

#[test]
fn a_second_concurrent_bootstrap_is_reported() {
    let mut o = Oracle::default();
    o.observe(&ev(0, 1, "bootstrap_started", &[]));
    o.observe(&ev(1, 1, "bootstrap_started", &[]));
    let v = o.violation().unwrap();
    assert_eq!(v.kind, ViolationKind::ConcurrentBootstrap);
    assert_eq!(v.trace_index, Some(1));
}

#[test]
fn finishing_without_starting_is_a_state_violation() {
    let mut o = Oracle::default();
    o.observe(&ev(0, 1, "bootstrap_finished", &[]));
    assert_eq!(o.violation().unwrap().kind, ViolationKind::BootstrapState);
}

#[test]
fn legal_transitions_pass() {
    let mut o = Oracle::default();
    for (i, name) in [
        "bootstrap_started",
        "bootstrap_failed",
        "bootstrap_started",
        "bootstrap_finished",
    ]
    .into_iter()
    .enumerate()
    {
        o.observe(&ev(i as u64, 1, name, &[]));
    }
    assert_eq!(o.violation(), None);
}

#[test]
fn sources_are_checked_against_the_snapshot() {
    let mut p = Placement::default();
    let r = p.shards.entry(ShardId(1)).or_default();
    r.insert(NodeId(1), ShardState::Initializing);
    r.insert(NodeId(2), ShardState::Available);
    r.insert(NodeId(3), ShardState::Initializing);
    let mut o = Oracle::default();
    o.placement_published(4, p);
    o.observe(&ev(
        0,
        1,
        "copy_sources_chosen",
        &[("sources", "[NodeId(2)]"), ("view", "4")],
    ));
    assert_eq!(o.violation(), None);
    o.observe(&ev(
        1,
        1,
        "copy_sources_chosen",
        &[("sources", "[NodeId(2), NodeId(3)]"), ("view", "4")],
    ));
    assert_eq!(o.violation().unwrap().kind, ViolationKind::BadSource);
    let mut o = Oracle::default();
    o.observe(&ev(
        0,
        1,
        "copy_sources_chosen",
        &[("sources", "[NodeId(1)]"), ("view", "4")],
    ));
    assert!(o.violation().unwrap().detail.contains("itself"));
}

#[test]
fn clearing_the_copy_flag_before_every_vector_party_is_written_is_reported() {
    let mut o = Oracle::default();
    o.observe(&ev(
        0,
        4,
        "peer_metadata_fetched",
        &[("vector_parties", "2")],
    ));
    o.observe(&ev(
        1,
        4,
        "vector_party_copied",
        &[("batch", "7"), ("column", "0")],
    ));
    o.observe(&ev(
        2,
        4,
        "vector_party_copied",
        &[("batch", "7"), ("column", "0")],
    ));
    o.observe(&ev(3, 4, "peer_copy_flag_cleared", &[]));
    let v = o.violation().unwrap();
    assert_eq!(v.kind, ViolationKind::PeerCopyFlagClearedEarly);
    assert!(v.detail.contains("1 of 2"), "{v}");
    let mut o = Oracle::default();
    o.observe(&ev(
        0,
        4,
        "peer_metadata_fetched",
        &[("vector_parties", "1")],
    ));
    o.observe(&ev(
        1,
        4,
        "vector_party_copied",
        &[("batch", "7"), ("column", "0")],
    ));
    o.observe(&ev(2, 4, "peer_copy_flag_cleared", &[]));
    assert_eq!(o.violation(), None);
}

#[test]
fn probe_events_become_violations_with_their_trace_index() {
    let mut o = Oracle::default();
    o.observe(&ev(
        9,
        2,
        "invariant_violated",
        &[
            ("violation", "file-deleted-under-session"),
            ("detail", "batch 3 col 1"),
        ],
    ));
    let v = o.violation().unwrap();
    assert_eq!(v.kind, ViolationKind::FileDeletedUnderSession);
    assert_eq!((v.node, v.trace_index), (Some(NodeId(2)), Some(9)));
    assert!(
        v.to_string()
            .starts_with("file-deleted-under-session: n2 trips/1 at")
    );
}

#[test]
fn a_restart_forgets_the_nodes_bootstrap_states() {
    let mut o = Oracle::default();
    o.observe(&ev(0, 1, "bootstrap_started", &[]));
    let mut restart = TraceEvent::new("node_restarted", &[("node", "n1")]);
    restart.index = 1;
    restart.node = Some(NodeId(1));
    o.observe(&restart);
    o.observe(&ev(2, 1, "bootstrap_started", &[]));
    assert_eq!(o.violation(), None);
}

#[test]
fn every_violation_name_round_trips() {
    for k in ViolationKind::ALL {
        assert_eq!(ViolationKind::from_name(k.name()), Some(k));
    }
}

/// A replica of `table` (of `kind`) on `node` for the end-state checks.
fn replica(node: u32, table: &str, kind: TableKind, shard: u32) -> ReplicaState {
    ReplicaState {
        node: NodeId(node),
        shard: TableShardId::new(table, ShardId(shard)),
        schema: shardboot::model::TableSchema {
            name: table.into(),
            kind,
            retention_days: 0,
            columns: Vec::new(),
        },
        bootstrapped: true,
        today: shardboot::types::Day(0),
        rows: shardboot::store::HeldRows::default(),
        meta: shardboot::model::ShardMeta::default(),
        details: shardboot::details::BootstrapDetails::new(),
    }
}

#[test]
fn a_table_shard_the_final_placement_does_not_place_is_reported_once_assigned() {
    // Shard 0 on n1 and n2; shard 1 on n2 only.
    let mut placement = Placement::default();
    placement.shards.insert(
        ShardId(0),
        [
            (NodeId(1), ShardState::Available),
            (NodeId(2), ShardState::Leaving),
        ]
        .into(),
    );
    placement
        .shards
        .insert(ShardId(1), [(NodeId(2), ShardState::Available)].into());
    let at = VirtualTime::ZERO;
    let held = vec![
        replica(1, "trips", TableKind::Fact, 0),
        replica(1, "cities", TableKind::Dimension, 0),
        replica(2, "trips", TableKind::Fact, 0),
        replica(2, "trips", TableKind::Fact, 1),
        replica(2, "cities", TableKind::Dimension, 0),
    ];
    let everyone: BTreeSet<NodeId> = [NodeId(1), NodeId(2), NodeId(3)].into();
    assert_eq!(stray_table_shard(&placement, &everyone, &held, at), None);

    // n1 kept trips/1 (never placed there) and n3 (no shard) a dimension table.
    let mut stray = held.clone();
    stray.push(replica(1, "trips", TableKind::Fact, 1));
    let v = stray_table_shard(&placement, &everyone, &stray, at).expect("reported");
    assert_eq!(v.kind, ViolationKind::Liveness);
    assert_eq!(v.node, Some(NodeId(1)));
    assert_eq!(v.shard, Some(TableShardId::new("trips", ShardId(1))));
    let dim = [replica(3, "cities", TableKind::Dimension, 0)];
    assert!(stray_table_shard(&placement, &everyone, &dim, at).is_some());

    // A host still assigning the final placement is not judged yet.
    let n2_only: BTreeSet<NodeId> = [NodeId(2)].into();
    assert_eq!(stray_table_shard(&placement, &n2_only, &stray, at), None);
}

#[test]
fn details_that_contradict_a_finished_bootstrap_are_reported() {
    use shardboot::details::Stage;
    use shardboot::types::{BatchId, ColumnId, Timestamp};
    let mut r = replica(1, "trips", TableKind::Fact, 0);
    r.today = shardboot::types::Day(20_000);
    let noon = Timestamp(20_000 * Timestamp::MILLIS_PER_DAY + 43_200_000);
    r.details.set_num_columns(1);
    r.details
        .add_vector_party_to_copy(BatchId(19_999), ColumnId(0));
    r.details
        .mark_vector_party_finished(BatchId(19_999), ColumnId(0));
    r.details.set_stage(Stage::Finished, noon);
    assert_eq!(end_state::misreported(&r), None);

    let mut stale = r.clone();
    stale.details.set_stage(Stage::Recovery, noon);
    let mut epoch = r.clone();
    epoch.details.set_stage(Stage::Finished, Timestamp(0));
    let mut owed = r.clone();
    owed.details
        .add_vector_party_to_copy(BatchId(20_000), ColumnId(0));
    for bad in [stale, epoch, owed] {
        assert!(end_state::misreported(&bad).is_some(), "{:?}", bad.details);
    }
}

#[test]
fn only_the_eventually_invariants_are_liveness() {
    let liveness: Vec<&str> = ViolationKind::ALL
        .into_iter()
        .filter(|k| !k.is_safety())
        .map(ViolationKind::name)
        .collect();
    assert_eq!(liveness, ["jobs-stalled", "liveness"]);
}

#[test]
fn a_closed_or_missing_peer_slot_and_a_lost_request_are_reported() {
    let mut placement = Placement::default();
    placement.shards.insert(
        ShardId(0),
        [
            (NodeId(1), ShardState::Available),
            (NodeId(2), ShardState::Initializing),
        ]
        .into(),
    );
    let sound = HostState {
        node: NodeId(2),
        assigned: true,
        known: [NodeId(1), NodeId(2)].into(),
        closed: BTreeSet::new(),
        running: false,
        pending: false,
    };
    let at = VirtualTime::ZERO;
    assert_eq!(
        hosts::check_hosts(&placement, std::slice::from_ref(&sound), at),
        None
    );
    // A slot closed for a host that has left the placement is not judged.
    let mut gone = sound.clone();
    gone.closed = [NodeId(3)].into();
    assert_eq!(hosts::check_hosts(&placement, &[gone], at), None);

    let mut closed = sound.clone();
    closed.closed = [NodeId(1)].into();
    let mut missing = sound.clone();
    missing.known = [NodeId(2)].into();
    let mut extra = sound.clone();
    extra.known.insert(NodeId(3));
    for bad in [closed, missing, extra] {
        let v = hosts::check_hosts(&placement, std::slice::from_ref(&bad), at).expect("reported");
        assert_eq!(
            (v.kind, v.node),
            (ViolationKind::PeerConnections, Some(NodeId(2))),
            "{bad:?}"
        );
        // A host still assigning the final placement is not judged on it.
        let early = HostState {
            assigned: false,
            ..bad
        };
        assert_eq!(hosts::check_hosts(&placement, &[early], at), None);
    }

    let lost = HostState {
        pending: true,
        assigned: false,
        ..sound.clone()
    };
    let v = hosts::check_hosts(&placement, &[lost], at).expect("reported");
    assert_eq!(v.kind, ViolationKind::Liveness);
    let waiting = HostState {
        pending: true,
        running: true,
        ..sound
    };
    assert_eq!(hosts::check_hosts(&placement, &[waiting], at), None);
}
