//! The background jobs of a table shard (docs/MODEL.md §1, §4): archiving,
//! backfill and purge for fact tables, snapshot for dimension tables.
//!
//! Archiving, backfill and snapshot publish their new version first (files
//! synced, then metadata), and only then ask the [`TokenSource`] for a token;
//! with it they delete every file the metadata no longer refers to (old
//! batch versions, older snapshots, redo logs wholly below the checkpoint),
//! without it they keep them for a later run. Purge asks first and drops
//! nothing when refused. What a token reserves is the server's business
//! (quirk Q9).
//!
//! Merges are by offset, so re-running a job after a failure half-way (files
//! written, some metadata published) rewrites the same rows: idempotent.

use std::collections::BTreeMap;

use crate::env::{Disk, Env, FileBytes};
use crate::model::{
    BatchMeta, Cutoff, FileKey, MetaWrite, ROW_BYTES, Record, SnapshotProgress, encode_vector_party,
};
use crate::types::{BatchId, ColumnId, Day, Offset};

use super::codec::encode_key_party;
use super::merge::merge_pairs;
use super::{DIMENSION_KEY_COLUMN, Memory, ShardStore, StoreError, TokenSource, before_cutoff};

/// What one run of a job did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobReport {
    /// Batches written (archiving, backfill, snapshot) or dropped (purge).
    pub batches: usize,
    /// Whether a token was asked for and granted; `None` when the run had
    /// nothing to do and did not ask.
    pub token: Option<bool>,
    /// Files deleted with the token.
    pub deleted: usize,
}

impl<E: Env> ShardStore<E> {
    /// Archiving (fact tables): move live rows older than the new cutoff
    /// (start of today − `archive_lag_days`) into new batch versions, one
    /// batch per event day at version = the new cutoff, then advance cutoff
    /// and checkpoint; with a token, delete the old versions and purged redo
    /// logs. Does nothing when the cutoff would not advance.
    pub async fn archive(&self, tokens: &impl TokenSource) -> Result<JobReport, StoreError> {
        if !self.is_fact() {
            return Ok(JobReport::default());
        }
        let _guard = self.work.lock().await;
        let lag = i32::try_from(self.config.archive_lag_days).unwrap_or(i32::MAX);
        let day = Day(self.today().0.saturating_sub(lag));
        let cutoff = Cutoff(u32::try_from(day.start().secs()).unwrap_or(u32::MAX));
        let (old_cutoff, moved) = {
            let mem = self.mem.borrow();
            let moved: Vec<Record> = mem
                .live
                .iter()
                .filter(|r| before_cutoff(r.day, cutoff))
                .copied()
                .collect();
            (mem.meta.cutoff, moved)
        };
        if cutoff <= old_cutoff {
            return Ok(JobReport::default());
        }
        let groups = group_by_batch(&moved);
        let mut written = Vec::new();
        for (batch, rows) in &groups {
            let old = self.mem.borrow().meta.batches.get(batch).copied();
            let (meta, parties) = self.merge_batch(*batch, old, rows, cutoff, 0).await?;
            written.push((*batch, meta, parties));
        }
        let batches = written.len();
        self.publish_batches(written).await?;
        self.write_meta(MetaWrite::ArchivingCutoff(cutoff)).await?;
        self.mem.borrow_mut().live.remove_all(&moved);
        self.advance_checkpoint().await?;
        tracing::info!(
            table = %self.id.table,
            shard = %self.id.shard,
            cutoff = cutoff.0,
            rows = moved.len(),
            batches,
            "archiving_published"
        );
        let (token, deleted) = self.delete_obsolete_with_token(tokens, "archiving").await?;
        Ok(JobReport {
            batches,
            token,
            deleted,
        })
    }

