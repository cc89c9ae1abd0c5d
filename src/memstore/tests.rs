//! Tests of the node-wide bootstrap and of shard readiness (docs/MODEL.md
//! §8 item 11, quirk Q13 both ways).

use std::rc::Rc;

use super::*;
use crate::env::Cluster;
use crate::fake::{FakeEnv, FakeWorld};
use std::collections::BTreeMap;

use crate::model::{
    BatchMeta, ColumnSchema, Cutoff, FileKey, Record, ShardMeta, TableSchema, encode_vector_party,
};
use crate::placement::Placement;
use crate::store::StoreConfig;
use crate::trace_capture::Capture;
use crate::types::{BatchId, ColumnId, Day, Offset, ShardState, Timestamp};

const ORIGIN: NodeId = NodeId(1);
const PEER: NodeId = NodeId(2);

pub(crate) fn schema(name: &str, kind: TableKind) -> TableSchema {
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

struct Setup {
    w: FakeWorld,
    env: FakeEnv,
    mem: MemStore<FakeEnv>,
    source: Rc<PeerSource<FakeEnv>>,
    options: Rc<Options>,
}

/// A host `ORIGIN` whose shards `shards` are `Initializing` with `PEER`
/// holding them `Available`; the view has `tables`.
fn setup(options: Options, tables: &[TableSchema], shards: &[u32]) -> Setup {
    let w = FakeWorld::new(3);
    w.net().set_now(Timestamp::from_secs(86_400 + 100));
    let env = w.host(ORIGIN);
    let options = Rc::new(options);
    w.net().cluster().update(|v| {
        for t in tables {
            v.tables.insert(t.name.clone(), t.clone());
        }
        for s in shards {
            let replicas = v.placement.shards.entry(ShardId(*s)).or_default();
            replicas.insert(ORIGIN, ShardState::Initializing);
            replicas.insert(PEER, ShardState::Available);
        }
    });
    let placement: Placement = w.net().cluster().view().placement.clone();
    let source = Rc::new(PeerSource::new(
        env.clone(),
        Rc::clone(&options),
        &placement,
    ));
    let mem = MemStore::new(env.clone());
    Setup {
        w,
        env,
        mem,
        source,
        options,
    }
}

impl Setup {
    fn add(
        &self,
        table: &TableSchema,
        shard: u32,
        needs_peer_copy: bool,
    ) -> Rc<TableShard<FakeEnv>> {
        let ts = Rc::new(TableShard::new(
            self.env.clone(),
            TableShardId::new(table.name.clone(), ShardId(shard)),
            table.clone(),
            needs_peer_copy,
            StoreConfig::default(),
        ));
        self.mem.insert(Rc::clone(&ts));
        ts
    }

    fn bootstrap_all(&mut self) -> Result<(), BootstrapErrors> {
        let view = self.w.net().cluster().view();
        let (mem, source, options) = (&self.mem, &self.source, &self.options);
        self.w
            .run(async { mem.bootstrap_all(source, ORIGIN, &view, options).await })
    }

    /// Bootstrap one table shard from local disk (it needs no copy).
    fn bootstrap_one(&mut self, ts: &Rc<TableShard<FakeEnv>>) {
        let view = self.w.net().cluster().view();
        let (source, options) = (&self.source, &self.options);
        self.w
            .run(async { ts.bootstrap(source, ORIGIN, &view, options).await })
            .expect("local bootstrap succeeds");
    }

    fn ready_shards(&self, quirks: Quirks) -> Vec<u32> {
        (0..3)
            .filter(|s| self.mem.shard_ready(ShardId(*s), quirks))
            .collect()
    }
}

/// Give `PEER` one archived batch of `shard` with rows in both columns.
fn seed_peer(w: &FakeWorld, shard: &TableShardId) {
    let env = w.host(PEER);
    let cutoff = Cutoff(86_400);
    let records: Vec<Record> = (0..4)
        .map(|o| Record {
            offset: Offset(o),
            day: Day(0),
            key: o as u32,
        })
        .collect();
    let meta = BatchMeta {
        version: cutoff,
        seq: 0,
        size: 4,
    };
    env.metastore().set(
        shard.clone(),
        ShardMeta {
            commit_offset: Offset(4),
            checkpoint_offset: Offset(4),
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

#[test]
fn shard_is_ready_only_when_every_fact_table_shard_of_it_is_bootstrapped() {
    let t1 = schema("t1", TableKind::Fact);
    let t2 = schema("t2", TableKind::Fact);
    let mut s = setup(Options::default(), &[t1.clone(), t2.clone()], &[0, 1, 2]);
    let mut t1_shards = Vec::new();
    for shard in 0..3 {
        t1_shards.push(s.add(&t1, shard, false));
        let t2_shard = s.add(&t2, shard, false);
        s.bootstrap_one(&t2_shard);
    }
    s.bootstrap_one(&t1_shards[1]);
    assert_eq!(s.ready_shards(Quirks::default()), vec![1]);
}

#[test]
fn dimension_tables_must_be_bootstrapped_for_readiness_with_q13_off() {
    let f = schema("f", TableKind::Fact);
    let d = schema("d", TableKind::Dimension);
    let mut s = setup(Options::default(), &[f.clone(), d.clone()], &[1]);
    let fact = s.add(&f, 1, false);
    let dim = s.add(&d, 0, false);
    s.bootstrap_one(&fact);
    assert!(!s.mem.shard_ready(ShardId(1), Quirks::default()));
    s.bootstrap_one(&dim);
    assert!(s.mem.shard_ready(ShardId(1), Quirks::default()));
}

#[test]
fn dimension_tables_are_ignored_for_readiness_with_q13_on() {
    let f = schema("f", TableKind::Fact);
    let d = schema("d", TableKind::Dimension);
    let q13 = Quirks::default().with(Quirk::Q13);
    let mut s = setup(Options::default(), &[f.clone(), d.clone()], &[1]);
    let fact = s.add(&f, 1, false);
    let _dim = s.add(&d, 0, false);
    assert!(!s.mem.shard_ready(ShardId(1), q13));
    s.bootstrap_one(&fact);
    assert!(s.mem.shard_ready(ShardId(1), q13));
}

#[test]
fn with_no_fact_tables_every_shard_is_ready_at_once_only_with_q13_on() {
    let d = schema("d", TableKind::Dimension);
    let s = setup(Options::default(), std::slice::from_ref(&d), &[0, 1, 2]);
    let _dim = s.add(&d, 0, true);
    let q13 = Quirks::default().with(Quirk::Q13);
    assert_eq!(s.ready_shards(q13), vec![0, 1, 2]);
    assert_eq!(s.ready_shards(Quirks::default()), Vec::<u32>::new());
}

#[test]
fn fact_shard_zero_is_not_confused_with_dimension_tables() {
    let f = schema("f", TableKind::Fact);
    let d = schema("d", TableKind::Dimension);
    let mut s = setup(Options::default(), &[f.clone(), d.clone()], &[0]);
    let dim = s.add(&d, 0, false);
    let _fact = s.add(&f, 0, false);
    s.bootstrap_one(&dim);
    let q13 = Quirks::default().with(Quirk::Q13);
    assert!(!s.mem.shard_ready(ShardId(0), q13));
    assert_eq!(s.mem.fact_shards_of(ShardId(0)).len(), 1);
    assert_eq!(s.mem.dimension_shards().len(), 1);
}

#[test]
fn bootstrap_all_bootstraps_every_table_shard_not_yet_bootstrapped() {
    let f = schema("f", TableKind::Fact);
    let d = schema("d", TableKind::Dimension);
    let mut s = setup(Options::default(), &[f.clone(), d.clone()], &[1, 2]);
    let done = s.add(&f, 1, false);
    s.bootstrap_one(&done);
    let others = [s.add(&f, 2, false), s.add(&d, 0, false)];
    let capture = Capture::default();
    let result = capture.run(|| s.bootstrap_all());
    assert_eq!(result, Ok(()));
    assert!(done.is_bootstrapped() && others.iter().all(|t| t.is_bootstrapped()));
    // The one already bootstrapped was left alone.
    let started: Vec<String> = capture
        .named("bootstrap_started")
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e.field("table").unwrap_or(""),
                e.field("shard").unwrap_or("")
            )
        })
        .collect();
    assert_eq!(started, vec!["d/0", "f/2"]);
}

#[test]
fn bootstrap_all_starts_table_shards_without_peer_copy_first() {
    let a = schema("a", TableKind::Fact);
    let b = schema("b", TableKind::Fact);
    let options = Options {
        max_concurrent_table_shards: 1,
        ..Options::default()
    };
    let mut s = setup(options.clone(), &[a.clone(), b.clone()], &[1]);
    s.w.serve(PEER, options);
    // "a/1" sorts first by id but needs a copy.
    s.add(&a, 1, true);
    s.add(&b, 1, false);
    let capture = Capture::default();
    let result = capture.run(|| s.bootstrap_all());
    assert_eq!(result, Ok(()));
    let started: Vec<String> = capture
        .named("bootstrap_started")
        .iter()
        .map(|e| e.field("table").unwrap_or("").to_string())
        .collect();
    assert_eq!(started, vec!["b", "a"]);
}

#[test]
fn bootstrap_all_runs_at_most_max_concurrent_table_shards_at_once() {
    let tables: Vec<TableSchema> = (0..5)
        .map(|i| schema(&format!("t{i}"), TableKind::Fact))
        .collect();
    let options = Options {
        max_concurrent_table_shards: 2,
        ..Options::default()
    };
    let mut s = setup(options.clone(), &tables, &[1]);
    s.w.serve(PEER, options);
    for t in &tables {
        s.add(t, 1, true);
    }
    let capture = Capture::default();
    assert_eq!(capture.run(|| s.bootstrap_all()), Ok(()));
    let (mut running, mut max) = (0i32, 0i32);
    for e in capture.events() {
        match e.message.as_str() {
            "bootstrap_started" => running += 1,
            "bootstrap_finished" | "bootstrap_failed" => running -= 1,
            _ => {}
        }
        max = max.max(running);
    }
    assert_eq!(max, 2);
    assert!(s.mem.table_shards().iter().all(|t| t.is_bootstrapped()));
}

#[test]
fn bootstrap_all_returns_every_failure_together() {
    let tables: Vec<TableSchema> = (0..3)
        .map(|i| schema(&format!("t{i}"), TableKind::Fact))
        .collect();
    let mut s = setup(Options::default(), &tables, &[1]);
    // No server on the peer: every copy fails to borrow a connection.
    for t in &tables {
        s.add(t, 1, true);
    }
    let ok = s.add(&schema("local", TableKind::Fact), 1, false);
    let errors = s.bootstrap_all().expect_err("copies fail");
    let ids: Vec<String> = errors.iter().map(|(id, _)| id.to_string()).collect();
    assert_eq!(ids, vec!["t0/1", "t1/1", "t2/1"]);
    assert!(
        errors
            .iter()
            .all(|(_, e)| matches!(e, BootstrapError::NoPeerBorrowed(_)))
    );
    assert!(ok.is_bootstrapped());
}

#[test]
fn bootstrap_all_skips_a_table_shard_removed_before_its_turn() {
    let tables: Vec<TableSchema> = (0..2)
        .map(|i| schema(&format!("t{i}"), TableKind::Fact))
        .collect();
    let options = Options {
        max_concurrent_table_shards: 1,
        ..Options::default()
    };
    let mut s = setup(options.clone(), &tables, &[1]);
    s.w.serve(PEER, options);
    // The first copy's two streams break once: it pauses before retrying.
    seed_peer(&s.w, &TableShardId::new("t0", ShardId(1)));
    s.w.net().break_raw_fetches(PEER, 2);
    let first = s.add(&tables[0], 1, true);
    let second = s.add(&tables[1], 1, true);
    let view = s.w.net().cluster().view();
    let mem = Rc::new(std::mem::replace(&mut s.mem, MemStore::new(s.env.clone())));
    let task = {
        let (mem, source, options) = (Rc::clone(&mem), Rc::clone(&s.source), Rc::clone(&s.options));
        s.w.spawn(async move { mem.bootstrap_all(&source, ORIGIN, &view, &options).await })
    };
    s.w.run_until_stalled();
    assert_eq!(first.state(), BootstrapState::Bootstrapping);
    mem.remove(second.id());
    assert_eq!(s.w.run(task), Ok(()));
    assert!(first.is_bootstrapped());
    assert_eq!(second.state(), BootstrapState::NotStarted);
}
