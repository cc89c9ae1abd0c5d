//! Tests of the table shard bootstrap: the upstream fixtures (fact and
//! dimension table from a peer), every error exit, and each client-side
//! quirk shown both ways.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use crate::details::{CopyStatus, Stage};
use crate::env::{DiskError, Env};
use crate::fake::{FakeEnv, FakeJoin, FakeWorld};
use crate::model::{
    BatchMeta, ColumnSchema, Cutoff, FileKey, MetaWrite, Record, RedoPosition, ShardMeta,
    SnapshotProgress, TableSchema, encode_vector_party,
};
use crate::options::Options;
use crate::peer_server::PeerServer;
use crate::peer_source::PeerSource;
use crate::placement::{ClusterView, Placement};
use crate::quirks::Quirk;
use crate::store::{DIMENSION_KEY_COLUMN, DamageKind, StoreConfig, StoreError, encode_key_party};
use crate::trace_capture::Capture;
use crate::types::{
    BatchId, ColumnId, Day, NodeId, Offset, ShardId, ShardState, TableKind, TableShardId, Timestamp,
};

use super::bootstrap::shuffle_sources;
use super::*;

const ORIGIN: NodeId = NodeId(1);
const A: NodeId = NodeId(2);
const B: NodeId = NodeId(3);
const DAY: u64 = 86_400;
/// Day 1, a little after midnight.
const NOW_SECS: u64 = DAY + 100;
const FACT_SHARD: ShardId = ShardId(1);

fn fact_schema() -> TableSchema {
    TableSchema {
        name: "trips".into(),
        kind: TableKind::Fact,
        retention_days: 10,
        columns: (0..3)
            .map(|c| ColumnSchema {
                id: ColumnId(c),
                deleted: false,
                preloading_days: 1,
            })
            .collect(),
    }
}

fn dim_schema() -> TableSchema {
    TableSchema {
        name: "cities".into(),
        kind: TableKind::Dimension,
        retention_days: 0,
        columns: (0..3)
            .map(|c| ColumnSchema {
                id: ColumnId(c),
                deleted: false,
                preloading_days: 0,
            })
            .collect(),
    }
}

fn fact_id() -> TableShardId {
    TableShardId::new("trips", FACT_SHARD)
}

fn dim_id() -> TableShardId {
    TableShardId::new("cities", ShardId::DIMENSION)
}

fn rec(offset: u64, day: i32, key: u32) -> Record {
    Record {
        offset: Offset(offset),
        day: Day(day),
        key,
    }
}

/// The rows of the peer's day-1 batch (upstream fixture: size 5).
fn batch_rows() -> Vec<Record> {
    (0..5).map(|o| rec(o, 1, 0)).collect()
}

const BATCH_VERSION: Cutoff = Cutoff(10);

fn batch_meta() -> BatchMeta {
    BatchMeta {
        version: BATCH_VERSION,
        seq: 1,
        size: 5,
    }
}

fn fact_file(column: u32) -> FileKey {
    FileKey::VectorParty {
        shard: fact_id(),
        batch: BatchId(1),
        version: BATCH_VERSION,
        seq: 1,
        column: ColumnId(column),
    }
}

fn peer_bytes(column: u32) -> Vec<u8> {
    encode_vector_party(&batch_rows(), ColumnId(column))
}

/// Upstream fixture 1 on host `env`: checkpoint 10, commit 20, cutoff 10,
/// backfill (10, 10), batch day 1 of size 5 at version 10 seq 1, columns 0..2.
fn seed_fact_peer(env: &FakeEnv) {
    let meta = ShardMeta {
        commit_offset: Offset(20),
        checkpoint_offset: Offset(10),
        cutoff: BATCH_VERSION,
        backfill: RedoPosition {
            file: 10,
            offset: 10,
        },
        batches: [(BatchId(1), batch_meta())].into_iter().collect(),
        ..ShardMeta::default()
    };
    env.metastore().set(fact_id(), meta);
    for c in 0..3 {
        env.disk().put(fact_file(c), peer_bytes(c));
    }
}

const SNAPSHOT_REDO: RedoPosition = RedoPosition {
    file: 123,
    offset: 1,
};
const DIM_BATCH: BatchId = BatchId(-110);

