//! Unit tests of the store: ingestion, recovery, the four jobs (with the
//! token granted and refused), preload and the oracle's view.

use std::cell::Cell;

use crate::env::{Disk, DiskError, Env, FileBytes};
use crate::fake::{FakeEnv, FakeWorld};
use crate::model::{
    BatchMeta, ColumnSchema, Cutoff, FileKey, MetaWrite, Record, RedoPosition, SnapshotProgress,
    TableSchema, encode_vector_party,
};
use crate::types::{
    BatchId, ColumnId, Day, NodeId, Offset, ShardId, TableKind, TableShardId, Timestamp,
};

use super::*;

/// A token source that grants or refuses as told, counting the calls.
#[derive(Default)]
struct Tokens {
    refuse: Cell<bool>,
    acquired: Cell<u32>,
    released: Cell<u32>,
}

impl TokenSource for Tokens {
    fn acquire_token(&self, _: &TableShardId) -> bool {
        self.acquired.set(self.acquired.get() + 1);
        !self.refuse.get()
    }
    fn release_token(&self, _: &TableShardId) {
        self.released.set(self.released.get() + 1);
    }
}

fn refusing() -> Tokens {
    let t = Tokens::default();
    t.refuse.set(true);
    t
}

const DAY: u64 = 86_400;

fn schema(kind: TableKind, retention_days: u32, preloading_days: u32) -> TableSchema {
    TableSchema {
        name: "t".into(),
        kind,
        retention_days,
        columns: (0..2)
            .map(|c| ColumnSchema {
                id: ColumnId(c),
                deleted: false,
                preloading_days,
            })
            .collect(),
    }
}

fn fact_id() -> TableShardId {
    TableShardId::new("t", ShardId(1))
}

fn dim_id() -> TableShardId {
    TableShardId::new("t", ShardId::DIMENSION)
}

fn rec(offset: u64, day: i32, key: u32) -> Record {
    Record {
        offset: Offset(offset),
        day: Day(day),
        key,
    }
}

fn small_config() -> StoreConfig {
    StoreConfig {
        redo_file_records: 4,
        snapshot_batch_rows: 2,
        ..StoreConfig::default()
    }
}

struct Fixture {
    world: FakeWorld,
    env: FakeEnv,
    store: ShardStore<FakeEnv>,
}

fn fixture(id: TableShardId, schema: TableSchema, day: i32) -> Fixture {
    let world = FakeWorld::new(1);
    let env = world.host(NodeId(1));
    world
        .net()
        .set_now(Timestamp::from_secs(day as u64 * DAY + 60));
    let store = ShardStore::new(env.clone(), id, schema, small_config());
    Fixture { world, env, store }
}

impl Fixture {
    fn run<T>(&mut self, f: impl AsyncFnOnce(&ShardStore<FakeEnv>) -> T) -> T {
        let store = &self.store;
        self.world.run(f(store))
    }

    /// Push `rows` to the upstream log of `id` and ingest them.
    fn ingest(&mut self, id: TableShardId, rows: impl IntoIterator<Item = Record>) {
        self.world.net().upstream().push(id, rows);
        self.run(async |s| s.ingest(100).await).expect("ingest");
    }

    /// The rows the store holds on `today`, its files read from the disk
    /// as they are now.
    fn held(&self, today: Day) -> HeldRows {
        self.store.held_rows(today, |k| {
            self.env
                .disk()
                .get(k)
                .map(FileBytes::new)
                .ok_or(DiskError::NotFound)
        })
    }

    /// A new process on the same host: a fresh store of the same table
    /// shard (nothing in memory) that has read the metastore.
    fn restart(&mut self) {
        self.store = ShardStore::new(
            self.env.clone(),
            self.store.id().clone(),
            self.store.schema().clone(),
            small_config(),
        );
        self.run(async |s| s.load_metadata().await).expect("load");
    }

    fn redo_key(&self, file: i64) -> FileKey {
        FileKey::RedoLog {
            shard: self.store.id().clone(),
            file,
        }
    }

    fn set_day(&self, day: i32) {
        self.world
            .net()
            .set_now(Timestamp::from_secs(day as u64 * DAY + 60));
    }

    fn files(&self) -> Vec<FileKey> {
        self.env.disk().keys()
    }

