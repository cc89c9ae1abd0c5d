//! A read-only view of what one replica holds, for the simulator's oracle
//! (docs/MODEL.md §7 "no data loss / no phantom data").
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
        read: impl FnMut(&FileKey) -> Result<FileBytes, DiskError>,
    ) -> HeldRows {
        self.held_rows_valued(today, read, synthetic_value)
    }

    /// [`ShardStore::held_rows`], a row counting as held only where its
    /// file holds `value(offset, column)`: the simulator's oracle passes its
    /// own statement of the upstream's values, so a port that writes other
    /// values than the upstream's is caught even where its own
    /// [`Record::value`] agrees with what it wrote.
    pub fn held_rows_valued(
        &self,
        today: Day,
        mut read: impl FnMut(&FileKey) -> Result<FileBytes, DiskError>,
        value: impl Fn(Offset, ColumnId) -> u64,
    ) -> HeldRows {
        let files = self.archived_files(today);
        let contents = files
            .into_iter()
            .map(|(batch, column, key)| (batch, column, read(&key)))
            .collect();
        self.assemble(today, contents, value)
    }

    /// [`ShardStore::held_rows`] on this host's clock and disk.
    pub async fn held_rows_from_disk(&self) -> HeldRows {
        let today = self.today();
        let mut contents = Vec::new();
        for (batch, column, key) in self.archived_files(today) {
            contents.push((batch, column, self.env.disk().read(&key).await));
        }
        self.assemble(today, contents, synthetic_value)
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
        value: impl Fn(Offset, ColumnId) -> u64,
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
                            .filter(|&(offset, v)| value(offset, column) == v)
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
        let parts = held.batches.values().chain([&live]);
        held.offsets = union_below(commit, parts.map(Vec::as_slice));
        held.live = live;
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

/// The offsets of `parts`, all below `end`, ascending and without repeats.
/// A replica's rows are dense below its commit offset, so marking them in
/// a bitmap is cheaper than sorting their concatenation (the oracle
/// assembles every replica at the end of every run); sparse ones are
/// sorted.
fn union_below<'a>(end: Offset, parts: impl Iterator<Item = &'a [Offset]> + Clone) -> Vec<Offset> {
    let total: usize = parts.clone().map(<[Offset]>::len).sum();
    if end.0 / 64 > total as u64 {
        let mut all: Vec<Offset> = parts.flatten().copied().collect();
        sorted_set(&mut all);
        return all;
    }
    let mut bits = vec![0u64; end.0.div_ceil(64) as usize];
    for o in parts.flatten() {
        bits[(o.0 / 64) as usize] |= 1 << (o.0 % 64);
    }
    let mut all = Vec::with_capacity(total);
    for (i, word) in bits.into_iter().enumerate() {
        let mut w = word;
        while w != 0 {
            all.push(Offset(i as u64 * 64 + u64::from(w.trailing_zeros())));
            w &= w - 1;
        }
    }
    all
}

/// Sort `v` and drop repeats: a set as an ascending vector. A stable sort,
/// because the inputs are a few ascending runs (one per batch), which it
/// merges in linear time.
fn sorted_set(v: &mut Vec<Offset>) {
    // Files are written in order: most inputs already are a set.
    if v.is_sorted_by(|a, b| a < b) {
        return;
    }
    v.sort();
    v.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(v: &[u64]) -> Vec<Offset> {
        v.iter().copied().map(Offset).collect()
    }

    #[test]
    fn a_sorted_set_is_ascending_without_repeats() {
        for (input, want) in [
            (vec![1, 2, 5], vec![1, 2, 5]),
            (vec![1, 2, 2, 5], vec![1, 2, 5]),
            (vec![5, 1, 2, 1], vec![1, 2, 5]),
            (vec![3, 3], vec![3]),
            (vec![], vec![]),
        ] {
            let mut v = offsets(&input);
            sorted_set(&mut v);
            assert_eq!(v, offsets(&want), "{input:?}");
        }
    }

    #[test]
    fn the_union_is_ascending_without_repeats_dense_or_sparse() {
        let a = offsets(&[0, 3, 64, 65, 127]);
        let b = offsets(&[3, 4, 63, 128]);
        let want = offsets(&[0, 3, 4, 63, 64, 65, 127, 128]);
        // Dense: a bitmap over [0, 129).
        let parts = [a.as_slice(), b.as_slice()];
        assert_eq!(union_below(Offset(129), parts.into_iter()), want);
        // Sparse (the end is far above the rows): sorted instead.
        assert_eq!(union_below(Offset(1 << 20), parts.into_iter()), want);
        assert!(union_below(Offset(0), std::iter::empty()).is_empty());
    }
}