fn dim_rows() -> Vec<Record> {
    (0..6).map(|o| rec(o, 0, 100 + o as u32)).collect()
}

fn snapshot_file(column: ColumnId) -> FileKey {
    FileKey::Snapshot {
        shard: dim_id(),
        redo: SNAPSHOT_REDO,
        batch: DIM_BATCH,
        column,
    }
}

fn snapshot_progress() -> SnapshotProgress {
    SnapshotProgress {
        redo: SNAPSHOT_REDO,
        last_batch: DIM_BATCH,
        last_batch_size: 6,
    }
}

/// Upstream fixture 2 on host `env`: snapshot at (123, 1), last batch −110
/// of size 6, one batch −110 with columns 0..2 (and its key column).
fn seed_dim_peer(env: &FakeEnv) {
    let meta = ShardMeta {
        commit_offset: Offset(20),
        checkpoint_offset: Offset(10),
        snapshot: snapshot_progress(),
        ..ShardMeta::default()
    };
    env.metastore().set(dim_id(), meta);
    for c in 0..3 {
        env.disk().put(
            snapshot_file(ColumnId(c)),
            encode_vector_party(&dim_rows(), ColumnId(c)),
        );
    }
    let keys: Vec<(u32, Offset)> = dim_rows().iter().map(|r| (r.key, r.offset)).collect();
    env.disk()
        .put(snapshot_file(DIMENSION_KEY_COLUMN), encode_key_party(&keys));
}

struct Harness {
    world: FakeWorld,
    view: ClusterView,
    options: Options,
    shard: Rc<TableShard<FakeEnv>>,
    source: Rc<PeerSource<FakeEnv>>,
    servers: BTreeMap<NodeId, PeerServer<FakeEnv>>,
}

/// A world at day 1 where `replicas` hold `shard`; every non-`Initializing`
/// replica other than the origin serves peer copies. The origin's table
/// shard needs a peer copy. One copy stream, as the upstream fixtures.
fn harness(
    schema: TableSchema,
    shard: ShardId,
    replicas: &[(NodeId, ShardState)],
    quirks: &[Quirk],
) -> Harness {
    let world = FakeWorld::new(7);
    world.net().set_now(Timestamp::from_secs(NOW_SECS));
    let view = ClusterView {
        version: 1,
        placement: Placement {
            shards: [(shard, replicas.iter().copied().collect())]
                .into_iter()
                .collect(),
        },
        tables: [(schema.name.clone(), schema.clone())]
            .into_iter()
            .collect(),
    };
    world.net().cluster().set_view(view.clone());
    let options = Options {
        max_concurrent_streams_per_table_shard: 1,
        quirks: quirks.iter().copied().collect(),
        ..Options::default()
    };
    let servers = replicas
        .iter()
        .filter(|(host, state)| *host != ORIGIN && *state != ShardState::Initializing)
        .map(|(host, _)| (*host, world.serve(*host, options.clone())))
        .collect();
    let id = TableShardId::new(schema.name.clone(), shard);
    let table_shard = TableShard::new(world.host(ORIGIN), id, schema, true, StoreConfig::default());
    let source = PeerSource::new(
        world.host(ORIGIN),
        Rc::new(options.clone()),
        &view.placement,
    );
    Harness {
        world,
        view,
        options,
        shard: Rc::new(table_shard),
        source: Rc::new(source),
        servers,
    }
}

/// A fact table shard on the origin (`Initializing`) with peers A and B
/// `Available`, both holding fixture 1; the upstream log holds offsets
/// 0..20.
fn fact_harness(quirks: &[Quirk]) -> Harness {
    let h = harness(
        fact_schema(),
        FACT_SHARD,
        &[
            (ORIGIN, ShardState::Initializing),
            (A, ShardState::Available),
            (B, ShardState::Available),
        ],
        quirks,
    );
    seed_fact_peer(&h.peer(A));
    seed_fact_peer(&h.peer(B));
    h.world
        .net()
        .upstream()
        .push(fact_id(), (0..20).map(|o| rec(o, 1, 0)));
    h
}

impl Harness {
    fn origin(&self) -> FakeEnv {
        self.world.host(ORIGIN)
    }

    fn peer(&self, host: NodeId) -> FakeEnv {
        self.world.host(host)
    }

