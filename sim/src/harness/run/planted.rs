//! The planted defects a run carries out itself (not the world's seams):
//! correlated losses and metadata tampering at chosen moments.

use shardboot::types::{BatchId, ShardId, TableShardId};

use crate::world::state::Defect;

use super::Run;

impl Run<'_> {
    /// [`Defect::WipeShardZeroEverywhere`].
    pub(super) fn wipe_shard_zero(&self) {
        let world = self.sim.world();
        for table in &self.tables {
            let id = TableShardId::new(table, ShardId(0));
            for host in world.hosts.values() {
                host.disk.wipe(&id);
            }
        }
        self.sim
            .enter(|| tracing::info!(target: "sim::defect", "shard_zero_wiped_everywhere"));
    }

    /// [`Defect::MisdatedArchiveBatch`]: the first fact replica with an
    /// archive batch has its newest one re-listed under the day its version
    /// starts.
    pub(super) fn misdate_archive_batch(&self) {
        let world = self.sim.world();
        for (node, dn) in self.sim.nodes().borrow().iter() {
            let disk = &world.hosts[node].disk;
            for ts in dn.table_shards() {
                let Some((batch, meta)) = disk.meta(ts.id()).batches.pop_last() else {
                    continue;
                };
                if world.defect_fires(Defect::MisdatedArchiveBatch) {
                    disk.tamper_meta(ts.id(), |m| {
                        m.batches.remove(&batch);
                        let day = i32::try_from(meta.version.0 / 86_400).unwrap_or(i32::MAX);
                        m.batches.insert(BatchId(day), meta);
                    });
                }
                return;
            }
        }
    }
}
