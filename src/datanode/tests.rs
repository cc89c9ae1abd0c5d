//! Tests of the data node: assigning the shard set, the availability and
//! readiness checks, ingestion and jobs, retries (quirk Q14), dimension
//! tables in availability (quirk Q13), and restart. Each drives one node
//! (`N1`) in a [`FakeWorld`], with `N2` as the copy source when it serves.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use super::*;
use crate::fake::{FakeEnv, FakeWorld};
use crate::model::{
    BatchMeta, ColumnSchema, Cutoff, FileKey, Record, ShardMeta, TableSchema, encode_vector_party,
};
use crate::quirks::Quirks;
use crate::trace_capture::Capture;
use crate::types::{BatchId, ColumnId, Day, NodeId, Offset, Timestamp};

const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const N3: NodeId = NodeId(3);
const DAY_SECS: u64 = 86_400;
const STEP: Duration = Duration::from_millis(100);

use ShardState::{Available, Initializing};

fn schema(name: &str, kind: TableKind) -> TableSchema {
    TableSchema {
        name: name.into(),
        kind,
        retention_days: 0,
        columns: (0..2)
            .map(|c| ColumnSchema {
                id: ColumnId(c),
                deleted: false,
                // 0 (no preload) trips a range bug in store/preload.rs.
                preloading_days: 1,
            })
            .collect(),
    }
}

fn fact(name: &str) -> TableSchema {
    schema(name, TableKind::Fact)
}

fn dim(name: &str) -> TableSchema {
    schema(name, TableKind::Dimension)
}

fn id(table: &str, shard: u32) -> TableShardId {
    TableShardId::new(table, ShardId(shard))
}

fn q(quirks: &[Quirk]) -> Options {
    Options {
        quirks: quirks.iter().copied().collect::<Quirks>(),
        ..Options::default()
    }
}

/// A world at day 1 whose view has `tables` and, per shard, its replicas.
fn world(tables: &[TableSchema], shards: &[(u32, &[(NodeId, ShardState)])]) -> FakeWorld {
    let w = FakeWorld::new(11);
    w.net().set_now(Timestamp::from_secs(DAY_SECS + 100));
    w.net().cluster().update(|v| {
        for t in tables {
            v.tables.insert(t.name.clone(), t.clone());
        }
        for (shard, replicas) in shards {
            v.placement
                .shards
                .insert(ShardId(*shard), replicas.iter().copied().collect());
        }
    });
    w
}

/// Set `node`'s replica of `shard` to `state` (`None`: remove it).
fn set_replica(w: &FakeWorld, shard: u32, node: NodeId, state: Option<ShardState>) {
    w.net().cluster().update(|v| {
        let replicas = v.placement.shards.entry(ShardId(shard)).or_default();
        match state {
            Some(s) => {
                replicas.insert(node, s);
            }
            None => {
                replicas.remove(&node);
            }
        }
    });
}

fn start(w: &mut FakeWorld, options: Options) -> Rc<DataNode<FakeEnv>> {
    let dn = DataNode::new(w.host(N1), options);
    dn.start();
    w.run_until_stalled();
    dn
}

/// Let virtual time pass in small steps, running everything due.
fn run_for(w: &mut FakeWorld, d: Duration) {
    let steps = d.as_millis() / STEP.as_millis();
    for _ in 0..steps {
        w.advance(STEP);
    }
}

fn files_of(env: &FakeEnv, shard: &TableShardId) -> Vec<FileKey> {
    env.disk()
        .keys()
        .into_iter()
        .filter(|k| k.shard() == shard)
        .collect()
}

/// A file no metadata refers to: left alone by a local bootstrap, gone
/// after a purge.
fn stray_file(shard: &TableShardId) -> FileKey {
    FileKey::VectorParty {
        shard: shard.clone(),
        batch: BatchId(0),
        version: Cutoff(1),
        seq: 7,
        column: ColumnId(0),
    }
}

fn stale_meta() -> ShardMeta {
    ShardMeta {
        cutoff: Cutoff(5),
        ..ShardMeta::default()
    }
}

/// Give `node` one archived batch (day 0) of `table`/`shard` with `rows`
/// rows in both columns, so a copy from it streams two vector parties.
fn seed_peer(w: &FakeWorld, node: NodeId, shard: &TableShardId, rows: u64) {
    let env = w.host(node);
    let cutoff = Cutoff(DAY_SECS as u32);
    let records: Vec<Record> = (0..rows)
        .map(|o| Record {
            offset: Offset(o),
            day: Day(0),
            key: o as u32,
        })
        .collect();
    let meta = BatchMeta {
        version: cutoff,
        seq: 0,
        size: rows as u32,
    };
    env.metastore().set(
        shard.clone(),
        ShardMeta {
            commit_offset: Offset(rows),
            checkpoint_offset: Offset(rows),
            cutoff,
            batches: BTreeMap::from([(BatchId(0), meta)]),
            ..ShardMeta::default()
        },
    );
    for c in 0..2 {
        let key = FileKey::VectorParty {
            shard: shard.clone(),
            batch: BatchId(0),
            version: cutoff,
            seq: 0,
            column: ColumnId(c),
        };
        env.disk()
            .put(key, encode_vector_party(&records, ColumnId(c)));
    }
}

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