    /// Run one bootstrap to completion (and whatever it left running).
    fn bootstrap(&mut self) -> Result<(), BootstrapError> {
        let Harness {
            world,
            view,
            options,
            shard,
            source,
            ..
        } = self;
        let result = world.run(shard.bootstrap(source, ORIGIN, view, options));
        world.run_until_stalled();
        result
    }

    /// Start a bootstrap as a task, to step through it by hand.
    fn spawn_bootstrap(&self) -> FakeJoin<Result<(), BootstrapError>> {
        let (shard, source) = (Rc::clone(&self.shard), Rc::clone(&self.source));
        let (view, options) = (self.view.clone(), self.options.clone());
        self.world
            .spawn(async move { shard.bootstrap(&source, ORIGIN, &view, &options).await })
    }

    /// The order the sources are tried in under Q1 (seeded by the clock).
    fn clock_order(&self, sources: Vec<NodeId>) -> Vec<NodeId> {
        shuffle_sources(sources, self.origin().now().secs())
    }

    fn origin_writes(&self) -> Vec<MetaWrite> {
        self.origin()
            .metastore()
            .writes()
            .into_iter()
            .map(|(_, w)| w)
            .collect()
    }

    fn origin_file(&self, key: &FileKey) -> Option<Vec<u8>> {
        self.origin().disk().get(key)
    }
}

fn assert_failed_cleanly(h: &Harness) {
    assert_eq!(h.shard.state(), BootstrapState::NotStarted);
    assert!(
        h.shard.needs_peer_copy(),
        "needs-peer-copy cleared by a failed copy"
    );
}

// ------------------------------------------------ upstream fixtures ---

#[test]
fn fact_table_bootstraps_from_a_peer_and_preloads_byte_identical_vector_parties() {
    let mut h = fact_harness(&[Quirk::Q4]);
    assert_eq!(h.bootstrap(), Ok(()));
    assert_eq!(h.shard.state(), BootstrapState::Bootstrapped);
    assert!(!h.shard.needs_peer_copy());
    // Metadata first (Q4): commit, checkpoint, cutoff, backfill, batch.
    assert_eq!(
        h.origin_writes(),
        vec![
            MetaWrite::CommitOffset(Offset(20)),
            MetaWrite::CheckpointOffset(Offset(10)),
            MetaWrite::ArchivingCutoff(BATCH_VERSION),
            MetaWrite::BackfillProgress(RedoPosition {
                file: 10,
                offset: 10
            }),
            MetaWrite::BatchVersion {
                batch: BatchId(1),
                meta: batch_meta()
            },
        ]
    );
    let memory = h.shard.store().preloaded();
    for c in 0..3 {
        assert_eq!(h.origin_file(&fact_file(c)), Some(peer_bytes(c)));
        assert_eq!(*memory[&BatchId(1)][&ColumnId(c)], peer_bytes(c));
    }
    let details = h.shard.details();
    assert_eq!(details.stage(), Stage::Finished);
    assert!(details.source() == Some(A) || details.source() == Some(B));
    assert_eq!(
        details.batches()[&BatchId(1)],
        vec![CopyStatus::CopyFinished; 3]
    );
    // The copied batch (0..5) plus [10, 20) replayed from upstream (the
    // fixture's checkpoint claims 5..10 are archived; its batch has not them).
    let held = h.world.run(h.shard.store().held_rows_from_disk());
    let expected: Vec<Offset> = (0..5).chain(10..20).map(Offset).collect();
    assert_eq!(held.offsets, expected);
    // The session was ended on the source.
    let source = details.source().unwrap_or(A);
    assert!(h.servers[&source].sessions().is_empty());
}

