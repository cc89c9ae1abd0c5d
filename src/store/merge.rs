//! Merging a batch's vector-party file with new `(offset, value)` pairs by
//! offset, as archiving and backfill do for every live column: old rows
//! between new ones are copied as bytes, never decoded; an old file out of
//! offset order is put in order first.

use crate::model::{ROW_BYTES, decode_vector_party};
use crate::types::Offset;

/// Merge a batch's old vector-party file (whole rows) with new
/// `(offset, value)` pairs by offset (a new pair replaces an old one of the
/// same offset) into a new file; returns its bytes and row count.
///
/// Both inputs are normally sorted by offset without repeats (files are
/// written that way and `new` comes from an offset-ordered map), and `new`
/// is a few late rows against a whole day's batch: so the old rows between
/// two new ones are found by binary search and copied as bytes in one go,
/// never decoded (backfill rewrites whole batches every run). An old file
/// that is not in order (a corrupted offset) is put in order first, keeping
/// the last of repeated offsets, which is what inserting into a map would
/// give.
pub(super) fn merge_pairs(
    old: &[u8],
    new: impl ExactSizeIterator<Item = (Offset, u64)>,
) -> (Vec<u8>, usize) {
    let count = old.len() / ROW_BYTES;
    if !strictly_ascending(old) {
        return merge_pairs(&in_order(old), new);
    }
    let mut out = Vec::with_capacity(old.len() + new.len() * ROW_BYTES);
    let mut at = 0;
    for (offset, value) in new {
        let (mut lo, mut hi) = (at, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if offset_at(old, mid) < offset {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        out.extend_from_slice(&old[at * ROW_BYTES..lo * ROW_BYTES]);
        at = if lo < count && offset_at(old, lo) == offset {
            lo + 1
        } else {
            lo
        };
        out.extend_from_slice(&offset.0.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(&old[at * ROW_BYTES..]);
    let rows = out.len() / ROW_BYTES;
    (out, rows)
}

/// Whether the rows of a vector-party file are in strictly ascending offset
/// order (one pass over whole rows: every merge checks a whole batch).
fn strictly_ascending(bytes: &[u8]) -> bool {
    let mut offsets = bytes
        .chunks_exact(ROW_BYTES)
        .map(|row| u64::from_le_bytes(row[..8].try_into().unwrap_or([0; 8])));
    let Some(mut last) = offsets.next() else {
        return true;
    };
    offsets.all(|o| std::mem::replace(&mut last, o) < o)
}

/// The offset of row `row` of a vector-party file.
fn offset_at(bytes: &[u8], row: usize) -> Offset {
    let at = row * ROW_BYTES;
    let mut le = [0; 8];
    le.copy_from_slice(&bytes[at..at + 8]);
    Offset(u64::from_le_bytes(le))
}

/// The rows of a vector-party file sorted by offset, the last of repeated
/// offsets kept.
fn in_order(bytes: &[u8]) -> Vec<u8> {
    let mut pairs = decode_vector_party(bytes).unwrap_or_default();
    pairs.reverse();
    pairs.sort_by_key(|p| p.0);
    pairs.dedup_by_key(|p| p.0);
    let mut out = Vec::with_capacity(bytes.len());
    for (offset, value) in pairs {
        out.extend_from_slice(&offset.0.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::decode_vector_party;

    fn merged(old: &[(u64, u64)], new: &[(u64, u64)]) -> Vec<(u64, u64)> {
        let old: Vec<u8> = old
            .iter()
            .flat_map(|&(o, v)| [o.to_le_bytes(), v.to_le_bytes()])
            .flatten()
            .collect();
        let new = new.iter().map(|&(o, v)| (Offset(o), v)).collect::<Vec<_>>();
        let (bytes, rows) = merge_pairs(&old, new.into_iter());
        let pairs = decode_vector_party(&bytes).unwrap_or_default();
        assert_eq!(pairs.len(), rows);
        pairs.into_iter().map(|(o, v)| (o.0, v)).collect()
    }

    #[test]
    fn only_strictly_ascending_offsets_count_as_in_order() {
        let file = |offsets: &[u64]| -> Vec<u8> {
            offsets
                .iter()
                .flat_map(|&o| [o.to_le_bytes(), 7u64.to_le_bytes()])
                .flatten()
                .collect()
        };
        assert!(strictly_ascending(&file(&[])));
        assert!(strictly_ascending(&file(&[5])));
        assert!(strictly_ascending(&file(&[1, 2, 9])));
        assert!(!strictly_ascending(&file(&[1, 2, 2])));
        assert!(!strictly_ascending(&file(&[1, 3, 2])));
        assert!(!strictly_ascending(&file(&[2, 1, 3])));
    }

    #[test]
    fn merge_interleaves_by_offset_and_new_rows_win() {
        let got = merged(&[(1, 10), (3, 30), (5, 50)], &[(0, 1), (3, 33), (6, 6)]);
        assert_eq!(got, [(0, 1), (1, 10), (3, 33), (5, 50), (6, 6)]);
        assert_eq!(merged(&[], &[(2, 2)]), [(2, 2)]);
        assert_eq!(merged(&[(2, 2)], &[]), [(2, 2)]);
        // Runs of old rows between new ones, a new row past the end.
        let old = [(1, 10), (2, 20), (3, 30), (4, 40), (7, 70), (8, 80)];
        let got = merged(&old, &[(2, 22), (5, 5), (9, 9)]);
        assert_eq!(
            got,
            [
                (1, 10),
                (2, 22),
                (3, 30),
                (4, 40),
                (5, 5),
                (7, 70),
                (8, 80),
                (9, 9)
            ]
        );
    }

    #[test]
    fn an_out_of_order_old_file_merges_as_a_map_would() {
        // A corrupted offset: out of order, and a repeat whose later pair
        // wins, as inserting into a map in file order would give.
        let got = merged(&[(4, 40), (1, 10), (4, 41), (2, 20)], &[(2, 22)]);
        assert_eq!(got, [(1, 10), (2, 22), (4, 41)]);
        // A repeat in order is out of order too.
        assert_eq!(
            merged(&[(1, 10), (1, 11), (2, 20)], &[]),
            [(1, 11), (2, 20)]
        );
    }
}
