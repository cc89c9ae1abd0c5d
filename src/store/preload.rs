//! Bootstrap step 6: load archive data into memory.
//!
//! Fact tables load, for every non-deleted column, the batches of the days
//! `(today − preloading_days, today]`; a file that cannot be read is traced
//! and left out (upstream loads such a vector party lazily later, and a query
//! would then fail, not the bootstrap). Dimension tables load the latest
//! snapshot, which is their whole archived state: any error fails.

use std::collections::BTreeMap;

use crate::env::{Disk, Env};
use crate::model::{FileKey, decode_vector_party};
use crate::probe::Probe;
use crate::types::{BatchId, ColumnId, Day};

use super::codec::decode_key_party;
use super::{DIMENSION_KEY_COLUMN, ShardStore, StoreError};

impl<E: Env> ShardStore<E> {
    /// Load what bootstrap step 6 loads. Returns the number of vector
    /// parties now in memory.
    pub async fn preload(&self) -> Result<usize, StoreError> {
        let _guard = self.work.lock().await;
        if self.is_fact() {
            Ok(self.preload_fact().await)
        } else {
            self.load_snapshot().await
        }
    }

    async fn preload_fact(&self) -> usize {
        let today = self.today();
        let batches = self.meta().batches;
        let mut loaded = 0;
        for column in self.schema.live_columns() {
            // Days (today - preloading_days, today]; none when preloading_days
            // is 0 (upstream's default), which must not build an inverted range.
            if column.preloading_days == 0 {
                continue;
            }
            let days = i32::try_from(column.preloading_days).unwrap_or(i32::MAX);
            let first = today.0.saturating_sub(days);
            for (batch, meta) in batches.range(BatchId(first.saturating_add(1))..=today.batch()) {
                let key = self.vector_party_key(*batch, meta.version, meta.seq, column.id);
                match self.read_file(&key).await {
                    Ok(bytes) => {
                        self.mem
                            .borrow_mut()
                            .preloaded
                            .entry(*batch)
                            .or_default()
                            .insert(column.id, bytes);
                        loaded += 1;
                    }
                    Err(error) => {
                        Probe::PreloadFileUnreadable.hit();
                        tracing::info!(
                            table = %self.id.table,
                            shard = %self.id.shard,
                            batch = %batch,
                            column = %column.id,
                            error = %error,
                            "vector_party_preload_failed"
                        );
                    }
                }
            }
        }
        tracing::debug!(
            table = %self.id.table,
            shard = %self.id.shard,
            today = %Day(today.0),
            vector_parties = loaded,
            "fact_batches_preloaded"
        );
        loaded
    }

    /// Load the snapshot the metadata points at: every batch found on disk
    /// for it, each with every live column and the key column.
    async fn load_snapshot(&self) -> Result<usize, StoreError> {
        let snapshot = self.meta().snapshot;
        let mut present: BTreeMap<BatchId, Vec<ColumnId>> = BTreeMap::new();
        for key in self.env.disk().list(&self.id) {
            if let FileKey::Snapshot {
                redo,
                batch,
                column,
                ..
            } = key
                && redo == snapshot.redo
            {
                present.entry(batch).or_default().push(column);
            }
        }
        if snapshot.last_batch_size > 0 && !present.contains_key(&snapshot.last_batch) {
            return Err(StoreError::SnapshotIncomplete {
                redo: snapshot.redo,
                batch: snapshot.last_batch,
                column: DIMENSION_KEY_COLUMN,
            });
        }
        let wanted: Vec<ColumnId> = self
            .schema
            .live_columns()
            .map(|c| c.id)
            .chain([DIMENSION_KEY_COLUMN])
            .collect();
        let mut loaded = 0;
        for (batch, columns) in &present {
            for column in &wanted {
                if !columns.contains(column) {
                    return Err(StoreError::SnapshotIncomplete {
                        redo: snapshot.redo,
                        batch: *batch,
                        column: *column,
                    });
                }
                let key = self.snapshot_key(snapshot.redo, *batch, *column);
                let bytes = self.read_file(&key).await?;
                if *column == DIMENSION_KEY_COLUMN {
                    let rows = decode_key_party(&bytes)
                        .map_err(|tail| StoreError::TornVectorParty { key, tail })?;
                    let mut mem = self.mem.borrow_mut();
                    for (k, offset) in rows {
                        let newer = mem.keys.get(&k).is_none_or(|o| *o < offset);
                        if newer {
                            mem.keys.insert(k, offset);
                        }
                    }
                } else {
                    decode_vector_party(&bytes)
                        .map_err(|tail| StoreError::TornVectorParty { key, tail })?;
                    self.mem
                        .borrow_mut()
                        .preloaded
                        .entry(*batch)
                        .or_default()
                        .insert(*column, bytes);
                    loaded += 1;
                }
            }
        }
        tracing::debug!(
            table = %self.id.table,
            shard = %self.id.shard,
            redo_file = snapshot.redo.file,
            redo_offset = snapshot.redo.offset,
            batches = present.len(),
            "snapshot_loaded"
        );
        Ok(loaded)
    }
}