#[test]
fn dimension_table_bootstraps_from_a_peer_snapshot() {
    let mut h = harness(
        dim_schema(),
        ShardId::DIMENSION,
        &[
            (ORIGIN, ShardState::Initializing),
            (A, ShardState::Available),
        ],
        &[Quirk::Q4],
    );
    seed_dim_peer(&h.peer(A));
    h.world
        .net()
        .upstream()
        .push(dim_id(), (0..20).map(|o| rec(o, 0, (o % 4) as u32)));
    assert_eq!(h.bootstrap(), Ok(()));
    assert_eq!(h.shard.state(), BootstrapState::Bootstrapped);
    assert_eq!(
        h.origin().metastore().get(&dim_id()).snapshot,
        snapshot_progress()
    );
    let memory = h.shard.store().preloaded();
    for c in 0..3 {
        let bytes = encode_vector_party(&dim_rows(), ColumnId(c));
        assert_eq!(
            h.origin_file(&snapshot_file(ColumnId(c))),
            Some(bytes.clone())
        );
        assert_eq!(*memory[&DIM_BATCH][&ColumnId(c)], bytes);
    }
    // Keys from the snapshot, upserted by the replay of [10, 20).
    let held = h.world.run(h.shard.store().held_rows_from_disk());
    assert_eq!(held.keys[&100], Offset(0));
    assert_eq!(held.keys[&3], Offset(19));
}

// ------------------------------------------------------ error exits ---

#[test]
fn a_second_bootstrap_while_one_runs_is_refused_and_changes_nothing() {
    let mut h = fact_harness(&[]);
    // Every source's first stream breaks: the copy sleeps before retrying.
    h.world.net().break_raw_fetches(A, 1);
    h.world.net().break_raw_fetches(B, 1);
    let first = h.spawn_bootstrap();
    h.world.run_until_stalled();
    assert_eq!(h.shard.state(), BootstrapState::Bootstrapping);
    let before = h.shard.details();
    assert_eq!(before.stage(), Stage::PeerCopy);
    assert_eq!(h.bootstrap(), Err(BootstrapError::AlreadyBootstrapping));
    assert_eq!(h.shard.state(), BootstrapState::Bootstrapping);
    assert_eq!(h.shard.details(), before);
    assert_eq!(h.world.run(first), Ok(()));
    assert_eq!(h.shard.state(), BootstrapState::Bootstrapped);
}

#[test]
fn bootstrap_fails_when_the_shard_is_not_in_the_topology_snapshot() {
    let mut h = fact_harness(&[]);
    h.view.placement.shards.clear();
    assert_eq!(
        h.bootstrap(),
        Err(BootstrapError::ShardNotInTopology(FACT_SHARD))
    );
    assert_failed_cleanly(&h);
}

#[test]
fn bootstrap_fails_when_no_source_can_be_borrowed() {
    let mut h = fact_harness(&[]);
    h.world.net().set_dial_fails(A, true);
    h.world.net().set_unhealthy(B, true);
    match h.bootstrap() {
        Err(BootstrapError::NoPeerBorrowed(e)) => {
            let mut hosts: Vec<NodeId> = e.reasons.iter().map(|(n, _)| *n).collect();
            hosts.sort();
            assert_eq!(hosts, vec![A, B]);
        }
        other => panic!("expected no peer borrowed, got {other:?}"),
    }
    assert_failed_cleanly(&h);
}

#[test]
fn bootstrap_fails_when_the_copy_fails_on_every_source() {
    let mut h = fact_harness(&[]);
    h.world.net().break_raw_fetches(A, 100);
    h.world.net().break_raw_fetches(B, 100);
    match h.bootstrap() {
        Err(BootstrapError::CopyFailed {
            source: CopyError::VectorParties(errors),
            ..
        }) => assert_eq!(errors.len(), 3),
        other => panic!("expected a copy failure, got {other:?}"),
    }
    assert_failed_cleanly(&h);
}

#[test]
fn bootstrap_fails_when_the_metadata_cannot_be_loaded() {
    let mut h = fact_harness(&[]);
    h.shard.needs_peer_copy.set(false);
    h.origin().metastore().set_failing(true);
    assert_eq!(
        h.bootstrap(),
        Err(BootstrapError::LoadMetadata(StoreError::Meta(
            crate::env::MetaError::Io
        )))
    );
    assert_eq!(h.shard.state(), BootstrapState::NotStarted);
}