    fn vector_parties(&self) -> Vec<(BatchId, Cutoff, u32, ColumnId)> {
        self.files()
            .into_iter()
            .filter_map(|k| match k {
                FileKey::VectorParty {
                    batch,
                    version,
                    seq,
                    column,
                    ..
                } => Some((batch, version, seq, column)),
                _ => None,
            })
            .collect()
    }

    fn redo_files(&self) -> Vec<i64> {
        self.files()
            .into_iter()
            .filter_map(|k| match k {
                FileKey::RedoLog { file, .. } => Some(file),
                _ => None,
            })
            .collect()
    }

    fn meta_writes(&self) -> Vec<MetaWrite> {
        self.env
            .metastore()
            .writes()
            .into_iter()
            .map(|(_, w)| w)
            .collect()
    }
}

fn cutoff_of(day: i32) -> Cutoff {
    Cutoff((day as u64 * DAY) as u32)
}

#[test]
fn ingestion_syncs_the_redo_log_before_advancing_the_commit_offset() {
    let mut f = fixture(fact_id(), schema(TableKind::Fact, 10, 0), 5);
    let up = f.world.net().upstream().clone();
    up.push(fact_id(), (0..6).map(|o| rec(o, 5, 0)));
    let n = f.run(async |s| s.ingest(100).await).expect("ingest");
    assert_eq!(n, 6);
    // Two redo files of at most 4 records, named by their first offset,
    // durable before the commit offset was written.
    assert_eq!(f.redo_files(), vec![0, 4]);
    let first = FileKey::RedoLog {
        shard: fact_id(),
        file: 0,
    };
    assert_eq!(f.env.disk().durable(&first).map(|b| b.len()), Some(4 * 16));
    assert_eq!(f.meta_writes(), vec![MetaWrite::CommitOffset(Offset(6))]);
    assert_eq!(f.store.commit_offset(), Offset(6));
    let held = f.held(Day(5));
    assert_eq!(held.live, (0..6).map(Offset).collect::<Vec<_>>());
    // At the head of the log nothing more is ingested.
    assert_eq!(f.run(async |s| s.ingest(100).await), Ok(0));
}

#[test]
fn ingestion_failure_leaves_the_commit_offset_and_starts_a_fresh_redo_file() {
    let mut f = fixture(fact_id(), schema(TableKind::Fact, 10, 0), 5);
    f.ingest(fact_id(), (0..2).map(|o| rec(o, 5, 0)));
    let up = f.world.net().upstream().clone();
    up.push(fact_id(), (2..4).map(|o| rec(o, 5, 0)));
    let redo0 = FileKey::RedoLog {
        shard: fact_id(),
        file: 0,
    };
    f.env.disk().fail_key(redo0.clone(), DiskError::Io);
    assert!(matches!(
        f.run(async |s| s.ingest(100).await),
        Err(StoreError::Disk { .. })
    ));
    assert_eq!(f.store.commit_offset(), Offset(2));
    f.env.disk().heal(&redo0);
    assert_eq!(f.run(async |s| s.ingest(100).await), Ok(2));
    assert_eq!(f.redo_files(), vec![0, 2]);
}

