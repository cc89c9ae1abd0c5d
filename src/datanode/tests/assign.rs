//! Assigning the shard set on every new view, and restart.

use super::*;

// ------------------------------------------------------ assign shard set ---

#[test]
fn added_initializing_shard_is_purged_first_and_needs_peer_copy() {
    let mut w = world(&[fact("f")], &[(1, &[(N1, Initializing), (N2, Available)])]);
    let env = w.host(N1);
    env.metastore().set(id("f", 1), stale_meta());
    env.disk().put(stray_file(&id("f", 1)), vec![1; 16]);
    // N2 does not serve: the copy fails and the flag stays visible.
    let dn = start(&mut w, q(&[Quirk::Q14]));
    run_for(&mut w, Duration::from_secs(1));
    let ts = dn.table_shard(&id("f", 1)).expect("added");
    assert!(ts.needs_peer_copy());
    assert_eq!(ts.state(), BootstrapState::NotStarted);
    assert_eq!(files_of(&env, &id("f", 1)), vec![]);
    assert_eq!(env.metastore().get(&id("f", 1)), ShardMeta::default());
}

#[test]
fn added_available_shard_keeps_its_local_data_and_recovers_from_it() {
    let mut w = world(&[fact("f")], &[(1, &[(N1, Available), (N2, Available)])]);
    let env = w.host(N1);
    env.metastore().set(id("f", 1), stale_meta());
    env.disk().put(stray_file(&id("f", 1)), vec![1; 16]);
    let dn = start(&mut w, Options::default());
    run_for(&mut w, Duration::from_secs(1));
    let ts = dn.table_shard(&id("f", 1)).expect("added");
    assert!(!ts.needs_peer_copy());
    assert!(ts.is_bootstrapped());
    assert_eq!(files_of(&env, &id("f", 1)), vec![stray_file(&id("f", 1))]);
    assert_eq!(env.metastore().get(&id("f", 1)).cutoff, Cutoff(5));
    assert_eq!(ts.store().meta().cutoff, Cutoff(5));
}

#[test]
fn removed_shard_is_dropped_from_memory_and_its_files_and_metadata_deleted() {
    let mut w = world(
        &[fact("f")],
        &[
            (1, &[(N1, Available), (N2, Available)]),
            (2, &[(N1, Available), (N2, Available)]),
        ],
    );
    let env = w.host(N1);
    env.metastore().set(id("f", 2), stale_meta());
    env.disk().put(stray_file(&id("f", 2)), vec![1; 16]);
    let dn = start(&mut w, Options::default());
    run_for(&mut w, Duration::from_secs(1));
    let kept = dn.table_shard(&id("f", 1)).expect("f/1");
    assert!(
        dn.table_shard(&id("f", 2))
            .is_some_and(|t| t.is_bootstrapped())
    );

    let capture = Capture::default();
    capture.run(|| {
        set_replica(&w, 2, N1, None);
        run_for(&mut w, Duration::from_secs(1));
    });
    assert!(dn.table_shard(&id("f", 2)).is_none());
    assert_eq!(files_of(&env, &id("f", 2)), vec![]);
    assert_eq!(env.metastore().get(&id("f", 2)), ShardMeta::default());
    assert_eq!(capture.named("table_shard_removed").len(), 1);
    // The shard that stays is untouched.
    assert!(Rc::ptr_eq(
        &kept,
        &dn.table_shard(&id("f", 1)).expect("f/1")
    ));
    assert!(kept.is_bootstrapped());
    assert_eq!(
        dn.assigned_shards(),
        BTreeMap::from([(ShardId(1), Available)])
    );
}

#[test]
fn removal_waits_for_a_running_bootstrap_of_the_shard_to_end() {
    let mut w = world(&[fact("f")], &[(2, &[(N1, Initializing), (N2, Available)])]);
    let options = q(&[Quirk::Q14]);
    w.serve(N2, options.clone());
    seed_peer(&w, N2, &id("f", 2), 4);
    // Both vector-party streams break once: the copy retries after a pause.
    w.net().break_raw_fetches(N2, 2);
    let env = w.host(N1);
    let capture = Capture::default();
    let dn = capture.run(|| {
        let dn = start(&mut w, options);
        run_for(&mut w, Duration::from_millis(300));
        let ts = dn.table_shard(&id("f", 2)).expect("f/2");
        assert_eq!(ts.state(), BootstrapState::Bootstrapping);
        set_replica(&w, 2, N1, None);
        run_for(&mut w, Duration::from_secs(5));
        dn
    });
    let order: Vec<String> = capture
        .events()
        .into_iter()
        .filter(|e| e.field("table") == Some("f"))
        .map(|e| e.message)
        .filter(|m| {
            [
                "bootstrap_finished",
                "bootstrap_failed",
                "table_shard_removed",
            ]
            .contains(&m.as_str())
        })
        .collect();
    assert_eq!(order, vec!["bootstrap_finished", "table_shard_removed"]);
    // What the copy wrote was deleted after it ended.
    assert_eq!(files_of(&env, &id("f", 2)), vec![]);
    assert!(dn.table_shard(&id("f", 2)).is_none());
}