#[test]
fn dimension_bootstrap_fails_when_its_snapshot_cannot_be_preloaded() {
    let mut h = harness(
        dim_schema(),
        ShardId::DIMENSION,
        &[(ORIGIN, ShardState::Available)],
        &[],
    );
    h.shard.needs_peer_copy.set(false);
    // Local metadata points at a snapshot whose files are gone.
    seed_dim_peer(&h.origin());
    let gone = snapshot_file(ColumnId(2));
    h.world
        .run(crate::env::Disk::delete(h.origin().disk(), &gone))
        .expect("delete");
    assert_eq!(
        h.bootstrap(),
        Err(BootstrapError::Preload(StoreError::SnapshotIncomplete {
            redo: SNAPSHOT_REDO,
            batch: DIM_BATCH,
            column: ColumnId(2),
        }))
    );
    assert_eq!(h.shard.state(), BootstrapState::NotStarted);
}

#[test]
fn bootstrap_fails_when_recovery_cannot_read_the_upstream_log() {
    let mut h = fact_harness(&[]);
    h.world.net().upstream().set_unavailable(true);
    assert_eq!(
        h.bootstrap(),
        Err(BootstrapError::Recovery(StoreError::Upstream(
            crate::env::UpstreamError::Unavailable
        )))
    );
    assert_eq!(h.shard.state(), BootstrapState::NotStarted);
    // The copy itself had succeeded.
    assert!(!h.shard.needs_peer_copy());
    // The retry does not copy again but still replays the copied range
    // from upstream: the local redo log never held it.
    h.world.net().upstream().set_unavailable(false);
    assert_eq!(h.bootstrap(), Ok(()));
    let held = h.world.run(h.shard.store().held_rows_from_disk());
    assert!(held.offsets.contains(&Offset(15)));
}

#[test]
fn bootstrap_without_peer_copy_recovers_from_the_local_store() {
    let mut h = fact_harness(&[]);
    h.shard.needs_peer_copy.set(false);
    seed_fact_peer(&h.origin());
    h.origin().metastore().set(
        fact_id(),
        ShardMeta {
            commit_offset: Offset(0),
            ..h.origin().metastore().get(&fact_id())
        },
    );
    assert_eq!(h.bootstrap(), Ok(()));
    assert_eq!(h.shard.details().source(), None);
    assert_eq!(h.shard.store().preloaded()[&BatchId(1)].len(), 3);
}

// ------------------------------------------------------------ quirks ---

/// Four origins bootstrap in the same second from the same eight sources.
fn first_sources(quirks: &[Quirk]) -> (Vec<NodeId>, Vec<NodeId>) {
    let sources: Vec<NodeId> = (10..18).map(NodeId).collect();
    let origins: Vec<NodeId> = (1..5).map(NodeId).collect();
    let mut replicas: Vec<(NodeId, ShardState)> = sources
        .iter()
        .map(|s| (*s, ShardState::Available))
        .collect();
    replicas.extend(origins.iter().map(|o| (*o, ShardState::Initializing)));
    let mut h = harness(fact_schema(), FACT_SHARD, &replicas, quirks);
    let mut chosen = Vec::new();
    for origin in &origins {
        let env = h.world.host(*origin);
        let shard = TableShard::new(
            env.clone(),
            fact_id(),
            fact_schema(),
            true,
            StoreConfig::default(),
        );
        let source = PeerSource::new(env, Rc::new(h.options.clone()), &h.view.placement);
        let (view, options) = (h.view.clone(), h.options.clone());
        let result = h
            .world
            .run(shard.bootstrap(&source, *origin, &view, &options));
        assert_eq!(result, Ok(()));
        chosen.push(shard.details().source().unwrap_or(*origin));
    }
    (chosen, h.clock_order(sources))
}

/// A copy from A whose first raw-data stream breaks after its first chunk,
/// starting at `now_secs`: the probes it reaches.
fn probes_of_a_copy_with_one_retry(now_secs: u64) -> Vec<String> {
    let mut h = fact_harness(&[]);
    h.world.net().set_now(Timestamp::from_secs(now_secs));
    h.world.net().break_raw_fetches(A, 1);
    h.world.net().break_raw_fetches(B, 1);
    let capture = Capture::default();
    assert_eq!(capture.run(|| h.bootstrap()), Ok(()));
    capture.probes()
}