#[test]
fn archiving_moves_old_live_rows_into_one_batch_per_day_at_the_new_cutoff() {
    let mut f = fixture(fact_id(), schema(TableKind::Fact, 10, 0), 3);
    f.ingest(
        fact_id(),
        [
            rec(0, 1, 0),
            rec(1, 2, 0),
            rec(2, 3, 0),
            rec(3, 1, 0),
            rec(4, 3, 0),
        ],
    );
    let tokens = Tokens::default();
    let report = f.run(async |s| s.archive(&tokens).await).expect("archive");
    assert_eq!(report.batches, 2);
    assert_eq!(report.token, Some(true));
    let meta = f.store.meta();
    assert_eq!(meta.cutoff, cutoff_of(3));
    assert_eq!(
        meta.batches.get(&BatchId(1)),
        Some(&BatchMeta {
            version: cutoff_of(3),
            seq: 0,
            size: 2
        })
    );
    assert_eq!(meta.batches.get(&BatchId(2)).map(|m| m.size), Some(1));
    // The oldest row still only in memory is offset 2 (day 3).
    assert_eq!(meta.checkpoint_offset, Offset(2));
    let day1 = FileKey::VectorParty {
        shard: fact_id(),
        batch: BatchId(1),
        version: cutoff_of(3),
        seq: 0,
        column: ColumnId(1),
    };
    assert_eq!(
        f.env.disk().durable(&day1),
        Some(encode_vector_party(
            &[rec(0, 1, 0), rec(3, 1, 0)],
            ColumnId(1)
        ))
    );
    // Files synced, then batch versions, cutoff and checkpoint published.
    let writes = f.meta_writes();
    assert!(matches!(writes[1], MetaWrite::BatchVersion { .. }));
    assert!(matches!(writes[2], MetaWrite::BatchVersion { .. }));
    assert_eq!(writes[3], MetaWrite::ArchivingCutoff(cutoff_of(3)));
    assert_eq!(writes[4], MetaWrite::CheckpointOffset(Offset(2)));
    let held = f.held(Day(3));
    assert_eq!(held.offsets, (0..5).map(Offset).collect::<Vec<_>>());
    assert_eq!(held.live, vec![Offset(2), Offset(4)]);
    assert!(held.damaged.is_empty());
    // The cutoff does not advance again the same day.
    assert_eq!(
        f.run(async |s| s.archive(&tokens).await),
        Ok(JobReport::default())
    );
}

/// Ingest 6 rows of day 1 (redo files 0 and 4), then archive on day 2: the
/// checkpoint passes them all, so redo file 0 is wholly below it.
fn archived_day_one(f: &mut Fixture, tokens: &Tokens) -> JobReport {
    f.ingest(fact_id(), (0..6).map(|o| rec(o, 1, 0)));
    f.set_day(2);
    f.run(async |s| s.archive(tokens).await).expect("archive")
}

#[test]
fn archiving_deletes_redo_logs_below_the_checkpoint_with_the_token() {
    let mut f = fixture(fact_id(), schema(TableKind::Fact, 10, 0), 1);
    let tokens = Tokens::default();
    let report = archived_day_one(&mut f, &tokens);
    assert_eq!(f.store.meta().checkpoint_offset, Offset(6));
    assert_eq!(report.token, Some(true));
    assert_eq!(report.deleted, 1);
    assert_eq!(f.redo_files(), vec![4]);
    assert_eq!((tokens.acquired.get(), tokens.released.get()), (1, 1));
}

#[test]
fn archiving_keeps_old_files_when_the_token_is_refused() {
    let mut f = fixture(fact_id(), schema(TableKind::Fact, 10, 0), 1);
    let tokens = refusing();
    let report = archived_day_one(&mut f, &tokens);
    // Published anyway (publish first, then ask), but nothing deleted.
    assert_eq!(f.store.meta().cutoff, cutoff_of(2));
    assert_eq!(report.token, Some(false));
    assert_eq!(f.redo_files(), vec![0, 4]);
    assert_eq!(tokens.released.get(), 0);
}

/// Day 1 archived at cutoff day 2; then a late row of day 1 arrives.
fn late_row_after_archiving(f: &mut Fixture) {
    archived_day_one(f, &Tokens::default());
    f.ingest(fact_id(), [rec(6, 1, 0), rec(7, 2, 0)]);
}

#[test]
fn backfill_merges_late_rows_into_their_batch_as_the_next_sequence() {
    let mut f = fixture(fact_id(), schema(TableKind::Fact, 10, 0), 1);
    late_row_after_archiving(&mut f);
    let tokens = Tokens::default();
    let report = f
        .run(async |s| s.backfill(&tokens).await)
        .expect("backfill");
    assert_eq!(report.batches, 1);
    let meta = f.store.meta();
    assert_eq!(
        meta.batches.get(&BatchId(1)),
        Some(&BatchMeta {
            version: cutoff_of(2),
            seq: 1,
            size: 7
        })
    );
    assert_eq!(redo_offset(meta.backfill), Offset(8));
    // Offset 7 (day 2) is still live.
    assert_eq!(meta.checkpoint_offset, Offset(7));
    // The seq-0 files were deleted with the token; seq 1 holds all 7 rows.
    assert_eq!(
        f.vector_parties(),
        vec![
            (BatchId(1), cutoff_of(2), 1, ColumnId(0)),
            (BatchId(1), cutoff_of(2), 1, ColumnId(1)),
        ]
    );
    let held = f.held(Day(2));
    assert_eq!(held.batches.get(&BatchId(1)).map(Vec::len), Some(7));
    assert_eq!(held.offsets, (0..8).map(Offset).collect::<Vec<_>>());
    let writes = f.meta_writes();
    let n = writes.len();
    assert!(matches!(
        writes[n - 3],
        MetaWrite::BatchVersion {
            batch: BatchId(1),
            meta: BatchMeta { seq: 1, .. }
        }
    ));
    assert!(matches!(writes[n - 2], MetaWrite::BackfillProgress(_)));
    assert_eq!(writes[n - 1], MetaWrite::CheckpointOffset(Offset(7)));
}

