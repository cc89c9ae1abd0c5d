//! The table shard's metadata served to a copy: offsets, then the fact
//! cutoff, backfill progress and archive batches (within retention and the
//! requested range), or the dimension snapshot and its batches, each batch
//! with the columns present on disk. Quirk Q8 on: read in separate metastore
//! reads with scheduling points between them.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::buggify;
use crate::env::{Disk, Env, MetaError, MetaStore};
use crate::model::{BatchMeta, FileKey, ShardMeta, TableSchema};
use crate::protocol::{
    BatchMetadata, MetadataRequest, PeerError, TableMetadata, TableShardMetadata,
};
use crate::quirks::Quirk;
use crate::types::{BatchId, ColumnId, TableKind, TableShardId};

use super::server::{PeerServer, TARGET, show};

/// Longest wait between separate metadata reads (BUGGIFY, quirk Q8 on).
const METADATA_READS_DELAY_MAX: Duration = Duration::from_secs(1);

impl<E: Env> PeerServer<E> {
    async fn read_meta(&self, shard: &TableShardId) -> Result<ShardMeta, PeerError> {
        self.inner
            .env
            .metastore()
            .read(shard)
            .await
            .map_err(meta_error)
    }

    /// A scheduling point between two metastore reads (Q8 on): background
    /// jobs may run here, as they could between upstream's separate reads.
    /// BUGGIFY: a slow metastore stretches the window.
    async fn between_reads(&self) {
        let env = &self.inner.env;
        let wait = if env.buggify(buggify::METADATA_READS_SLOW) {
            buggify::delay(env, METADATA_READS_DELAY_MAX)
        } else {
            Duration::ZERO
        };
        env.sleep(wait).await;
    }

    /// The table shard's metadata: offsets, then (fact) cutoff, backfill
    /// progress and the archive batches within both the retention window and
    /// the requested range, or (dimension) the snapshot progress and the
    /// snapshot's batches; each batch with the columns present on disk.
    ///
    /// Q8 on: offsets, progress and batches come from separate reads with
    /// scheduling points between them. Q8 off: one read, listed at once.
    pub async fn fetch_metadata(
        &self,
        req: MetadataRequest,
    ) -> Result<TableShardMetadata, PeerError> {
        let result = self.fetch_metadata_inner(&req).await;
        if let Err(e) = &result {
            tracing::info!(target: TARGET, table = %req.session.table, shard = %req.session.shard,
                caller = %show(req.session.node), error = %e, "metadata_refused");
        }
        result
    }

    async fn fetch_metadata_inner(
        &self,
        req: &MetadataRequest,
    ) -> Result<TableShardMetadata, PeerError> {
        self.sweep_if_fixed();
        let (session, shard) = self.validate(&req.session)?;
        let schema = self.schema(&shard.table)?;
        let separate = self.quirk(Quirk::Q8);
        let first = self.read_meta(&shard).await?;
        let (commit_offset, checkpoint_offset) = (first.commit_offset, first.checkpoint_offset);
        let table = match schema.kind {
            TableKind::Fact => {
                let window = self.fact_window(&schema, req.batches.as_ref());
                let progress = if separate {
                    self.between_reads().await;
                    self.read_meta(&shard).await?
                } else {
                    first.clone()
                };
                let batches_meta = if separate {
                    self.between_reads().await;
                    let m = self.read_meta(&shard).await?;
                    self.between_reads().await;
                    m
                } else {
                    first
                };
                let files = self.inner.env.disk().list(&shard);
                let batches = window
                    .map(|w| batches_meta.batches.range(w))
                    .into_iter()
                    .flatten()
                    .map(|(id, meta)| BatchMetadata {
                        id: *id,
                        meta: *meta,
                        columns: fact_columns(&files, *id, meta),
                    })
                    .collect();
                TableMetadata::Fact {
                    cutoff: progress.cutoff,
                    backfill: progress.backfill,
                    batches,
                }
            }
            TableKind::Dimension => {
                let snapshot = if separate {
                    self.between_reads().await;
                    let m = self.read_meta(&shard).await?;
                    self.between_reads().await;
                    m.snapshot
                } else {
                    first.snapshot
                };
                let files = self.inner.env.disk().list(&shard);
                let mut by_batch: BTreeMap<BatchId, BTreeSet<ColumnId>> = BTreeMap::new();
                for f in &files {
                    if let FileKey::Snapshot {
                        redo,
                        batch,
                        column,
                        ..
                    } = f
                        && *redo == snapshot.redo
                    {
                        by_batch.entry(*batch).or_default().insert(*column);
                    }
                }
                // Upstream reports no per-batch size for snapshots; the
                // client takes the last batch's size from the progress.
                let batches = by_batch
                    .into_iter()
                    .map(|(id, cols)| BatchMetadata {
                        id,
                        meta: BatchMeta::default(),
                        columns: cols.into_iter().collect(),
                    })
                    .collect();
                TableMetadata::Dimension { snapshot, batches }
            }
        };
        tracing::info!(target: TARGET, table = %shard.table, shard = %shard.shard, session = %session,
            commit = %commit_offset, checkpoint = %checkpoint_offset, "metadata_served");
        Ok(TableShardMetadata {
            commit_offset,
            checkpoint_offset,
            table,
        })
    }

    /// The fact batches served: today back to the retention (no lower bound
    /// when retention is 0), intersected with the requested range; `None`
    /// when that is empty.
    fn fact_window(
        &self,
        schema: &TableSchema,
        requested: Option<&RangeInclusive<BatchId>>,
    ) -> Option<RangeInclusive<BatchId>> {
        let today = self.inner.env.now().day().0;
        let mut start = if schema.retention_days > 0 {
            today
                .saturating_sub(schema.retention_days as i32)
                .saturating_add(1)
        } else {
            i32::MIN
        };
        let mut end = today;
        if let Some(r) = requested {
            start = start.max(r.start().0);
            end = end.min(r.end().0);
        }
        (start <= end).then_some(BatchId(start)..=BatchId(end))
    }
}

/// The columns of a fact batch present on disk at the batch's version.
fn fact_columns(files: &[FileKey], batch: BatchId, meta: &BatchMeta) -> Vec<ColumnId> {
    let cols: BTreeSet<ColumnId> = files
        .iter()
        .filter_map(|f| match f {
            FileKey::VectorParty {
                batch: b,
                version,
                seq,
                column,
                ..
            } if *b == batch && *version == meta.version && *seq == meta.seq => Some(*column),
            _ => None,
        })
        .collect();
    cols.into_iter().collect()
}

fn meta_error(e: MetaError) -> PeerError {
    PeerError::Disk(format!("metastore: {e}"))
}