#[test]
fn a_copy_retried_across_midnight_reaches_the_day_rollover_probe() {
    // The retry waits a second: from 23:59:59 of day 1 into day 2.
    let probes = probes_of_a_copy_with_one_retry(2 * DAY - 1);
    for p in [
        "raw_data_stream_broke_mid_file",
        "vector_party_retried",
        "day_rolled_over_during_copy",
    ] {
        assert!(probes.iter().any(|x| x == p), "{p} not in {probes:?}");
    }
    let probes = probes_of_a_copy_with_one_retry(NOW_SECS);
    assert!(
        !probes.iter().any(|x| x == "day_rolled_over_during_copy"),
        "{probes:?}"
    );
    assert!(probes.iter().any(|x| x == "vector_party_retried"));
}

#[test]
fn q1_on_every_host_bootstrapping_in_the_same_second_copies_from_the_same_source() {
    let (chosen, clock_order) = first_sources(&[Quirk::Q1]);
    assert!(chosen.iter().all(|c| *c == clock_order[0]), "{chosen:?}");
}

#[test]
fn q1_off_hosts_shuffle_their_sources_independently() {
    let (chosen, _) = first_sources(&[]);
    assert!(chosen.iter().any(|c| *c != chosen[0]), "{chosen:?}");
}

#[test]
fn q2_on_a_failed_copy_does_not_fall_over_to_the_next_source() {
    let mut h = fact_harness(&[Quirk::Q1, Quirk::Q2]);
    let order = h.clock_order(vec![A, B]);
    h.world.net().break_raw_fetches(order[0], 100);
    match h.bootstrap() {
        Err(BootstrapError::CopyFailed { host, .. }) => assert_eq!(host, order[0]),
        other => panic!("expected the copy from {} to fail, got {other:?}", order[0]),
    }
    assert_failed_cleanly(&h);
}

#[test]
fn q2_off_a_failed_copy_falls_over_to_the_next_source_with_a_fresh_session() {
    let mut h = fact_harness(&[Quirk::Q1]);
    let order = h.clock_order(vec![A, B]);
    h.world.net().break_raw_fetches(order[0], 100);
    assert_eq!(h.bootstrap(), Ok(()));
    assert_eq!(h.shard.details().source(), Some(order[1]));
    for c in 0..3 {
        assert_eq!(h.origin_file(&fact_file(c)), Some(peer_bytes(c)));
    }
    // Both sessions were ended.
    assert!(h.servers.values().all(|s| s.sessions().is_empty()));
}

/// A copy whose first two raw streams break (retries 1 s apart) while the
/// keep-alive (every 1.5 s, ttl 3 s) fails once at 1.5 s: the third
/// attempt at 2 s would succeed.
fn copy_across_a_keep_alive_loss(quirks: &[Quirk]) -> Result<(), BootstrapError> {
    let mut quirks = quirks.to_vec();
    quirks.push(Quirk::Q1);
    let mut h = fact_harness(&quirks);
    h.options.session_ttl = Duration::from_secs(3);
    let first = h.clock_order(vec![A, B])[0];
    h.world.net().break_raw_fetches(first, 2);
    let task = h.spawn_bootstrap();
    h.world.run_until_stalled();
    h.world.advance(Duration::from_secs(1));
    h.world.net().set_down(first, true);
    h.world.advance(Duration::from_millis(500));
    h.world.net().set_down(first, false);
    let result = h.world.run(task);
    if result.is_ok() {
        assert_eq!(h.shard.details().source(), Some(first));
    }
    result
}

#[test]
fn q3_on_the_copy_goes_on_after_a_keep_alive_failure() {
    assert_eq!(copy_across_a_keep_alive_loss(&[Quirk::Q3]), Ok(()));
}

#[test]
fn q3_off_a_keep_alive_failure_aborts_the_copy() {
    match copy_across_a_keep_alive_loss(&[Quirk::Q2]) {
        Err(BootstrapError::CopyFailed {
            source: CopyError::KeepAliveLost(KeepAliveFailure::Rpc(_)),
            ..
        }) => {}
        other => panic!("expected keep-alive loss, got {other:?}"),
    }
}

#[test]
fn q4_on_a_failed_copy_leaves_metadata_claiming_data_the_disk_lacks() {
    let mut h = fact_harness(&[Quirk::Q4]);
    h.world.net().break_raw_fetches(A, 100);
    h.world.net().break_raw_fetches(B, 100);
    assert!(h.bootstrap().is_err());
    let meta = h.origin().metastore().get(&fact_id());
    assert_eq!(meta.commit_offset, Offset(20));
    assert_eq!(meta.batches.get(&BatchId(1)), Some(&batch_meta()));
    assert_eq!(h.origin_file(&fact_file(0)), None);
}