#[test]
fn backfill_keeps_the_old_sequence_files_when_the_token_is_refused() {
    let mut f = fixture(fact_id(), schema(TableKind::Fact, 10, 0), 1);
    late_row_after_archiving(&mut f);
    let tokens = refusing();
    let report = f
        .run(async |s| s.backfill(&tokens).await)
        .expect("backfill");
    assert_eq!(report.token, Some(false));
    assert_eq!(
        f.store.meta().batches.get(&BatchId(1)).map(|m| m.seq),
        Some(1)
    );
    let seqs: Vec<u32> = f.vector_parties().iter().map(|v| v.2).collect();
    assert_eq!(seqs, vec![0, 0, 1, 1]);
    // A later run with the token cleans up what was left.
    let tokens = Tokens::default();
    f.ingest(fact_id(), [rec(8, 1, 0)]);
    f.run(async |s| s.backfill(&tokens).await)
        .expect("backfill");
    let seqs: Vec<u32> = f.vector_parties().iter().map(|v| v.2).collect();
    assert_eq!(seqs, vec![2, 2]);
}

/// Batches of days 1 and 5 on disk, retention 3 days, today 6.
fn with_expired_batch() -> Fixture {
    let f = fixture(fact_id(), schema(TableKind::Fact, 3, 0), 6);
    for day in [1, 5] {
        let meta = BatchMeta {
            version: cutoff_of(6),
            seq: 0,
            size: 1,
        };
        f.env.metastore().apply(
            &fact_id(),
            MetaWrite::BatchVersion {
                batch: BatchId(day),
                meta,
            },
        );
        for c in 0..2 {
            f.env.disk().put(
                FileKey::VectorParty {
                    shard: fact_id(),
                    batch: BatchId(day),
                    version: cutoff_of(6),
                    seq: 0,
                    column: ColumnId(c),
                },
                encode_vector_party(&[rec(day as u64, day, 0)], ColumnId(c)),
            );
        }
    }
    f
}

#[test]
fn purge_drops_batches_beyond_retention_with_the_token() {
    let mut f = with_expired_batch();
    f.run(async |s| s.load_metadata().await).expect("load");
    let tokens = Tokens::default();
    let report = f.run(async |s| s.purge(&tokens).await).expect("purge");
    assert_eq!(
        (report.batches, report.token, report.deleted),
        (1, Some(true), 2)
    );
    assert_eq!(f.meta_writes(), vec![MetaWrite::DeleteBatch(BatchId(1))]);
    let days: Vec<BatchId> = f.vector_parties().iter().map(|v| v.0).collect();
    assert_eq!(days, vec![BatchId(5), BatchId(5)]);
    assert_eq!(tokens.released.get(), 1);
}

#[test]
fn purge_asks_first_and_drops_nothing_when_the_token_is_refused() {
    let mut f = with_expired_batch();
    f.run(async |s| s.load_metadata().await).expect("load");
    let tokens = refusing();
    let report = f.run(async |s| s.purge(&tokens).await).expect("purge");
    assert_eq!(report.token, Some(false));
    assert!(f.meta_writes().is_empty());
    assert_eq!(f.vector_parties().len(), 4);
}

