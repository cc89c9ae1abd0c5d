//! The node's loops: retries (Q14), availability (Q13), readiness,
//! ingestion and background jobs.

use super::*;

// ------------------------------------------------------------- retries ---

#[test]
fn with_q14_on_a_failed_bootstrap_waits_for_the_next_view_or_a_manual_retry() {
    let mut w = world(&[fact("f")], &[(1, &[(N1, Initializing), (N2, Available)])]);
    let options = q(&[Quirk::Q14]);
    let dn = start(&mut w, options.clone());
    run_for(&mut w, Duration::from_secs(1));
    assert_eq!(dn.manager().passes(), 1);
    run_for(&mut w, Duration::from_secs(120));
    assert_eq!(dn.manager().passes(), 1, "no automatic retry");
    // Any new view requests a bootstrap.
    set_replica(&w, 1, N3, Some(Initializing));
    run_for(&mut w, Duration::from_secs(1));
    assert_eq!(dn.manager().passes(), 2);
    // So does a manual retry; now the source serves.
    w.serve(N2, options);
    dn.retry();
    run_for(&mut w, Duration::from_secs(1));
    assert_eq!(dn.manager().passes(), 3);
    assert!(
        dn.table_shard(&id("f", 1))
            .is_some_and(|t| t.is_bootstrapped())
    );
}

#[test]
fn with_q14_off_a_failed_bootstrap_is_retried_with_capped_exponential_backoff() {
    let mut w = world(&[fact("f")], &[(1, &[(N1, Initializing), (N2, Available)])]);
    let options = Options {
        retry_backoff_min: Duration::from_secs(1),
        retry_backoff_max: Duration::from_secs(4),
        ..Options::default()
    };
    let dn = start(&mut w, options.clone());
    // Passes at 0, then after 1, 2, 4, 4 s: at 1, 3, 7, 11.
    let mut seen = Vec::new();
    for _ in 0..12 {
        run_for(&mut w, Duration::from_secs(1));
        seen.push(dn.manager().passes());
    }
    // Sampled just after each whole second (retries fire on the second).
    assert_eq!(seen, vec![2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5]);
    w.serve(N2, options);
    run_for(&mut w, Duration::from_secs(4));
    assert!(
        dn.table_shard(&id("f", 1))
            .is_some_and(|t| t.is_bootstrapped())
    );
    let passes = dn.manager().passes();
    run_for(&mut w, Duration::from_secs(60));
    assert_eq!(dn.manager().passes(), passes, "no retries after success");
}

#[test]
fn manual_retry_while_a_bootstrap_runs_only_marks_it_pending() {
    let mut w = world(&[fact("f")], &[(2, &[(N1, Initializing), (N2, Available)])]);
    let options = q(&[Quirk::Q14]);
    w.serve(N2, options.clone());
    seed_peer(&w, N2, &id("f", 2), 4);
    w.net().break_raw_fetches(N2, 2);
    let dn = start(&mut w, options);
    run_for(&mut w, Duration::from_millis(300));
    assert!(dn.manager().is_running());
    dn.retry();
    w.run_until_stalled();
    assert!(dn.manager().is_pending());
    assert_eq!(dn.manager().passes(), 1);
    run_for(&mut w, Duration::from_secs(5));
    assert_eq!(dn.manager().passes(), 2);
    assert!(!dn.manager().is_running());
    assert!(
        dn.table_shard(&id("f", 2))
            .is_some_and(|t| t.is_bootstrapped())
    );
}

// -------------------------------------------------------- availability ---

#[test]
fn initializing_shard_is_marked_available_once_its_table_shards_are_bootstrapped() {
    let mut w = world(&[fact("f")], &[(1, &[(N1, Initializing), (N2, Available)])]);
    let options = q(&[Quirk::Q14]);
    let dn = start(&mut w, options.clone());
    run_for(&mut w, Duration::from_secs(11));
    assert!(
        w.net().cluster().marked().is_empty(),
        "copy failed: not ready"
    );
    w.serve(N2, options);
    dn.retry();
    run_for(&mut w, Duration::from_secs(5));
    assert_eq!(w.net().cluster().marked(), vec![(N1, vec![ShardId(1)])]);
}

#[test]
fn failed_mark_available_is_retried_on_the_next_tick() {
    let mut w = world(&[fact("f")], &[(1, &[(N1, Initializing), (N2, Available)])]);
    let options = Options::default();
    w.serve(N2, options.clone());
    w.net().cluster().set_mark_available_fails(true);
    let capture = Capture::default();
    capture.run(|| {
        let _dn = start(&mut w, options);
        run_for(&mut w, Duration::from_millis(5500));
        assert_eq!(w.net().cluster().marked().len(), 1);
        w.net().cluster().set_mark_available_fails(false);
        run_for(&mut w, Duration::from_secs(5));
        assert_eq!(w.net().cluster().marked().len(), 2);
        // The service applies it; later ticks have nothing to mark.
        set_replica(&w, 1, N1, Some(Available));
        run_for(&mut w, Duration::from_secs(10));
    });
    assert_eq!(w.net().cluster().marked().len(), 2);
    assert_eq!(capture.named("mark_available_failed").len(), 1);
    assert_eq!(capture.named("shard_marked_available").len(), 1);
}

/// `f/1` copies from N2; the dimension table needs a copy too (every
/// incoming shard is Initializing) but shard 0 is not in the placement, so
/// it fails.
fn dimension_copy_fails(options: &Options) -> FakeWorld {
    let mut w = world(
        &[fact("f"), dim("d")],
        &[(1, &[(N1, Initializing), (N2, Available)])],
    );
    w.serve(N2, options.clone());
    let dn = start(&mut w, options.clone());
    run_for(&mut w, Duration::from_secs(6));
    assert!(
        dn.table_shard(&id("f", 1))
            .is_some_and(|t| t.is_bootstrapped())
    );
    assert!(
        dn.table_shard(&id("d", 0))
            .is_some_and(|t| !t.is_bootstrapped())
    );
    w
}