#[test]
fn q4_off_data_is_synced_before_any_metadata_and_a_failed_copy_writes_none() {
    let mut h = fact_harness(&[]);
    assert_eq!(h.bootstrap(), Ok(()));
    assert_eq!(
        h.origin_writes(),
        vec![
            MetaWrite::BatchVersion {
                batch: BatchId(1),
                meta: batch_meta()
            },
            MetaWrite::CommitOffset(Offset(20)),
            MetaWrite::CheckpointOffset(Offset(10)),
            MetaWrite::ArchivingCutoff(BATCH_VERSION),
            MetaWrite::BackfillProgress(RedoPosition {
                file: 10,
                offset: 10
            }),
        ]
    );
    let mut h = fact_harness(&[]);
    h.world.net().break_raw_fetches(A, 100);
    h.world.net().break_raw_fetches(B, 100);
    assert!(h.bootstrap().is_err());
    assert!(h.origin_writes().is_empty());
    assert_eq!(h.origin().metastore().get(&fact_id()), ShardMeta::default());
}

/// One copy stream; column 0 cannot be read on either source, columns 1
/// and 2 copy fine after it.
fn copy_with_one_unreadable_vector_party(quirks: &[Quirk]) -> Harness {
    let mut h = fact_harness(quirks);
    h.peer(A).disk().fail_key(fact_file(0), DiskError::Io);
    h.peer(B).disk().fail_key(fact_file(0), DiskError::Io);
    let _ = h.bootstrap();
    h
}

#[test]
fn q5_on_a_later_success_hides_a_vector_party_that_was_never_copied() {
    let h = copy_with_one_unreadable_vector_party(&[Quirk::Q5]);
    assert_eq!(h.shard.state(), BootstrapState::Bootstrapped);
    assert!(!h.shard.needs_peer_copy());
    assert_eq!(h.origin_file(&fact_file(0)), None);
    let held = h.shard.store().held_rows(Day(1), |k| {
        h.origin()
            .disk()
            .get(k)
            .map(Into::into)
            .ok_or(DiskError::NotFound)
    });
    assert!(
        held.damaged
            .iter()
            .any(|d| d.column == ColumnId(0) && d.kind == DamageKind::Missing)
    );
    assert_eq!(held.batches[&BatchId(1)], Vec::<Offset>::new());
}

#[test]
fn q5_off_any_vector_party_failure_fails_the_copy() {
    let h = copy_with_one_unreadable_vector_party(&[]);
    assert_failed_cleanly(&h);
    assert_eq!(
        h.shard.details().status(BatchId(1), ColumnId(0)),
        CopyStatus::CopyNeeded
    );
}

/// The origin holds a stale, longer copy of column 0 under the final name
/// and a stale batch of day 0 from an earlier attempt.
fn copy_over_stale_files(quirks: &[Quirk]) -> Harness {
    let mut h = fact_harness(quirks);
    let longer: Vec<Record> = (0..8).map(|o| rec(o, 1, 0)).collect();
    let stale_batch = FileKey::VectorParty {
        shard: fact_id(),
        batch: BatchId(0),
        version: Cutoff(5),
        seq: 0,
        column: ColumnId(0),
    };
    let origin = h.origin();
    origin
        .disk()
        .put(fact_file(0), encode_vector_party(&longer, ColumnId(0)));
    origin.disk().put(stale_batch, vec![0; 16]);
    assert_eq!(h.bootstrap(), Ok(()));
    h
}

#[test]
fn q10_on_a_copy_over_stale_files_keeps_their_tails_and_stale_batches() {
    let h = copy_over_stale_files(&[Quirk::Q10]);
    let local = h.origin_file(&fact_file(0)).unwrap_or_default();
    assert_eq!(local.len(), 8 * 16);
    assert!(local.starts_with(&peer_bytes(0)));
    assert!(h.origin().disk().keys().iter().any(|k| matches!(
        k,
        FileKey::VectorParty {
            batch: BatchId(0),
            ..
        }
    )));
}