#[test]
fn snapshot_writes_every_key_and_replaces_the_older_snapshot_with_the_token() {
    let mut f = fixture(dim_id(), schema(TableKind::Dimension, 0, 0), 1);
    f.ingest(dim_id(), [rec(0, 1, 7), rec(1, 1, 3), rec(2, 1, 7)]);
    let tokens = Tokens::default();
    let report = f
        .run(async |s| s.snapshot(&tokens).await)
        .expect("snapshot");
    // Keys 3 and 7 fit one batch of two rows.
    assert_eq!(report.batches, 1);
    let first = f.store.meta().snapshot;
    assert_eq!(
        first,
        SnapshotProgress {
            redo: RedoPosition { file: 0, offset: 3 },
            last_batch: BatchId(i32::MIN),
            last_batch_size: 2,
        }
    );
    assert_eq!(f.store.meta().checkpoint_offset, Offset(3));
    let key_file = FileKey::Snapshot {
        shard: dim_id(),
        redo: first.redo,
        batch: BatchId(i32::MIN),
        column: DIMENSION_KEY_COLUMN,
    };
    assert_eq!(
        f.env.disk().durable(&key_file),
        Some(encode_key_party(&[(3, Offset(1)), (7, Offset(2))]))
    );
    // Nothing new: no second snapshot.
    assert_eq!(
        f.run(async |s| s.snapshot(&tokens).await),
        Ok(JobReport::default())
    );
    f.ingest(dim_id(), [rec(3, 1, 9), rec(4, 1, 1)]);
    let report = f
        .run(async |s| s.snapshot(&tokens).await)
        .expect("snapshot");
    assert_eq!(report.batches, 2);
    let redos: std::collections::BTreeSet<RedoPosition> = f
        .files()
        .into_iter()
        .filter_map(|k| match k {
            FileKey::Snapshot { redo, .. } => Some(redo),
            _ => None,
        })
        .collect();
    assert_eq!(
        redos.into_iter().collect::<Vec<_>>(),
        vec![f.store.meta().snapshot.redo]
    );
    // Redo file 0 (offsets 0..4) is wholly below checkpoint 5.
    assert_eq!(f.redo_files(), vec![4]);
}

#[test]
fn snapshot_keeps_the_older_snapshot_when_the_token_is_refused() {
    let mut f = fixture(dim_id(), schema(TableKind::Dimension, 0, 0), 1);
    f.ingest(dim_id(), [rec(0, 1, 7)]);
    f.run(async |s| s.snapshot(&Tokens::default()).await)
        .expect("snapshot");
    f.ingest(dim_id(), [rec(1, 1, 8)]);
    let tokens = refusing();
    let report = f
        .run(async |s| s.snapshot(&tokens).await)
        .expect("snapshot");
    assert_eq!(report.token, Some(false));
    let snapshots = f
        .files()
        .into_iter()
        .filter(|k| matches!(k, FileKey::Snapshot { .. }))
        .count();
    // Two snapshots of one batch, each with 2 columns and the key column.
    assert_eq!(snapshots, 6);
}

#[test]
fn restart_recovers_live_and_late_rows_from_the_local_redo_log() {
    let mut f = fixture(fact_id(), schema(TableKind::Fact, 10, 0), 1);
    late_row_after_archiving(&mut f);
    f.env.disk().crash();
    f.restart();
    let n = f.run(async |s| s.recover(false).await).expect("recover");
    // Checkpoint 6: offsets 6 (late, day 1) and 7 (live, day 2).
    assert_eq!(n, 2);
    let held = f.held(Day(2));
    assert_eq!(held.offsets, (0..8).map(Offset).collect::<Vec<_>>());
    assert_eq!(held.live, vec![Offset(6), Offset(7)]);
    // Ingestion resumes at the commit offset in a fresh redo file.
    let up = f.world.net().upstream().clone();
    up.push(fact_id(), [rec(8, 2, 0)]);
    assert_eq!(f.run(async |s| s.ingest(100).await), Ok(1));
    assert!(f.redo_files().contains(&8));
}

#[test]
fn a_leftover_redo_file_of_a_failed_append_is_dropped_before_a_fresh_file_begins() {
    let mut f = fixture(fact_id(), schema(TableKind::Fact, 10, 0), 5);
    f.ingest(fact_id(), (0..3).map(|o| rec(o, 5, 0)));
    // An append of 3..6 filled file 0 and began file 4, whose sync failed;
    // a torn crash kept what it held. The commit offset stayed at 3.
    let mut leftover = Vec::new();
    super::codec::encode_redo(&[rec(4, 5, 0), rec(5, 5, 0)], &mut leftover);
    f.env.disk().put(f.redo_key(4), leftover);
    f.restart();
    assert_eq!(f.run(async |s| s.recover(false).await), Ok(3));
    f.ingest(fact_id(), (3..10).map(|o| rec(o, 5, 0)));
    // Ingestion began file 3 and dropped file 4 first: left in place, it
    // would pass for the holder of 4..7, which file 3 holds, and purge
    // would take file 3 (and its records 4..7) once the checkpoint passed 4.
    assert_eq!(f.redo_files(), vec![0, 3, 7]);
    f.restart();
    assert_eq!(f.run(async |s| s.recover(false).await), Ok(10));
}