#[test]
fn with_q13_off_dimension_tables_must_be_bootstrapped_before_a_shard_is_available() {
    let w = dimension_copy_fails(&q(&[Quirk::Q14]));
    assert!(w.net().cluster().marked().is_empty());
}

#[test]
fn with_q13_on_dimension_tables_are_not_checked_for_availability() {
    let w = dimension_copy_fails(&q(&[Quirk::Q13, Quirk::Q14]));
    assert_eq!(w.net().cluster().marked(), vec![(N1, vec![ShardId(1)])]);
}

#[test]
fn with_no_fact_tables_every_shard_is_marked_available_at_once_only_with_q13_on() {
    for (quirks, marked) in [
        (vec![Quirk::Q13, Quirk::Q14], true),
        (vec![Quirk::Q14], false),
    ] {
        let mut w = world(&[dim("d")], &[(1, &[(N1, Initializing), (N2, Available)])]);
        let _dn = start(&mut w, q(&quirks));
        run_for(&mut w, Duration::from_millis(5500));
        assert_eq!(!w.net().cluster().marked().is_empty(), marked, "{quirks:?}");
    }
}

// ----------------------------------------------------------- readiness ---

#[test]
fn node_not_in_the_placement_is_ready_at_the_first_check() {
    let mut w = world(&[fact("f")], &[(1, &[(N2, Available)])]);
    let dn = start(&mut w, Options::default());
    run_for(&mut w, Duration::from_millis(9900));
    assert!(!dn.is_ready() && !dn.peer_server().health());
    run_for(&mut w, Duration::from_millis(200));
    assert!(dn.is_ready() && dn.peer_server().health());
}

#[test]
fn node_is_ready_when_its_non_initializing_fact_shards_and_dimension_tables_are_bootstrapped() {
    let mut w = world(
        &[fact("f"), dim("d")],
        &[
            (1, &[(N1, Available), (N2, Available)]),
            (2, &[(N1, Initializing), (N2, Available)]),
        ],
    );
    let dn = start(&mut w, q(&[Quirk::Q14]));
    run_for(&mut w, Duration::from_millis(10_100));
    // f/2 failed its copy, but it is Initializing.
    assert!(
        dn.table_shard(&id("f", 2))
            .is_some_and(|t| !t.is_bootstrapped())
    );
    assert!(dn.is_ready() && dn.peer_server().health());
}

#[test]
fn node_is_not_ready_while_a_dimension_table_is_not_bootstrapped() {
    let mut w = world(
        &[fact("f"), dim("d")],
        &[(1, &[(N1, Initializing), (N2, Available)])],
    );
    let dn = start(&mut w, q(&[Quirk::Q14]));
    run_for(&mut w, Duration::from_secs(31));
    assert!(
        dn.table_shard(&id("d", 0))
            .is_some_and(|t| !t.is_bootstrapped())
    );
    assert!(!dn.is_ready() && !dn.peer_server().health());
}

#[test]
fn node_is_not_ready_while_an_available_fact_shard_is_not_bootstrapped() {
    let mut w = world(&[fact("f")], &[(1, &[(N1, Available), (N2, Available)])]);
    let env = w.host(N1);
    env.metastore().set_failing(true);
    let dn = start(&mut w, q(&[Quirk::Q14]));
    run_for(&mut w, Duration::from_millis(10_100));
    assert!(!dn.is_ready());
    env.metastore().set_failing(false);
    dn.retry();
    run_for(&mut w, Duration::from_secs(10));
    assert!(dn.is_ready());
}

// ------------------------------------------------- ingestion and jobs ---

#[test]
fn bootstrapped_table_shard_ingests_from_the_upstream_log() {
    let mut w = world(&[fact("f")], &[(1, &[(N1, Available), (N2, Available)])]);
    w.net().upstream().push(
        id("f", 1),
        (0..10).map(|o| Record {
            offset: Offset(o),
            day: Day(1),
            key: o as u32,
        }),
    );
    let dn = start(&mut w, Options::default());
    run_for(&mut w, Duration::from_millis(2500));
    let ts = dn.table_shard(&id("f", 1)).expect("f/1");
    assert_eq!(ts.store().commit_offset(), Offset(10));
}

#[test]
fn table_shard_that_is_not_bootstrapped_does_not_ingest() {
    let mut w = world(&[fact("f")], &[(1, &[(N1, Initializing), (N2, Available)])]);
    w.net().upstream().push(
        id("f", 1),
        [Record {
            offset: Offset(0),
            day: Day(1),
            key: 0,
        }],
    );
    let dn = start(&mut w, q(&[Quirk::Q14]));
    run_for(&mut w, Duration::from_secs(3));
    let ts = dn.table_shard(&id("f", 1)).expect("f/1");
    assert_eq!(ts.store().commit_offset(), Offset(0));
}

#[test]
fn background_jobs_run_only_once_the_node_is_ready() {
    let mut w = world(&[fact("f")], &[(1, &[(N1, Available), (N2, Available)])]);
    let options = Options {
        archiving_interval: Duration::from_secs(2),
        ..Options::default()
    };
    let capture = Capture::default();
    capture.run(|| {
        let dn = start(&mut w, options);
        run_for(&mut w, Duration::from_millis(9900));
        assert!(!dn.is_ready());
        assert!(capture.named("archiving_published").is_empty());
        run_for(&mut w, Duration::from_secs(3));
        assert!(dn.is_ready());
    });
    assert_eq!(capture.named("archiving_published").len(), 1);
}
