//! Silent corruption of a stored file: one flipped byte, drawn from the
//! corruption stream, and the replica it hit remembered (the oracle does
//! not blame the port for data a corrupted disk lost).

use shardboot::model::FileKey;
use shardboot::types::NodeId;

use super::{FaultKind, Faults};
use crate::world::disk::NodeDisk;

/// Silent corruption.
impl Faults {
    /// Flip one byte of `key` on `node`'s `disk` (position and bit pattern
    /// from the corruption stream); `source` is `"random"` or `"step"`.
    /// False if the file is missing or empty.
    pub(crate) fn corrupt(
        &self,
        node: NodeId,
        disk: &NodeDisk,
        key: &FileKey,
        source: &str,
    ) -> bool {
        let len = disk.contents(key).map_or(0, |c| c.len());
        if len == 0 {
            return false;
        }
        let (at, mask) = {
            let mut rng = self.draws.rng(FaultKind::Corruption);
            let at = rng.below(len as u64) as usize;
            (at, rng.between(1, 255) as u8)
        };
        if !disk.corrupt(key, at, mask) {
            return false;
        }
        self.corrupted
            .borrow_mut()
            .insert((node, key.shard().shard));
        tracing::info!(target: "sim::fault", kind = "corruption", source, node = %node,
            file = ?key, byte = at, "fault_injected");
        true
    }
}