#[test]
fn recovery_that_finds_a_hole_in_the_redo_log_replays_from_the_upstream_log() {
    let mut f = fixture(fact_id(), schema(TableKind::Fact, 10, 0), 5);
    f.ingest(fact_id(), (0..10).map(|o| rec(o, 5, 0)));
    assert_eq!(f.redo_files(), vec![0, 4, 8]);
    // Committed records 4..8 are lost from the local log.
    f.world
        .run(f.env.disk().delete(&f.redo_key(4)))
        .expect("delete");
    f.restart();
    assert_eq!(f.run(async |s| s.recover(false).await), Ok(10));
    assert_eq!(f.held(Day(5)).live, (0..10).map(Offset).collect::<Vec<_>>());
    // The local log is whole again, so the next restart recovers locally.
    assert_eq!(f.redo_files(), vec![0, 4, 8]);
    let file4 = f.env.disk().get(&f.redo_key(4)).expect("file 4");
    let offsets: Vec<Offset> = super::codec::decode_redo(&file4)
        .iter()
        .map(|r| r.offset)
        .collect();
    assert_eq!(offsets, (4..8).map(Offset).collect::<Vec<_>>());
}

#[test]
fn recovery_after_a_peer_copy_replays_the_upstream_log_into_the_local_redo_log() {
    let mut f = fixture(fact_id(), schema(TableKind::Fact, 10, 0), 3);
    let up = f.world.net().upstream().clone();
    up.push(fact_id(), (0..5).map(|o| rec(o, 3, 0)));
    f.env.metastore().set(
        fact_id(),
        crate::model::ShardMeta {
            commit_offset: Offset(4),
            checkpoint_offset: Offset(2),
            ..Default::default()
        },
    );
    f.run(async |s| s.load_metadata().await).expect("load");
    assert_eq!(f.run(async |s| s.recover(true).await), Ok(2));
    assert_eq!(f.redo_files(), vec![2]);
    let held = f.held(Day(3));
    assert_eq!(held.live, vec![Offset(2), Offset(3)]);
    // A log that ends before the commit offset fails the recovery.
    f.env.metastore().set(
        fact_id(),
        crate::model::ShardMeta {
            commit_offset: Offset(9),
            checkpoint_offset: Offset(2),
            ..Default::default()
        },
    );
    f.run(async |s| s.load_metadata().await).expect("load");
    assert_eq!(
        f.run(async |s| s.recover(true).await),
        Err(StoreError::ReplayShort {
            reached: Offset(5),
            commit: Offset(9)
        })
    );
}

#[test]
fn preload_loads_the_fact_batches_of_the_preloading_window() {
    let mut f = with_expired_batch();
    // Columns preload 2 days: (4, 6] holds day 5, not day 1.
    f.store = ShardStore::new(
        f.env.clone(),
        fact_id(),
        schema(TableKind::Fact, 0, 2),
        small_config(),
    );
    f.run(async |s| s.load_metadata().await).expect("load");
    assert_eq!(f.run(async |s| s.preload().await), Ok(2));
    let mem = f.store.preloaded();
    assert_eq!(mem.keys().copied().collect::<Vec<_>>(), vec![BatchId(5)]);
    assert_eq!(
        *mem[&BatchId(5)][&ColumnId(1)],
        encode_vector_party(&[rec(5, 5, 0)], ColumnId(1))
    );
}

