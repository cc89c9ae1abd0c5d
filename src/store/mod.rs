//! The data of one table shard on one host (docs/MODEL.md §1): the live store
//! fed by ingestion, the archive batches and snapshots on disk, the metadata
//! in the metastore, and the background jobs that move data between them
//! (archiving, backfill, purge, snapshot). Bootstrap uses it to preload and
//! recover; the simulator's oracle reads what it holds through [`HeldRows`].
//!
//! What it models: every durable step goes through the [`Env`] seams in the
//! order upstream takes it (write files, sync, publish metadata, then ask for
//! a token and delete what became obsolete), so crashes and faults land at
//! the same points as upstream's. What it does not model: real columnar
//! encodings, compression, primary-key indexes or query memory limits. Row
//! content is the synthetic `(offset, value)` encoding of [`crate::model`].
//!
//! Concurrency: all work on one store (ingestion, jobs, recovery, purge) is
//! serialised by one async lock, so two jobs never rewrite the same batch at
//! once; memory is in a `RefCell` that is never borrowed across an `.await`.
//!
//! Layout: `codec` (redo and key encodings), `ingest` (ingestion and
//! recovery), `jobs` (archiving, backfill, purge, snapshot), `merge`
//! (merging a batch's vector-party file with new rows by offset), `preload`
//! (loading archive data into memory), `rows` (rows held in memory by
//! offset), `view` (what the oracle reads).

mod codec;
mod ingest;
mod jobs;
mod merge;
mod preload;
mod rows;
mod view;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::BTreeMap;

use futures::lock::Mutex;
use rows::OffsetRows;
use thiserror::Error;

use crate::env::{
    Disk, DiskError, Env, FileBytes, MetaError, MetaStore, OpenMode, UpstreamError, WriteFile,
};
use crate::model::{Cutoff, FileKey, MetaWrite, RedoPosition, ShardMeta, TableSchema};
use crate::types::{BatchId, ColumnId, Day, Offset, TableKind, TableShardId};

pub use codec::{decode_key_party, encode_key_party};
pub use jobs::JobReport;
pub use view::{DamageKind, DamagedVectorParty, HeldRows};

/// The column id under which a dimension snapshot stores each row's key, so
/// that a snapshot (local or copied from a peer) can rebuild the key → row
/// map. Upstream keeps the primary-key columns among the table's columns; we
/// keep the schema's columns synthetic and add this one. It is beyond any
/// schema's column count, so progress details ignore it.
pub const DIMENSION_KEY_COLUMN: ColumnId = ColumnId(u32::MAX);

/// Where a job asks for permission to delete files: the host's peer-data
/// server, which refuses while a copy session of the table shard is open
/// (docs/MODEL.md §4). A trait so the store does not depend on the server
/// module.
pub trait TokenSource {
    /// Whether the job may delete files of `shard` now.
    fn acquire_token(&self, shard: &TableShardId) -> bool;
    /// Hand the token back (upstream: a no-op, quirk Q9).
    fn release_token(&self, shard: &TableShardId);
}

impl<T: TokenSource + ?Sized> TokenSource for std::rc::Rc<T> {
    fn acquire_token(&self, shard: &TableShardId) -> bool {
        (**self).acquire_token(shard)
    }
    fn release_token(&self, shard: &TableShardId) {
        (**self).release_token(shard)
    }
}

/// Tunables of a store. The defaults keep files small enough that a
/// simulated day produces several redo files and snapshot batches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// Archiving cutoff = start of (today − `archive_lag_days`) (default 0:
    /// everything before today is archived).
    pub archive_lag_days: u32,
    /// Records per redo-log file before ingestion starts a new one (256).
    pub redo_file_records: u64,
    /// Rows per batch of a dimension snapshot (256).
    pub snapshot_batch_rows: usize,
    /// Records asked from the upstream log per read (1024).
    pub upstream_read_max: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            archive_lag_days: 0,
            redo_file_records: 256,
            snapshot_batch_rows: 256,
            upstream_read_max: 1024,
        }
    }
}