#[test]
fn q10_off_each_copy_starts_clean_and_renames_synced_files_into_place() {
    let h = copy_over_stale_files(&[]);
    assert_eq!(h.origin_file(&fact_file(0)), Some(peer_bytes(0)));
    let keys = h.origin().disk().keys();
    assert!(!keys.iter().any(|k| matches!(
        k,
        FileKey::VectorParty {
            batch: BatchId(0),
            ..
        }
    )));
    assert!(!keys.iter().any(|k| matches!(k, FileKey::Staging(_))));
}

/// The origin's own replica is `Available` in the snapshot (so not every
/// replica is `Initializing`) but no other host can be a source.
fn bootstrap_without_sources(quirks: &[Quirk]) -> (Harness, Result<(), BootstrapError>) {
    let mut h = harness(
        fact_schema(),
        FACT_SHARD,
        &[
            (ORIGIN, ShardState::Available),
            (B, ShardState::Initializing),
        ],
        quirks,
    );
    let result = h.bootstrap();
    (h, result)
}

#[test]
fn q12_on_no_source_is_taken_as_a_new_placement_and_the_copy_is_skipped() {
    let (h, result) = bootstrap_without_sources(&[Quirk::Q12]);
    assert_eq!(result, Ok(()));
    assert_eq!(h.shard.state(), BootstrapState::Bootstrapped);
    assert!(!h.shard.needs_peer_copy());
    assert_eq!(h.shard.details().source(), None);
}

#[test]
fn q12_off_no_source_fails_unless_every_replica_is_initializing() {
    let (h, result) = bootstrap_without_sources(&[]);
    assert!(
        matches!(
            result,
            Err(BootstrapError::NoSource {
                shard: FACT_SHARD,
                ..
            })
        ),
        "{result:?}"
    );
    assert_failed_cleanly(&h);
    // A brand-new placement: every replica initializing, nothing to copy.
    let mut h = harness(
        fact_schema(),
        FACT_SHARD,
        &[
            (ORIGIN, ShardState::Initializing),
            (B, ShardState::Initializing),
        ],
        &[],
    );
    assert_eq!(h.bootstrap(), Ok(()));
    assert!(!h.shard.needs_peer_copy());
}

#[test]
fn q7_on_a_failed_copy_leaves_its_session_on_the_source() {
    let mut h = fact_harness(&[Quirk::Q7, Quirk::Q2]);
    h.world.net().break_raw_fetches(A, 100);
    h.world.net().break_raw_fetches(B, 100);
    assert!(h.bootstrap().is_err());
    let open: usize = h.servers.values().map(|s| s.sessions().len()).sum();
    assert_eq!(open, 1);
}

#[test]
fn q7_off_a_failed_copy_ends_its_session() {
    let mut h = fact_harness(&[Quirk::Q2]);
    h.world.net().break_raw_fetches(A, 100);
    h.world.net().break_raw_fetches(B, 100);
    assert!(h.bootstrap().is_err());
    assert!(h.servers.values().all(|s| s.sessions().is_empty()));
}

#[test]
fn source_shuffle_is_a_pure_function_of_the_seed() {
    let hosts: Vec<NodeId> = (1..6).map(NodeId).collect();
    assert_eq!(
        shuffle_sources(hosts.clone(), 42),
        shuffle_sources(hosts.clone(), 42)
    );
    let mut sorted = shuffle_sources(hosts.clone(), 42);
    sorted.sort();
    assert_eq!(sorted, hosts);
}

/// Every raw stream breaks after its first chunk: the copy fails after
/// writing (but not syncing) every vector party.
fn failed_copy_files(quirks: &[Quirk]) -> Vec<FileKey> {
    let mut h = fact_harness(quirks);
    h.world.net().break_raw_fetches(A, 100);
    h.world.net().break_raw_fetches(B, 100);
    assert!(h.bootstrap().is_err());
    h.origin().disk().keys()
}

#[test]
fn q10_on_a_failed_attempt_leaves_unsynced_data_under_the_final_name() {
    let keys = failed_copy_files(&[Quirk::Q10]);
    assert!(keys.contains(&fact_file(0)));
}

#[test]
fn q10_off_a_failed_attempt_only_ever_writes_staging_files() {
    let keys = failed_copy_files(&[]);
    assert!(!keys.contains(&fact_file(0)));
    assert!(keys.contains(&fact_file(0).staging()));
}