    /// Backfill (fact tables): merge late rows (event day before the cutoff)
    /// into their archived batch as backfill sequence + 1 of the same version
    /// (a batch that was never archived starts at the current cutoff, seq
    /// 0), record the backfill progress, advance the checkpoint; with a
    /// token, delete the superseded files. Late rows beyond retention are
    /// dropped.
    pub async fn backfill(&self, tokens: &impl TokenSource) -> Result<JobReport, StoreError> {
        if !self.is_fact() {
            return Ok(JobReport::default());
        }
        let _guard = self.work.lock().await;
        let today = self.today();
        let (late, commit, cutoff) = {
            let mem = self.mem.borrow();
            let late: Vec<Record> = mem.late.iter().copied().collect();
            (late, mem.meta.commit_offset, mem.meta.cutoff)
        };
        if late.is_empty() {
            return Ok(JobReport::default());
        }
        let mut written = Vec::new();
        for (batch, rows) in &group_by_batch(&late) {
            if !self.schema.retains(Day(batch.0), today) {
                continue;
            }
            let old = self.mem.borrow().meta.batches.get(batch).copied();
            let (version, seq) = old.map_or((cutoff, 0), |m| (m.version, m.seq + 1));
            let (meta, parties) = self.merge_batch(*batch, old, rows, version, seq).await?;
            written.push((*batch, meta, parties));
        }
        let batches = written.len();
        self.publish_batches(written).await?;
        let progress = self.position_of(commit);
        self.write_meta(MetaWrite::BackfillProgress(progress))
            .await?;
        self.mem.borrow_mut().late.remove_all(&late);
        self.advance_checkpoint().await?;
        tracing::info!(
            table = %self.id.table,
            shard = %self.id.shard,
            rows = late.len(),
            batches,
            progress_file = progress.file,
            progress_offset = progress.offset,
            "backfill_published"
        );
        let (token, deleted) = self.delete_obsolete_with_token(tokens, "backfill").await?;
        Ok(JobReport {
            batches,
            token,
            deleted,
        })
    }

    /// Purge (fact tables): with a token asked for first, drop the batches
    /// older than retention: their metadata, then their files. Refused: keep
    /// everything for a later run.
    pub async fn purge(&self, tokens: &impl TokenSource) -> Result<JobReport, StoreError> {
        if !self.is_fact() {
            return Ok(JobReport::default());
        }
        let _guard = self.work.lock().await;
        let today = self.today();
        let expired: Vec<BatchId> = self
            .mem
            .borrow()
            .meta
            .batches
            .keys()
            .filter(|b| !self.schema.retains(Day(b.0), today))
            .copied()
            .collect();
        if expired.is_empty() {
            return Ok(JobReport::default());
        }
        if !tokens.acquire_token(&self.id) {
            tracing::info!(
                table = %self.id.table,
                shard = %self.id.shard,
                job = "purge",
                "job_token_refused"
            );
            return Ok(JobReport {
                batches: 0,
                token: Some(false),
                deleted: 0,
            });
        }
        let result = self.drop_batches(&expired).await;
        tokens.release_token(&self.id);
        let deleted = result?;
        tracing::info!(
            table = %self.id.table,
            shard = %self.id.shard,
            batches = expired.len(),
            files = deleted,
            "expired_batches_purged"
        );
        Ok(JobReport {
            batches: expired.len(),
            token: Some(true),
            deleted,
        })
    }