/// Errors of the store, named by the seam that failed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("disk error on {key:?}: {source}")]
    Disk { key: FileKey, source: DiskError },
    #[error("metastore error: {0}")]
    Meta(#[from] MetaError),
    #[error("upstream log error: {0}")]
    Upstream(#[from] UpstreamError),
    #[error("vector party {key:?} has a torn tail of {tail} bytes")]
    TornVectorParty { key: FileKey, tail: usize },
    #[error("upstream log ended at {reached} before the commit offset {commit}")]
    ReplayShort { reached: Offset, commit: Offset },
    #[error("snapshot at {redo:?} lacks batch {batch} column {column}")]
    SnapshotIncomplete {
        redo: RedoPosition,
        batch: BatchId,
        column: ColumnId,
    },
}

/// In-memory vector parties: batch → column → the file's bytes.
pub type VectorParties = BTreeMap<BatchId, BTreeMap<ColumnId, FileBytes>>;

/// Everything the store keeps in memory. Lost on restart.
#[derive(Debug, Default)]
struct Memory {
    /// Mirror of the metastore after every write this store made.
    meta: ShardMeta,
    /// Fact: live rows at or after the cutoff, not yet archived.
    live: OffsetRows,
    /// Fact: rows whose event day is before the cutoff, waiting for backfill.
    late: OffsetRows,
    /// Dimension: the latest row (its offset) per key.
    keys: BTreeMap<u32, Offset>,
    /// Vector parties loaded by preload (and kept current by the jobs).
    preloaded: VectorParties,
    /// The redo file ingestion appends to; `None` until the first append
    /// after a start, recovery or failure (a fresh file is then begun, so a
    /// torn tail is never followed by new records).
    redo: Option<RedoCursor>,
}

#[derive(Clone, Copy, Debug)]
struct RedoCursor {
    file: i64,
    records: u64,
}

/// The data of one table shard on one host.
pub struct ShardStore<E: Env> {
    env: E,
    id: TableShardId,
    schema: TableSchema,
    config: StoreConfig,
    mem: RefCell<Memory>,
    /// Serialises ingestion, jobs, recovery and purge of this shard.
    work: Mutex<()>,
}

impl<E: Env> ShardStore<E> {
    /// An empty store; call [`ShardStore::load_metadata`] to read what the
    /// metastore holds.
    pub fn new(env: E, id: TableShardId, schema: TableSchema, config: StoreConfig) -> Self {
        ShardStore {
            env,
            id,
            schema,
            config,
            mem: RefCell::new(Memory::default()),
            work: Mutex::new(()),
        }
    }

    pub fn id(&self) -> &TableShardId {
        &self.id
    }

    pub fn schema(&self) -> &TableSchema {
        &self.schema
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The metadata as this store last read or wrote it.
    pub fn meta(&self) -> ShardMeta {
        self.mem.borrow().meta.clone()
    }

    /// Where ingestion resumes.
    pub fn commit_offset(&self) -> Offset {
        self.mem.borrow().meta.commit_offset
    }

    /// The vector parties held in memory (preloaded, then kept current by
    /// archiving and backfill): batch → column → bytes.
    pub fn preloaded(&self) -> VectorParties {
        self.mem.borrow().preloaded.clone()
    }

    /// Forget everything in memory (a bootstrap starts from disk again).
    pub fn reset_memory(&self) {
        *self.mem.borrow_mut() = Memory::default();
    }

    /// Bootstrap step 5: read the shard's metadata from the metastore into
    /// memory, replacing whatever memory held.
    pub async fn load_metadata(&self) -> Result<ShardMeta, StoreError> {
        let _guard = self.work.lock().await;
        let meta = self.env.metastore().read(&self.id).await?;
        let mut mem = self.mem.borrow_mut();
        *mem = Memory::default();
        mem.meta = meta.clone();
        Ok(meta)
    }

    /// Write one metadata update durably, then mirror it in memory.
    pub async fn write_meta(&self, update: MetaWrite) -> Result<(), StoreError> {
        self.env.metastore().write(&self.id, update.clone()).await?;
        self.mem.borrow_mut().meta.apply(update);
        Ok(())
    }

    /// Delete every local file and all metadata of the shard and forget its
    /// memory (an `Initializing` replica starts clean; quirk Q10 off purges
    /// before every copy attempt). Returns the number of files deleted.
    pub async fn purge_local(&self) -> Result<usize, StoreError> {
        let _guard = self.work.lock().await;
        let files = self.env.disk().list(&self.id);
        let mut deleted = 0;
        for key in &files {
            if self.delete_file(key).await? {
                deleted += 1;
            }
        }
        self.env.metastore().delete(&self.id).await?;
        self.reset_memory();
        tracing::info!(
            table = %self.id.table,
            shard = %self.id.shard,
            files = deleted,
            "table_shard_purged"
        );
        Ok(deleted)
    }

    /// Today as this host's clock says.
    fn today(&self) -> Day {
        self.env.now().day()
    }

    fn is_fact(&self) -> bool {
        self.schema.kind == TableKind::Fact
    }

    async fn read_file(&self, key: &FileKey) -> Result<FileBytes, StoreError> {
        self.env
            .disk()
            .read(key)
            .await
            .map_err(|source| StoreError::Disk {
                key: key.clone(),
                source,
            })
    }

    /// Write `bytes` as `key` atomically: a staging file, synced, renamed.
    async fn write_file_atomic(&self, key: &FileKey, bytes: FileBytes) -> Result<(), StoreError> {
        let staging = key.staging();
        let disk_err = |source| StoreError::Disk {
            key: staging.clone(),
            source,
        };
        let mut file = self
            .env
            .disk()
            .open(&staging, OpenMode::Truncate)
            .await
            .map_err(disk_err)?;
        file.write_shared(bytes).await.map_err(disk_err)?;
        file.sync().await.map_err(disk_err)?;
        self.env
            .disk()
            .rename(&staging, key)
            .await
            .map_err(|source| StoreError::Disk {
                key: key.clone(),
                source,
            })
    }

    /// Delete a file; one already gone is not an error. Whether it existed.
    async fn delete_file(&self, key: &FileKey) -> Result<bool, StoreError> {
        match self.env.disk().delete(key).await {
            Ok(()) => Ok(true),
            Err(DiskError::NotFound) => Ok(false),
            Err(source) => Err(StoreError::Disk {
                key: key.clone(),
                source,
            }),
        }
    }

    /// The file of one fact vector party.
    fn vector_party_key(
        &self,
        batch: BatchId,
        version: Cutoff,
        seq: u32,
        column: ColumnId,
    ) -> FileKey {
        FileKey::VectorParty {
            shard: self.id.clone(),
            batch,
            version,
            seq,
            column,
        }
    }
}

/// Whether a fact row of `day` lies before the archiving `cutoff` (its
/// event time is the start of its day).
pub fn before_cutoff(day: Day, cutoff: Cutoff) -> bool {
    day.start().secs() < u64::from(cutoff.0)
}

/// The upstream offset a redo position stands for: redo file ids are the
/// offset of the file's first record, positions count records within it.
pub fn redo_offset(pos: RedoPosition) -> Offset {
    Offset((pos.file.max(0) as u64).saturating_add(u64::from(pos.offset)))
}
