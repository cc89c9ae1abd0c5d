//! Rows held in memory, ordered by offset.
//!
//! Ingestion hands rows over in offset order, so nearly every insert lands
//! past the last row: a sorted vector appends them, where an ordered map
//! paid a tree search and a node insert per row, on the simulation's
//! hottest path.

use crate::model::Record;
use crate::types::Offset;

/// Records ordered by offset, at most one per offset.
#[derive(Debug, Default)]
pub(super) struct OffsetRows(Vec<Record>);

impl OffsetRows {
    /// Insert `r`, replacing the row of the same offset if there is one.
    pub(super) fn insert(&mut self, r: Record) {
        match self.0.last() {
            Some(last) if last.offset >= r.offset => {
                match self.0.binary_search_by_key(&r.offset, |x| x.offset) {
                    Ok(i) => self.0[i] = r,
                    Err(i) => self.0.insert(i, r),
                }
            }
            _ => self.0.push(r),
        }
    }

    /// Remove the rows of the offsets of `gone` (ascending), in one pass.
    pub(super) fn remove_all(&mut self, gone: &[Record]) {
        let mut gone = gone.iter().map(|r| r.offset).peekable();
        self.0.retain(|r| {
            while gone.next_if(|o| *o < r.offset).is_some() {}
            gone.next_if_eq(&r.offset).is_none()
        });
    }

    /// The rows, ascending by offset.
    pub(super) fn iter(&self) -> std::slice::Iter<'_, Record> {
        self.0.iter()
    }

    /// The lowest offset held.
    pub(super) fn first(&self) -> Option<Offset> {
        self.0.first().map(|r| r.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Day;

    fn row(offset: u64, key: u32) -> Record {
        Record {
            offset: Offset(offset),
            day: Day(1),
            key,
        }
    }

    fn offsets(rows: &OffsetRows) -> Vec<(u64, u32)> {
        rows.iter().map(|r| (r.offset.0, r.key)).collect()
    }

    #[test]
    fn inserts_keep_offset_order_and_replace_the_same_offset() {
        let mut rows = OffsetRows::default();
        for (o, k) in [(5, 0), (7, 0), (6, 0), (1, 0), (7, 1), (9, 0)] {
            rows.insert(row(o, k));
        }
        assert_eq!(offsets(&rows), [(1, 0), (5, 0), (6, 0), (7, 1), (9, 0)]);
        assert_eq!(rows.first(), Some(Offset(1)));
    }

    #[test]
    fn remove_all_drops_exactly_the_given_offsets() {
        let mut rows = OffsetRows::default();
        for o in [1, 2, 4, 6, 8] {
            rows.insert(row(o, 0));
        }
        rows.remove_all(&[row(0, 0), row(2, 0), row(3, 0), row(8, 0)]);
        assert_eq!(offsets(&rows), [(1, 0), (4, 0), (6, 0)]);
        rows.remove_all(&[]);
        assert_eq!(rows.first(), Some(Offset(1)));
    }
}