    /// Snapshot (dimension tables): write the latest row of every key as a
    /// new snapshot at the redo position of the commit offset, record the
    /// snapshot progress and checkpoint; with a token, delete older
    /// snapshots and redo logs wholly below the checkpoint. Does nothing
    /// when nothing was ingested since the last snapshot.
    pub async fn snapshot(&self, tokens: &impl TokenSource) -> Result<JobReport, StoreError> {
        if self.is_fact() {
            return Ok(JobReport::default());
        }
        let _guard = self.work.lock().await;
        let (rows, commit, checkpoint) = {
            let mem = self.mem.borrow();
            let rows: Vec<(u32, Offset)> = mem.keys.iter().map(|(k, o)| (*k, *o)).collect();
            (rows, mem.meta.commit_offset, mem.meta.checkpoint_offset)
        };
        if checkpoint >= commit {
            return Ok(JobReport::default());
        }
        let redo = self.position_of(commit);
        let per_batch = self.config.snapshot_batch_rows.max(1);
        let mut parties = BTreeMap::new();
        let mut last = (BatchId(i32::MIN), 0u32);
        for (i, chunk) in rows.chunks(per_batch).enumerate() {
            let batch = BatchId(i32::MIN.saturating_add(i32::try_from(i).unwrap_or(i32::MAX)));
            let records: Vec<Record> = chunk
                .iter()
                .map(|(key, offset)| Record {
                    offset: *offset,
                    day: Day(0),
                    key: *key,
                })
                .collect();
            let mut columns = BTreeMap::new();
            for column in self.schema.live_columns().map(|c| c.id) {
                let bytes = FileBytes::new(encode_vector_party(&records, column));
                let key = self.snapshot_key(redo, batch, column);
                self.write_file_atomic(&key, FileBytes::clone(&bytes))
                    .await?;
                columns.insert(column, bytes);
            }
            let key = self.snapshot_key(redo, batch, DIMENSION_KEY_COLUMN);
            self.write_file_atomic(&key, encode_key_party(chunk).into())
                .await?;
            parties.insert(batch, columns);
            last = (batch, u32::try_from(chunk.len()).unwrap_or(u32::MAX));
        }
        let progress = SnapshotProgress {
            redo,
            last_batch: last.0,
            last_batch_size: last.1,
        };
        self.write_meta(MetaWrite::SnapshotProgress(progress))
            .await?;
        self.write_meta(MetaWrite::CheckpointOffset(commit)).await?;
        let batches = parties.len();
        self.mem.borrow_mut().preloaded = parties;
        tracing::info!(
            table = %self.id.table,
            shard = %self.id.shard,
            redo_file = redo.file,
            redo_offset = redo.offset,
            rows = rows.len(),
            batches,
            "snapshot_published"
        );
        let (token, deleted) = self.delete_obsolete_with_token(tokens, "snapshot").await?;
        Ok(JobReport {
            batches,
            token,
            deleted,
        })
    }

    /// Write one batch at `(version, seq)`: for every live column, the old
    /// version's rows (if any) merged with `rows` by offset.
    async fn merge_batch(
        &self,
        batch: BatchId,
        old: Option<BatchMeta>,
        rows: &[Record],
        version: Cutoff,
        seq: u32,
    ) -> Result<(BatchMeta, BTreeMap<ColumnId, FileBytes>), StoreError> {
        let mut parties = BTreeMap::new();
        let mut size = 0;
        for column in self.schema.live_columns().map(|c| c.id) {
            let old_rows = match old {
                Some(old) => {
                    let key = self.vector_party_key(batch, old.version, old.seq, column);
                    let bytes = self.read_file(&key).await?;
                    let tail = bytes.len() % ROW_BYTES;
                    if tail != 0 {
                        return Err(StoreError::TornVectorParty { key, tail });
                    }
                    bytes
                }
                None => FileBytes::default(),
            };
            let new_pairs = rows.iter().map(|r| (r.offset, r.value(column)));
            let (bytes, len) = merge_pairs(&old_rows, new_pairs);
            let bytes = FileBytes::new(bytes);
            let key = self.vector_party_key(batch, version, seq, column);
            self.write_file_atomic(&key, FileBytes::clone(&bytes))
                .await?;
            size = size.max(len);
            parties.insert(column, bytes);
        }
        let meta = BatchMeta {
            version,
            seq,
            size: u32::try_from(size).unwrap_or(u32::MAX),
        };
        Ok((meta, parties))
    }

    /// Publish the batch versions just written and refresh the in-memory
    /// copies of batches that are preloaded.
    async fn publish_batches(
        &self,
        written: Vec<(BatchId, BatchMeta, BTreeMap<ColumnId, FileBytes>)>,
    ) -> Result<(), StoreError> {
        for (batch, meta, parties) in written {
            self.write_meta(MetaWrite::BatchVersion { batch, meta })
                .await?;
            let mut mem = self.mem.borrow_mut();
            if let Some(held) = mem.preloaded.get_mut(&batch) {
                for (column, bytes) in parties {
                    if held.contains_key(&column) {
                        held.insert(column, bytes);
                    }
                }
            }
        }
        Ok(())
    }