#[test]
fn dimension_preload_fails_when_a_snapshot_column_is_missing() {
    let mut f = fixture(dim_id(), schema(TableKind::Dimension, 0, 0), 1);
    f.ingest(dim_id(), [rec(0, 1, 7), rec(1, 1, 3)]);
    f.run(async |s| s.snapshot(&Tokens::default()).await)
        .expect("snapshot");
    let snap = f.store.meta().snapshot;
    // A fresh store loads the snapshot and rebuilds the keys.
    f.store = ShardStore::new(
        f.env.clone(),
        dim_id(),
        schema(TableKind::Dimension, 0, 0),
        small_config(),
    );
    f.run(async |s| s.load_metadata().await).expect("load");
    assert_eq!(f.run(async |s| s.preload().await), Ok(2));
    let held = f.store.held_rows(Day(1), |_| Err(DiskError::NotFound));
    assert_eq!(
        held.keys.into_iter().collect::<Vec<_>>(),
        vec![(3, Offset(1)), (7, Offset(0))]
    );
    let column1 = FileKey::Snapshot {
        shard: dim_id(),
        redo: snap.redo,
        batch: snap.last_batch,
        column: ColumnId(1),
    };
    f.world.run(f.env.disk().delete(&column1)).expect("delete");
    f.run(async |s| s.load_metadata().await).expect("load");
    assert_eq!(
        f.run(async |s| s.preload().await),
        Err(StoreError::SnapshotIncomplete {
            redo: snap.redo,
            batch: snap.last_batch,
            column: ColumnId(1)
        })
    );
}

#[test]
fn held_rows_reports_a_missing_vector_party_and_drops_its_rows() {
    let mut f = with_expired_batch();
    f.run(async |s| s.load_metadata().await).expect("load");
    let gone = FileKey::VectorParty {
        shard: fact_id(),
        batch: BatchId(5),
        version: cutoff_of(6),
        seq: 0,
        column: ColumnId(0),
    };
    let held = f.store.held_rows(Day(6), |k| {
        if *k == gone {
            Err(DiskError::NotFound)
        } else {
            f.env
                .disk()
                .get(k)
                .map(FileBytes::new)
                .ok_or(DiskError::NotFound)
        }
    });
    // Day 1 is beyond retention; day 5 lost column 0, so holds no row.
    assert!(held.offsets.is_empty());
    assert_eq!(
        held.damaged,
        vec![DamagedVectorParty {
            batch: BatchId(5),
            column: ColumnId(0),
            kind: DamageKind::Missing
        },]
    );
}

#[test]
fn held_rows_keeps_only_the_rows_every_column_of_a_batch_holds() {
    let mut f = fixture(fact_id(), schema(TableKind::Fact, 10, 0), 1);
    archived_day_one(&mut f, &Tokens::default());
    let column = |c: u32| FileKey::VectorParty {
        shard: fact_id(),
        batch: BatchId(1),
        version: cutoff_of(2),
        seq: 0,
        column: ColumnId(c),
    };
    let whole = f.held(Day(2));
    assert_eq!(whole.offsets, (0..6).map(Offset).collect::<Vec<_>>());
    assert!(whole.damaged.is_empty());
    // Column 0 lost the row of offset 3 (the fourth, ROW_BYTES each).
    let row = crate::model::ROW_BYTES;
    let held = f.store.held_rows(Day(2), |k| {
        let mut bytes = f.env.disk().get(k).ok_or(DiskError::NotFound)?;
        if *k == column(0) {
            bytes.drain(3 * row..4 * row);
        }
        Ok(bytes.into())
    });
    let without_3: Vec<Offset> = [0, 1, 2, 4, 5].map(Offset).to_vec();
    assert_eq!(held.offsets, without_3);
    assert_eq!(held.batches.get(&BatchId(1)), Some(&without_3));
    // Every column but 0 holds the union, so only column 0 differs.
    assert_eq!(
        held.damaged,
        vec![DamagedVectorParty {
            batch: BatchId(1),
            column: ColumnId(0),
            kind: DamageKind::RowsDiffer
        }]
    );
}

#[test]
fn held_rows_are_the_rows_within_retention_below_the_commit_offset() {
    let mut f = fixture(fact_id(), schema(TableKind::Fact, 2, 0), 10);
    f.ingest(fact_id(), [rec(0, 10, 0), rec(1, 5, 0), rec(2, 9, 0)]);
    let held = f.held(Day(10));
    assert_eq!(held.commit_offset, Offset(3));
    // Day 5 is beyond the two days kept on day 10.
    assert_eq!(held.offsets, vec![Offset(0), Offset(2)]);
    assert_eq!(held.live, held.offsets);
}
