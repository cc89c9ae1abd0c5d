//! Byte encodings the store writes besides vector parties: redo-log records
//! and the key column of dimension snapshots. Fixed-size little-endian rows,
//! so a torn tail is recognisable as a partial row and ignored.

use crate::model::{ROW_BYTES, Record};
use crate::types::{Day, Offset};

/// Bytes one redo-log record takes: offset (u64), day (i32), key (u32).
pub(crate) const REDO_RECORD_BYTES: usize = 16;

/// Append the compact encoding of `records` to `out`.
pub(crate) fn encode_redo(records: &[Record], out: &mut Vec<u8>) {
    out.reserve(records.len() * REDO_RECORD_BYTES);
    for r in records {
        out.extend_from_slice(&r.offset.0.to_le_bytes());
        out.extend_from_slice(&r.day.0.to_le_bytes());
        out.extend_from_slice(&r.key.to_le_bytes());
    }
}

/// Decode a redo-log file; a trailing partial record (torn by a crash) is
/// dropped.
pub(crate) fn decode_redo(bytes: &[u8]) -> Vec<Record> {
    bytes
        .chunks_exact(REDO_RECORD_BYTES)
        .map(|c| {
            let mut o = [0u8; 8];
            let mut d = [0u8; 4];
            let mut k = [0u8; 4];
            o.copy_from_slice(&c[0..8]);
            d.copy_from_slice(&c[8..12]);
            k.copy_from_slice(&c[12..16]);
            Record {
                offset: Offset(u64::from_le_bytes(o)),
                day: Day(i32::from_le_bytes(d)),
                key: u32::from_le_bytes(k),
            }
        })
        .collect()
}

/// Encode the key column of a dimension snapshot batch: `(offset, key)`
/// rows in the vector-party layout, in the batch's row order.
pub fn encode_key_party(rows: &[(u32, Offset)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * ROW_BYTES);
    for (key, offset) in rows {
        out.extend_from_slice(&offset.0.to_le_bytes());
        out.extend_from_slice(&u64::from(*key).to_le_bytes());
    }
    out
}

/// Decode a key column into `(key, offset)` rows; a partial trailing row is
/// the error (its length), as for vector parties.
pub fn decode_key_party(bytes: &[u8]) -> Result<Vec<(u32, Offset)>, usize> {
    let pairs = crate::model::decode_vector_party(bytes)?;
    Ok(pairs
        .into_iter()
        .map(|(offset, key)| (key as u32, offset))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redo_records_round_trip_and_torn_tail_is_dropped() {
        let records = vec![
            Record {
                offset: Offset(7),
                day: Day(-3),
                key: 9,
            },
            Record {
                offset: Offset(8),
                day: Day(20_000),
                key: u32::MAX,
            },
        ];
        let mut bytes = Vec::new();
        encode_redo(&records, &mut bytes);
        assert_eq!(decode_redo(&bytes), records);
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(decode_redo(&bytes), records);
    }

    #[test]
    fn key_party_round_trips() {
        let rows = vec![(3, Offset(10)), (1, Offset(4))];
        assert_eq!(decode_key_party(&encode_key_party(&rows)), Ok(rows));
        assert_eq!(decode_key_party(&[0; 17]), Err(1));
    }
}