#[test]
fn shard_whose_state_only_changed_is_left_untouched() {
    let mut w = world(&[fact("f")], &[(1, &[(N1, Initializing), (N2, Available)])]);
    let dn = start(&mut w, q(&[Quirk::Q14]));
    run_for(&mut w, Duration::from_secs(1));
    let before = dn.table_shard(&id("f", 1)).expect("f/1");
    assert!(before.needs_peer_copy());
    let capture = Capture::default();
    capture.run(|| {
        set_replica(&w, 1, N1, Some(Available));
        run_for(&mut w, Duration::from_secs(1));
    });
    let after = dn.table_shard(&id("f", 1)).expect("f/1");
    assert!(Rc::ptr_eq(&before, &after));
    assert!(after.needs_peer_copy());
    assert!(capture.named("table_shard_added").is_empty());
    assert_eq!(capture.named("shard_state_changed").len(), 1);
    assert_eq!(
        dn.assigned_shards(),
        BTreeMap::from([(ShardId(1), Available)])
    );
}

#[test]
fn dimension_tables_arrive_with_the_first_shards_and_leave_with_the_last() {
    let mut w = world(&[fact("f"), dim("d")], &[(1, &[(N2, Available)])]);
    let env = w.host(N1);
    let dn = start(&mut w, Options::default());
    run_for(&mut w, Duration::from_secs(1));
    assert!(dn.table_shards().is_empty());

    set_replica(&w, 1, N1, Some(Available));
    run_for(&mut w, Duration::from_secs(1));
    let d = dn.table_shard(&id("d", 0)).expect("dimension table added");
    assert!(!d.needs_peer_copy());
    assert!(d.is_bootstrapped());
    assert!(dn.table_shard(&id("f", 1)).is_some());

    env.disk().put(stray_file(&id("d", 0)), vec![1; 16]);
    set_replica(&w, 1, N1, None);
    run_for(&mut w, Duration::from_secs(1));
    assert!(dn.table_shards().is_empty());
    assert_eq!(files_of(&env, &id("d", 0)), vec![]);
}

#[test]
fn dimension_tables_need_a_copy_only_if_every_incoming_shard_is_initializing() {
    for (second, copy) in [(Available, false), (Initializing, true)] {
        let mut w = world(
            &[fact("f"), dim("d")],
            &[
                (1, &[(N1, Initializing), (N2, Available)]),
                (2, &[(N1, second), (N2, Available)]),
            ],
        );
        let dn = start(&mut w, q(&[Quirk::Q14]));
        run_for(&mut w, Duration::from_secs(1));
        let d = dn.table_shard(&id("d", 0)).expect("dimension table");
        assert_eq!(d.needs_peer_copy(), copy, "second shard {second}");
    }
}

#[test]
fn new_table_is_added_to_every_held_shard_without_peer_copy() {
    let mut w = world(
        &[fact("f"), dim("d")],
        &[
            (1, &[(N1, Initializing), (N2, Available)]),
            (2, &[(N1, Available), (N2, Available)]),
            (3, &[(N2, Available)]),
        ],
    );
    let dn = start(&mut w, q(&[Quirk::Q14]));
    run_for(&mut w, Duration::from_secs(1));
    w.net().cluster().update(|v| {
        for t in [fact("g"), dim("e")] {
            v.tables.insert(t.name.clone(), t);
        }
    });
    run_for(&mut w, Duration::from_secs(1));
    for ts in ["g/1", "g/2", "e/0"] {
        let info = dn
            .table_shard_infos()
            .into_iter()
            .find(|i| i.id.to_string() == ts)
            .unwrap_or_else(|| panic!("{ts} added"));
        assert!(!info.needs_peer_copy, "{ts}");
        assert_eq!(info.state, BootstrapState::Bootstrapped, "{ts}");
    }
    assert!(dn.table_shard(&id("g", 3)).is_none());
    // The old table's Initializing shard still needs its copy.
    assert!(
        dn.table_shard(&id("f", 1))
            .is_some_and(|t| t.needs_peer_copy())
    );
}

#[test]
fn peer_source_follows_the_placement() {
    let mut w = world(&[fact("f")], &[(1, &[(N1, Available), (N2, Available)])]);
    let dn = start(&mut w, Options::default());
    run_for(&mut w, Duration::from_secs(1));
    assert_eq!(dn.peer_source().known_hosts(), vec![N1, N2]);
    set_replica(&w, 1, N3, Some(Initializing));
    run_for(&mut w, Duration::from_secs(1));
    assert_eq!(dn.peer_source().known_hosts(), vec![N1, N2, N3]);
    set_replica(&w, 1, N2, None);
    run_for(&mut w, Duration::from_secs(1));
    assert_eq!(dn.peer_source().known_hosts(), vec![N1, N3]);
}

// ------------------------------------------------------------- restart ---

#[test]
fn restart_copies_still_initializing_shards_again_and_recovers_the_others_from_disk() {
    let mut w = world(
        &[fact("f")],
        &[
            (1, &[(N1, Available), (N2, Available)]),
            (2, &[(N1, Initializing), (N2, Available)]),
        ],
    );
    let env = w.host(N1);
    let options = q(&[Quirk::Q14]);
    let first = start(&mut w, options.clone());
    run_for(&mut w, Duration::from_secs(1));
    first.stop();
    env.disk().put(stray_file(&id("f", 1)), vec![1; 16]);
    env.disk().put(stray_file(&id("f", 2)), vec![1; 16]);

    let second = DataNode::new(env.clone(), options);
    assert!(
        second.table_shards().is_empty(),
        "nothing survives in memory"
    );
    second.start();
    run_for(&mut w, Duration::from_secs(1));
    let f1 = second.table_shard(&id("f", 1)).expect("f/1");
    assert!(!f1.needs_peer_copy() && f1.is_bootstrapped());
    assert_eq!(files_of(&env, &id("f", 1)), vec![stray_file(&id("f", 1))]);
    let f2 = second.table_shard(&id("f", 2)).expect("f/2");
    assert!(f2.needs_peer_copy());
    assert_eq!(files_of(&env, &id("f", 2)), vec![]);
}
