//! What a table shard stores: table schemas, upstream records, the durable
//! metadata kept in the metastore, and the names of files on disk.
//!
//! Row content is synthetic but exact: a column value is a pure function of
//! the record's offset and the column, so a vector-party file is a sequence of
//! `(offset, value)` pairs that any reader can verify byte for byte.

use std::collections::BTreeMap;

use crate::types::{BatchId, ColumnId, Day, Offset, TableKind, TableName, TableShardId};

/// One column of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnSchema {
    pub id: ColumnId,
    /// Deleted columns are neither preloaded nor copied.
    pub deleted: bool,
    /// Fact tables: how many recent days of this column are loaded into
    /// memory at bootstrap (upstream default 0 = none).
    pub preloading_days: u32,
}

/// A table as every host knows it from the schema service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSchema {
    pub name: TableName,
    pub kind: TableKind,
    /// Fact tables: days of archive kept; 0 means keep everything.
    pub retention_days: u32,
    pub columns: Vec<ColumnSchema>,
}

impl TableSchema {
    /// The columns that are neither deleted nor beyond the schema.
    pub fn live_columns(&self) -> impl Iterator<Item = &ColumnSchema> {
        self.columns.iter().filter(|c| !c.deleted)
    }

    /// Whether a fact row of `day` is still within retention on `today`.
    pub fn retains(&self, day: Day, today: Day) -> bool {
        self.retention_days == 0 || day.0 > today.0 - self.retention_days as i32
    }
}

/// One record of a table shard's upstream log.
///
/// Fact records carry their event day (late records have a day before the
/// archiving cutoff); dimension records upsert `key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record {
    pub offset: Offset,
    pub day: Day,
    pub key: u32,
}

impl Record {
    /// The value this record holds in `column`: a fixed mix of offset and
    /// column, so content can be checked without storing it twice.
    pub fn value(&self, column: ColumnId) -> u64 {
        let mut x = self
            .offset
            .0
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(u64::from(column.0).wrapping_mul(0xBF58_476D_1CE4_E5B9));
        x ^= x >> 31;
        x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 29)
    }
}

/// Bytes one row takes in a vector-party file: offset then value, little endian.
pub const ROW_BYTES: usize = 16;

/// Encode the `column` of `rows` (sorted by offset) as a vector-party file.
pub fn encode_vector_party<'a>(
    rows: impl IntoIterator<Item = &'a Record>,
    column: ColumnId,
) -> Vec<u8> {
    let mut out = Vec::new();
    for r in rows {
        out.extend_from_slice(&r.offset.0.to_le_bytes());
        out.extend_from_slice(&r.value(column).to_le_bytes());
    }
    out
}

/// Decode a vector-party file into `(offset, value)` pairs. A trailing
/// partial row (a torn or stale tail) is returned as the error.
pub fn decode_vector_party(bytes: &[u8]) -> Result<Vec<(Offset, u64)>, usize> {
    let chunks = bytes.chunks_exact(ROW_BYTES);
    let rest = chunks.remainder().len();
    if rest != 0 {
        return Err(rest);
    }
    Ok(chunks
        .map(|c| {
            let (o, v) = c.split_at(8);
            let o = u64::from_le_bytes(o.try_into().unwrap_or([0; 8]));
            let v = u64::from_le_bytes(v.try_into().unwrap_or([0; 8]));
            (Offset(o), v)
        })
        .collect())
}

/// Archiving cutoff in seconds since the epoch: everything with event time
/// before it is archived. Also the *version* of the batches written at it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cutoff(pub u32);

/// A position in the redo log: file id and offset within the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RedoPosition {
    pub file: i64,
    pub offset: u32,
}

/// Per fact batch: the cutoff it was archived at, the backfill sequence and
/// its row count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchMeta {
    pub version: Cutoff,
    pub seq: u32,
    pub size: u32,
}

/// Dimension tables: where the latest snapshot stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotProgress {
    pub redo: RedoPosition,
    pub last_batch: BatchId,
    pub last_batch_size: u32,
}

/// Everything the metastore keeps for one table shard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardMeta {
    pub commit_offset: Offset,
    pub checkpoint_offset: Offset,
    pub cutoff: Cutoff,
    pub backfill: RedoPosition,
    pub snapshot: SnapshotProgress,
    pub batches: BTreeMap<BatchId, BatchMeta>,
}

impl ShardMeta {
    /// Apply one metastore update, as every metastore implementation must.
    pub fn apply(&mut self, update: MetaWrite) {
        match update {
            MetaWrite::CommitOffset(o) => self.commit_offset = o,
            MetaWrite::CheckpointOffset(o) => self.checkpoint_offset = o,
            MetaWrite::ArchivingCutoff(c) => self.cutoff = c,
            MetaWrite::BackfillProgress(p) => self.backfill = p,
            MetaWrite::SnapshotProgress(p) => self.snapshot = p,
            MetaWrite::BatchVersion { batch, meta } => {
                self.batches.insert(batch, meta);
            }
            MetaWrite::DeleteBatch(batch) => {
                self.batches.remove(&batch);
            }
        }
    }
}

/// One durable metastore update. Updates are applied one at a time, in the
/// order the code issues them (upstream tests pin that order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaWrite {
    CommitOffset(Offset),
    CheckpointOffset(Offset),
    ArchivingCutoff(Cutoff),
    BackfillProgress(RedoPosition),
    SnapshotProgress(SnapshotProgress),
    BatchVersion { batch: BatchId, meta: BatchMeta },
    DeleteBatch(BatchId),
}

/// The name of a file on a host's disk.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKey {
    /// One column of one fact batch at one archive version and backfill seq.
    VectorParty {
        shard: TableShardId,
        batch: BatchId,
        version: Cutoff,
        seq: u32,
        column: ColumnId,
    },
    /// One column of one batch of a dimension-table snapshot.
    Snapshot {
        shard: TableShardId,
        redo: RedoPosition,
        batch: BatchId,
        column: ColumnId,
    },
    /// A redo-log file: the records ingested since the previous file.
    RedoLog { shard: TableShardId, file: i64 },
    /// A file being written under a temporary name, renamed when synced.
    Staging(Box<FileKey>),
}

impl FileKey {
    /// The table shard the file belongs to.
    pub fn shard(&self) -> &TableShardId {
        match self {
            FileKey::VectorParty { shard, .. }
            | FileKey::Snapshot { shard, .. }
            | FileKey::RedoLog { shard, .. } => shard,
            FileKey::Staging(inner) => inner.shard(),
        }
    }

    /// The temporary name this file is written under before its rename.
    pub fn staging(&self) -> FileKey {
        FileKey::Staging(Box::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Content checks compare values, so a value must tell offsets and
    /// columns apart: a copy that swapped two columns or shifted rows by one
    /// would otherwise pass.
    #[test]
    fn values_differ_across_offsets_and_columns() {
        let mut seen = std::collections::BTreeSet::new();
        for offset in 0..64 {
            let record = Record {
                offset: Offset(offset),
                day: Day(0),
                key: 0,
            };
            for column in 0..8 {
                assert!(seen.insert(record.value(ColumnId(column))));
            }
        }
    }
}
