//! A read-only view of what one replica holds, for the simulator's oracle
//! (SPEC §7 "no data loss / no phantom data").
//!
//! Fact tables: the rows of the archive batches the metadata lists (read
//! from their files, every live column checked against the others and
//! against the synthetic values) plus the live and late rows in memory, all
//! within retention and below the commit offset. Dimension tables: the
//! latest row per key held in memory. The file reader is a parameter so the
//! oracle can read the simulated disk directly, without faults.

use std::collections::BTreeMap;

use crate::env::{Disk, DiskError, Env, FileBytes};
use crate::model::{FileKey, Record, decode_vector_party};
use crate::types::{BatchId, ColumnId, Day, Offset};

use super::ShardStore;

/// What is wrong with one archived vector party.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DamageKind {
    /// The metadata lists the batch but the file does not exist.
    Missing,
    /// The file could not be read (I/O error, checksum mismatch).
    Unreadable,
    /// The file ends with a partial row.
    Torn,
    /// A row's value is not the one its offset defines.
    WrongValue,
    /// The column holds other rows than its batch's other columns.
    RowsDiffer,
}

/// One damaged vector party of an archive batch.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DamagedVectorParty {
    pub batch: BatchId,
    pub column: ColumnId,
    pub kind: DamageKind,
}

/// The rows one replica of a table shard holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeldRows {
    /// The replica's commit offset: rows are compared up to it.
    pub commit_offset: Offset,
    /// Every row held, ascending and without duplicates (dimension tables:
    /// the offsets of `keys`).
    pub offsets: Vec<Offset>,
    /// Fact tables: the rows each archive batch holds in all its live
    /// columns (so the oracle can check each row's event day).
    pub batches: BTreeMap<BatchId, Vec<Offset>>,
    /// Fact tables: rows in memory, not yet archived or backfilled.
    pub live: Vec<Offset>,
    /// Dimension tables: key → offset of the latest row.
    pub keys: BTreeMap<u32, Offset>,
    /// Archive vector parties that are missing or damaged.
    pub damaged: Vec<DamagedVectorParty>,
}

impl<E: Env> ShardStore<E> {
    /// The rows held on `today`, reading archive files with `read`.
    pub fn held_rows(
        &self,
        today: Day,
        mut read: impl FnMut(&FileKey) -> Result<FileBytes, DiskError>,
    ) -> HeldRows {
        let files = self.archived_files(today);
        let contents = files
            .into_iter()
            .map(|(batch, column, key)| (batch, column, read(&key)))
            .collect();
        self.assemble(today, contents)
    }

    /// [`ShardStore::held_rows`] on this host's clock and disk.
    pub async fn held_rows_from_disk(&self) -> HeldRows {
        let today = self.today();
        let mut contents = Vec::new();
        for (batch, column, key) in self.archived_files(today) {
            contents.push((batch, column, self.env.disk().read(&key).await));
        }
        self.assemble(today, contents)
    }

    /// The files of the archive batches within retention on `today`.
    fn archived_files(&self, today: Day) -> Vec<(BatchId, ColumnId, FileKey)> {
        if !self.is_fact() {
            return Vec::new();
        }
        let meta = self.meta();
        let mut files = Vec::new();
        for (batch, m) in &meta.batches {
            if !self.schema.retains(Day(batch.0), today) {
                continue;
            }
            for column in self.schema.live_columns() {
                let key = self.vector_party_key(*batch, m.version, m.seq, column.id);
                files.push((*batch, column.id, key));
            }
        }
        files
    }

    fn assemble(
        &self,
        today: Day,
        contents: Vec<(BatchId, ColumnId, Result<FileBytes, DiskError>)>,
    ) -> HeldRows {
        let mem = self.mem.borrow();
        let commit = mem.meta.commit_offset;
        let mut held = HeldRows {
            commit_offset: commit,
            ..HeldRows::default()
        };
        if !self.is_fact() {
            held.keys = mem
                .keys
                .iter()
                .filter(|(_, o)| **o < commit)
                .map(|(k, o)| (*k, *o))
                .collect();
            held.offsets = held.keys.values().copied().collect();
            sorted_set(&mut held.offsets);
            return held;
        }
        // Per batch and column: the valid rows (ascending, no repeats), or
        // `None` when the file could not be used at all. Sorted vectors, not
        // sets: the oracle assembles every replica at the end of every run.
        type Columns = Vec<(ColumnId, Option<Vec<Offset>>)>;
        let mut per_batch: BTreeMap<BatchId, Columns> = BTreeMap::new();
        for (batch, column, content) in contents {
            let mut damage = |kind| {
                held.damaged.push(DamagedVectorParty {
                    batch,
                    column,
                    kind,
                })
            };
            let rows = match content {
                Err(DiskError::NotFound) => {
                    damage(DamageKind::Missing);
                    None
                }
                Err(_) => {
                    damage(DamageKind::Unreadable);
                    None
                }
                Ok(bytes) => match decode_vector_party(&bytes) {
                    Err(_) => {
                        damage(DamageKind::Torn);
                        None
                    }
                    Ok(pairs) => {
                        let total = pairs.len();
                        let mut rows: Vec<Offset> = pairs
                            .into_iter()
                            .filter(|&(offset, value)| synthetic_value(offset, column) == value)
                            .map(|(offset, _)| offset)
                            .collect();
                        if rows.len() != total {
                            damage(DamageKind::WrongValue);
                        }
                        sorted_set(&mut rows);
                        Some(rows)
                    }
                },
            };
            per_batch.entry(batch).or_default().push((column, rows));
        }
        let mut all: Vec<Offset> = Vec::new();
        for (batch, columns) in per_batch {
            let first = columns.first().and_then(|(_, r)| r.as_ref());
            let union: Vec<Offset> = match first {
                // The usual case: every column holds the same rows.
                Some(rows) if columns.iter().all(|(_, r)| r.as_ref() == Some(rows)) => rows.clone(),
                _ => {
                    let mut union: Vec<Offset> = columns
                        .iter()
                        .filter_map(|(_, r)| r.as_deref())
                        .flatten()
                        .copied()
                        .collect();
                    sorted_set(&mut union);
                    union
                }
            };
            let mut common = union.clone();
            for (column, rows) in &columns {
                match rows {
                    Some(rows) => {
                        if *rows != union {
                            held.damaged.push(DamagedVectorParty {
                                batch,
                                column: *column,
                                kind: DamageKind::RowsDiffer,
                            });
                            common.retain(|o| rows.binary_search(o).is_ok());
                        }
                    }
                    None => common.clear(),
                }
            }
            common.retain(|o| *o < commit);
            all.extend_from_slice(&common);
            held.batches.insert(batch, common);
        }
        let mut live: Vec<Offset> = mem
            .live
            .iter()
            .chain(mem.late.iter())
            .filter(|r| self.schema.retains(r.day, today) && r.offset < commit)
            .map(|r| r.offset)
            .collect();
        sorted_set(&mut live);
        all.extend_from_slice(&live);
        sorted_set(&mut all);
        held.live = live;
        held.offsets = all;
        held.damaged.sort();
        held.damaged.dedup();
        held
    }
}

/// The value every replica must hold for `offset` in `column`.
fn synthetic_value(offset: Offset, column: ColumnId) -> u64 {
    Record {
        offset,
        day: Day(0),
        key: 0,
    }
    .value(column)
}

/// Sort `v` and drop repeats: a set as an ascending vector. A stable sort,
/// because the inputs are a few ascending runs (one per batch), which it
/// merges in linear time.
fn sorted_set(v: &mut Vec<Offset>) {
    v.sort();
    v.dedup();
}