    /// Move the checkpoint up to the oldest row only in memory (fact), or
    /// the commit offset when memory holds none.
    async fn advance_checkpoint(&self) -> Result<(), StoreError> {
        let (current, next) = {
            let mem = self.mem.borrow();
            (mem.meta.checkpoint_offset, fact_checkpoint(&mem))
        };
        if next > current {
            self.write_meta(MetaWrite::CheckpointOffset(next)).await?;
        }
        Ok(())
    }

    /// Drop whole batches: metadata first, then every file of theirs.
    async fn drop_batches(&self, batches: &[BatchId]) -> Result<usize, StoreError> {
        let mut deleted = 0;
        for batch in batches {
            self.write_meta(MetaWrite::DeleteBatch(*batch)).await?;
            self.mem.borrow_mut().preloaded.remove(batch);
            let files: Vec<FileKey> = self
                .env
                .disk()
                .list(&self.id)
                .into_iter()
                .filter(|k| matches!(k, FileKey::VectorParty { batch: b, .. } if b == batch))
                .collect();
            for key in &files {
                if self.delete_file(key).await? {
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }

    /// Ask for a token; with it, delete every file the metadata no longer
    /// refers to. Returns (token granted, files deleted).
    async fn delete_obsolete_with_token(
        &self,
        tokens: &impl TokenSource,
        job: &'static str,
    ) -> Result<(Option<bool>, usize), StoreError> {
        if !tokens.acquire_token(&self.id) {
            tracing::info!(
                table = %self.id.table,
                shard = %self.id.shard,
                job,
                "job_token_refused"
            );
            return Ok((Some(false), 0));
        }
        let result = self.delete_obsolete().await;
        tokens.release_token(&self.id);
        let deleted = result?;
        tracing::debug!(
            table = %self.id.table,
            shard = %self.id.shard,
            job,
            files = deleted,
            "obsolete_files_deleted"
        );
        Ok((Some(true), deleted))
    }

    /// Delete old batch versions, older snapshots and redo logs wholly below
    /// the checkpoint. Staging files are left alone (they may belong to a
    /// write in progress).
    async fn delete_obsolete(&self) -> Result<usize, StoreError> {
        let meta = self.meta();
        let redo = self.redo_files();
        let checkpoint = meta.checkpoint_offset;
        let obsolete: Vec<FileKey> = self
            .env
            .disk()
            .list(&self.id)
            .into_iter()
            .filter(|key| match key {
                FileKey::VectorParty {
                    batch,
                    version,
                    seq,
                    ..
                } => meta
                    .batches
                    .get(batch)
                    .is_none_or(|m| m.version != *version || m.seq != *seq),
                FileKey::Snapshot { redo, .. } => *redo != meta.snapshot.redo,
                FileKey::RedoLog { file, .. } => redo
                    .iter()
                    .find(|f| *f > file)
                    .is_some_and(|next| *next >= 0 && (*next as u64) <= checkpoint.0),
                FileKey::Staging(_) => false,
            })
            .collect();
        let mut deleted = 0;
        for key in &obsolete {
            if self.delete_file(key).await? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    pub(super) fn snapshot_key(
        &self,
        redo: crate::model::RedoPosition,
        batch: BatchId,
        column: ColumnId,
    ) -> FileKey {
        FileKey::Snapshot {
            shard: self.id.clone(),
            redo,
            batch,
            column,
        }
    }
}

/// Fact checkpoint: the oldest offset held only in memory, else the commit.
fn fact_checkpoint(mem: &Memory) -> Offset {
    let live = mem.live.first();
    let late = mem.late.first();
    match (live, late) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => mem.meta.commit_offset,
    }
}

/// Rows grouped by their event day's batch, each group in offset order.
fn group_by_batch(rows: &[Record]) -> BTreeMap<BatchId, Vec<Record>> {
    let mut groups: BTreeMap<BatchId, Vec<Record>> = BTreeMap::new();
    for r in rows {
        groups.entry(r.day.batch()).or_default().push(*r);
    }
    groups
}
